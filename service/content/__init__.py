"""Content: tip packs (:mod:`.pack`) and stored policy versions (:mod:`.versions`)."""

from service.content.pack import (
    MAX_TIP_WORDS, ContentResult, Pack, TipSpec, import_pack, load_pack, parse_pack, word_count,
)
from service.content.versions import (
    VersionResult, changed_section_tips, find_version, get_policy, import_version, previous_sections,
)

__all__ = [
    "MAX_TIP_WORDS", "ContentResult", "Pack", "TipSpec", "VersionResult", "changed_section_tips", "find_version", "get_policy",
    "import_pack", "import_version", "load_pack", "parse_pack", "previous_sections", "word_count",
]
