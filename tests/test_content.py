import re
from pathlib import Path

import pytest
from sqlalchemy import select

from service.content import MAX_TIP_WORDS, import_pack, load_pack, word_count
from service.errors import InputErrors
from service.models import Tip
from service.content import import_version
from service.policy import split_sections
from tests.conftest import REPO
from tests.helpers import run_cli

PACK = REPO / "content" / "social_media.yaml"
SEED = REPO / "content" / "policies" / "social-media-v1.txt"


def test_default_pack_covers_the_guidelines() -> None:
    pack = load_pack(PACK)
    assert pack.slug == "social-media"
    assert len(pack.tips) >= 24
    for tip in pack.tips:
        assert word_count(tip.body) <= MAX_TIP_WORDS, tip.key
        assert tip.refs, tip.key
    headings = {s.title for s in split_sections(SEED.read_text(encoding="utf-8"))} - {"Preamble"}
    second = {s.title for s in split_sections(SEED.with_name("social-media-v2.txt").read_text(encoding="utf-8"))}
    assert headings <= {t.section for t in pack.tips} <= second  # every section, and the new one of version 2
    text = " ".join(" ".join((t.title + " " + t.body).split()) for t in pack.tips).lower()
    assert "mandatory reporting" in text and "age-restricted" in text
    cited = {n for t in pack.tips for r in t.refs for n in re.findall(r"\d{3}", r)}
    assert cited >= {"416", "420", "423", "464", "483"}
    targeted = [t for t in pack.tips if "all" not in t.audience]
    assert len(targeted) >= 4
    assert any({"teacher", "coach"} <= set(t.audience) for t in targeted)


def test_import_is_idempotent_and_follows_edits(session, tmp_path) -> None:
    first = import_pack(session, PACK)
    session.commit()
    count = len(first.created)
    assert count >= 24 and not first.warnings
    again = import_pack(session, PACK)
    session.commit()
    assert again.counts() == {"created": 0, "updated": 0, "unchanged": count, "deactivated": 0}

    text = PACK.read_text(encoding="utf-8")
    text = text.replace("Don't friend or follow current students", "Don't friend current students")
    start = text.index("  - id: school-logo")
    end = text.index("  - id: media-contact")
    edited = tmp_path / "pack.yaml"
    edited.write_text(text[:start] + text[end:], encoding="utf-8")
    result = import_pack(session, edited)
    session.commit()
    assert result.updated == ["students-friending"]
    assert result.deactivated == ["school-logo"]
    tips = {t.key: t for t in session.scalars(select(Tip))}
    assert tips["students-friending"].title == "Don't friend current students"
    assert tips["school-logo"].active is False
    # restoring the tip reactivates the same row
    assert sorted(import_pack(session, PACK).updated) == ["school-logo", "students-friending"]


def test_warns_when_a_section_is_not_in_the_policy_text(session, tmp_path) -> None:
    import_version(session, SEED, slug="social-media", label="1", title="Social Media Best Practices")
    pack = tmp_path / "p.yaml"
    pack.write_text(
        "policy: {slug: social-media, title: Social Media Best Practices}\n"
        "tips:\n  - id: x\n    section: Nowhere\n    title: T\n    body: B\n",
        encoding="utf-8",
    )
    assert import_pack(session, pack).warnings == [
        "tip 'x': section 'Nowhere' is not a heading of the policy text"
    ]


BAD_PACK = """\
policy: {slug: social-media, title: Social Media}
colour: blue
tips:
  - id: one
    section: S
    title: First
    body: fine
  - id: one
    section: S
    title: Again
    body: duplicate id
  - id: two
    section: S
    body: no title
  - id: three
    section: S
    title: No body
  - id: four
    section: S
    title: Wordy
    body: {long}
  - id: five
    section: S
    title: Extra
    body: b
    weight: 3
"""


def test_every_pack_problem_names_the_file_tip_and_line(session, tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_PACK.replace("{long}", " ".join(["word"] * 61)), encoding="utf-8")
    with pytest.raises(InputErrors) as info:
        import_pack(session, path)
    assert info.value.source == str(path)
    assert info.value.problems == [
        "line 1: unknown key(s): colour",
        "line 8: tip 'one': duplicate id (first on line 4)",
        "line 12: tip 'two': title is required",
        "line 15: tip 'three': body is required",
        "line 18: tip 'four': body has 61 words; a tip has at most 60",
        "line 22: tip 'five': unknown key(s): weight",
    ]
    assert session.scalars(select(Tip)).all() == []


def test_yaml_syntax_error_names_the_line(session, tmp_path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("policy: {slug: a, title: A}\ntips:\n  - id: x\n   title: [unclosed\n", encoding="utf-8")
    with pytest.raises(InputErrors) as info:
        import_pack(session, path)
    assert info.value.problems[0].startswith("line 4: not valid YAML")


def test_cli_content_import_error_exits_non_zero(cli_env, capsys) -> None:
    path = cli_env / "bad.yaml"
    path.write_text("tips: []\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "content", "import", str(path))
    assert code == 1
    assert f"{path}: policy: required" in err
    assert f"{path}: tips: required, a non-empty list" in err


def test_cli_missing_file(cli_env, capsys) -> None:
    code, _, err = run_cli(capsys, "content", "import", str(cli_env / "nope.yaml"))
    assert code == 1 and "cannot read file" in err
