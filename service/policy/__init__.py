"""Policy texts, pure: sections and hashes (:mod:`.text`), comparing versions (:mod:`.diff`).

No database, no I/O: everything here is tested with strings."""

from service.policy.text import PREAMBLE, Section, normalize_text, sha256, split_sections
from service.policy.diff import (
    SectionChange, classify, compare, is_material, material_form, sentence_pairs, summary_html, summary_text,
)

__all__ = [
    "PREAMBLE", "Section", "SectionChange", "compare", "is_material", "material_form", "normalize_text",
    "sha256", "split_sections", "summary_html", "summary_text", "classify", "sentence_pairs",
]
