"""Content: tip packs (:mod:`.pack`) and stored policy versions (:mod:`.versions`)."""

from service.content.pack import (
    MAX_TIP_WORDS, ContentResult, History, Pack, PackVerdicts, TipSpec, TipState, check_pack, history_of,
    import_pack, load_pack, parse_pack, review_tips, tips_not_sent, word_count,
)
from service.content.questions import QuestionSpec
from service.policy.evidence import Verdict
from service.content.versions import (
    REVIEW, VersionResult, changed_section_tips, find_version, get_policy, import_version, previous_sections,
    tell_admin,
)

__all__ = [
    "MAX_TIP_WORDS", "ContentResult", "Pack", "TipSpec", "VersionResult", "changed_section_tips", "find_version", "get_policy",
    "import_pack", "import_version", "load_pack", "parse_pack", "previous_sections", "word_count",
    "History", "PackVerdicts", "QuestionSpec", "REVIEW", "TipState", "Verdict", "check_pack", "history_of", "review_tips", "tell_admin", "tips_not_sent",
]
