import email
import email.policy
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from datetime import UTC, datetime, timedelta

from service import usecases
from service.content import MAX_TIP_WORDS, import_pack, load_pack, word_count
from service.errors import InputErrors
from service.models import Delivery, DeliveryItem, Tip
from service.content import import_version
from service.policy import split_sections
from tests.conftest import REPO
from tests.helpers import run_cli

PACK = REPO / "content" / "social_media.yaml"
SEED = REPO / "content" / "policies" / "social-media-v1.txt"


V2 = REPO / "content" / "policies" / "social-media-v2.txt"
HEADER = "policy: {slug: social-media, title: Social Media Best Practices}\ntips:\n"


def test_the_shipped_pack_is_true_to_the_guidelines_v1_and_v2(factory, settings) -> None:
    pack = load_pack(PACK)
    assert pack.slug == "social-media" and len(pack.tips) >= 20
    for tip in pack.tips:
        assert word_count(tip.body) <= MAX_TIP_WORDS, tip.key
        assert tip.quotes, tip.key  # every tip carries its evidence
        assert tip.audience == ["all"], tip.key  # the text names no roles
    v1, v2 = usecases.check_content([PACK], [SEED, V2])
    assert (v1.tips.held, v1.tips.suspended) == ([("ai-student-material", "section 'Generative AI and Student Images' is not "
                                         "in version social-media-v1.txt yet"),
                                        ("ai-images", "section 'Generative AI and Student Images' is not in "
                                         "version social-media-v1.txt yet")], [])
    # version 2 rewrote one quoted sentence: exactly that tip is suspended
    assert [key for key, _ in v2.tips.suspended] == ["speak-for-yourself"] and v2.tips.held == []
    # at least 8 knowledge checks: all sendable under version 2, the generative-AI one held under 1
    assert v2.questions.ok == len(pack.questions) >= 8 and not v2.questions.suspended
    assert [key for key, _ in v1.questions.held] == ["q-ai-student-work"]
    for question in pack.questions:
        assert 2 <= len(question.options) <= 4 and question.quotes and question.tip_key, question.key
    headings = {s.title for s in split_sections(SEED.read_text(encoding="utf-8"))} - {"Preamble"}
    second = {s.title for s in split_sections(V2.read_text(encoding="utf-8"))}
    assert headings <= {t.section for t in pack.tips} <= second  # every section, and the new one of version 2
    cited = {n for t in pack.tips for r in t.refs for n in re.findall(r"\d{3}", r)}
    assert cited == {"416", "420", "423", "464", "483"}


def test_every_read_the_section_link_lands_on_an_anchor_of_the_current_version(factory, settings) -> None:
    from fastapi.testclient import TestClient

    from service.rendering import section_anchor
    from service.web.app import create_app

    usecases.import_content(factory, [PACK])
    for label, text in (("1", SEED), ("2", V2)):
        usecases.publish_policy_version(factory, settings, text, slug="social-media", label=label,
                                        now=datetime(2026, 9, 1, tzinfo=UTC))
        page = TestClient(create_app(settings, factory)).get("/policies/social-media").text
        anchors = set(re.findall(r'<section id="([^"]+)"', page))
        with factory() as s:
            sendable = s.scalars(select(Tip).where(Tip.active.is_(True), Tip.state == "ok")).all()
        assert sendable and {section_anchor(t.section) for t in sendable} <= anchors, label


def test_an_invented_quote_or_an_unsupported_ref_is_refused_with_the_line(session, tmp_path) -> None:
    import_version(session, SEED, slug="social-media", label="1", title="Social Media Best Practices")
    pack = tmp_path / "p.yaml"
    pack.write_text(HEADER + (
        "  - id: invented\n    section: Employee-Student Relations\n    title: T\n    body: B\n"
        "    source: [Include another adult and avoid one-to-one messages with athletes.]\n"
        "  - id: wrong-ref\n    section: Respect and Responsibility\n    title: T\n    body: B\n"
        "    source: [Do not reply in haste.]\n    refs: [Policy 464]\n"
        "  - id: bad-ref\n    section: Sharing Information and Privacy\n    title: T\n    body: B\n"
        "    source: [Online postings and conversations are not private.]\n    refs: [Policy 423]\n"
        "  - id: fine\n    section: Employee-Student Relations\n    title: T\n    body: B\n"
        "    source: ['Please review the mandatory reporting requirement in section 464 of the employee manual.']\n"
        "    refs: [Policy 464]\n"
        "  - id: no-source\n    section: Employee-Student Relations\n    title: T\n    body: B\n"), encoding="utf-8")
    with pytest.raises(InputErrors) as info:
        import_pack(session, pack)
    assert info.value.problems == ["line 26: tip 'no-source': source is required: the verbatim sentence(s) of the "
                                   "section it restates"]
    pack.write_text(pack.read_text(encoding="utf-8").rsplit("  - id: no-source", 1)[0], encoding="utf-8")
    with pytest.raises(InputErrors) as info:
        import_pack(session, pack)
    assert info.value.problems == [
        "line 3: tip 'invented': quote not in section 'Employee-Student Relations': “Include another adult and "
        "avoid one-to-one messages with athletes.”",
        "line 8: tip 'wrong-ref': quote not in section 'Respect and Responsibility': “Do not reply in haste.”",
        "line 14: tip 'bad-ref': ref 'Policy 423': the section does not name policy 423",
    ]
    assert session.scalars(select(Tip)).all() == []


def test_quotes_match_across_quote_dash_and_space_styles(session, tmp_path) -> None:
    import_version(session, SEED, slug="social-media", label="1", title="Social Media Best Practices")
    pack = tmp_path / "p.yaml"
    pack.write_text(HEADER + "  - id: styles\n    section: Respect and Responsibility\n    title: T\n    body: B\n"
                    "    source: [\"When publicly criticized or receiving a negative comment,\\n   don't reply in "
                    "haste.\"]\n", encoding="utf-8")
    assert import_pack(session, pack).created == ["styles"]


def test_a_tip_of_a_section_only_version_2_has_is_held_under_1_and_sent_after_2(factory, settings, tmp_path) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("email,name,role,department,supervisor_email,timezone,canvas_user_id\na@x.org,A,teacher,,,,\n")
    usecases.import_people(factory, roster, now=datetime(2026, 1, 5, tzinfo=UTC))
    usecases.publish_policy_version(factory, settings, SEED, slug="social-media", label="1",
                                    title="Social Media Best Practices", now=datetime(2026, 9, 1, tzinfo=UTC))
    [result] = usecases.import_content(factory, [PACK])
    assert {(t.key, t.state) for t in result.review} == {("ai-student-material", "held"), ("ai-images", "held"),
                                                         ("q-ai-student-work", "held")}

    def sent_tips(week: str, when: datetime) -> set[str]:
        usecases.send_week(factory, settings, when, week=week)
        usecases.dispatcher(factory, settings, clock=lambda: when).drain()
        with factory() as s:
            return set(s.scalars(select(Tip.key).join(DeliveryItem, DeliveryItem.tip_id == Tip.id)
                                 .join(Delivery).where(Delivery.period_key == week)))

    held = {"ai-student-material", "ai-images"}
    shown: set[str] = set()
    for week in range(9):  # nine weeks of three tips: every sendable tip once, never a held one
        monday = datetime(2026, 9, 7, 13, tzinfo=UTC) + timedelta(weeks=week)
        shown |= sent_tips(f"2026-W{37 + week}", monday)
    assert not shown & held
    admin = settings.model_copy(update={"admin_email": "admin@x.org"})
    published = usecases.publish_policy_version(factory, admin, V2, slug="social-media", label="2",
                                                now=datetime(2026, 11, 9, 14, tzinfo=UTC))
    assert {(t.key, t.was, t.state) for t in published.review if t.was != t.state} == {
        ("ai-student-material", "held", "ok"), ("ai-images", "held", "ok"), ("speak-for-yourself", "ok", "suspended"),
        ("q-ai-student-work", "held", "ok")}
    with factory() as s:  # and the admin hears of it, once
        [review] = s.scalars(select(Delivery).where(Delivery.kind == "review")).all()
    assert review.recipient == "admin:admin@x.org"
    assert review.subject == ("Tips and questions to review after Social Media Best Practices version 2: "
                              "1 suspended, 3 sendable again")
    assert held <= sent_tips("2026-W46", datetime(2026, 11, 9, 15, tzinfo=UTC))  # the new section's tips lead
    with factory() as s:  # each tip carries its evidence: its first quote, in the email
        tips = {t.id: t for t in s.scalars(select(Tip))}
        last = s.scalar(select(Delivery).where(Delivery.period_key == "2026-W46"))
        quoted = [tips[item.tip_id].quotes[0] for item in last.items if item.tip_id is not None]
    text = email.message_from_bytes((Path(settings.outbox_dir) / "digest" / f"{last.id:08d}.eml").read_bytes(),
                                    policy=email.policy.default).get_body(("plain",)).get_content()
    for quote in quoted:
        assert f'The guidelines: "{" ".join(quote.split()[:30])}' in " ".join(text.split())


def test_content_review_and_check_on_the_command_line(cli_env, capsys) -> None:
    code, out, _ = run_cli(capsys, "content", "check", str(PACK), "--policy-file", str(SEED), "--policy-file", str(V2))
    assert code == 0 and "version social-media-v2.txt: 26 tip(s) ok, 0 held, 1 suspended" in out
    assert run_cli(capsys, "content", "import", str(PACK))[0] == 0
    assert run_cli(capsys, "policy", "import", str(SEED), "--policy", "social-media", "--version", "1")[0] == 0
    code, out, _ = run_cli(capsys, "policy", "import", str(V2), "--policy", "social-media", "--version", "2")
    assert code == 0 and "tip speak-for-yourself: ok -> suspended (version 2 changed the quoted text" in out
    code, out, _ = run_cli(capsys, "content", "review")
    assert out.splitlines() == ["  tip speak-for-yourself: suspended (version 2 changed the quoted text: “Make it "
                                "clear that you are speaking for yourself and not on…”)"]


def test_import_is_idempotent_and_follows_edits(session, tmp_path) -> None:
    first = import_pack(session, PACK)
    session.commit()
    count = len(first.created)
    assert count >= 20 and not first.warnings
    again = import_pack(session, PACK)
    session.commit()
    assert again.counts() == {"created": 0, "updated": 0, "unchanged": count, "deactivated": 0}

    text = PACK.read_text(encoding="utf-8")
    text = text.replace("Personally connecting with current students", "Connecting with current students")
    start = text.index("  - id: where-logo")
    end = text.index("  - id: where-media-contact")
    edited = tmp_path / "pack.yaml"
    edited.write_text(text[:start] + text[end:], encoding="utf-8")
    result = import_pack(session, edited)
    session.commit()
    assert result.updated == ["students-friending"]
    assert result.deactivated == ["where-logo"]
    tips = {t.key: t for t in session.scalars(select(Tip))}
    assert tips["students-friending"].title == "Connecting with current students"
    assert tips["where-logo"].active is False
    # restoring the tip reactivates the same row
    assert sorted(import_pack(session, PACK).updated) == ["students-friending", "where-logo"]


BAD_PACK = """\
policy: {slug: social-media, title: Social Media}
colour: blue
tips:
  - id: one
    section: S
    title: First
    body: fine
    source: [q]
  - id: one
    section: S
    title: Again
    body: duplicate id
    source: [q]
  - id: two
    section: S
    body: no title
    source: [q]
  - id: three
    section: S
    title: No body
  - id: four
    section: S
    title: Wordy
    body: {long}
    source: [q]
  - id: five
    section: S
    title: Extra
    body: b
    weight: 3
    source: [q]
"""


def test_every_pack_problem_names_the_file_tip_and_line(session, tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_PACK.replace("{long}", " ".join(["word"] * 61)), encoding="utf-8")
    with pytest.raises(InputErrors) as info:
        import_pack(session, path)
    assert info.value.source == str(path)
    assert info.value.problems == [
        "line 1: unknown key(s): colour",
        "line 9: tip 'one': duplicate id (first on line 4)",
        "line 14: tip 'two': title is required",
        "line 18: tip 'three': body is required",
        "line 18: tip 'three': source is required: the verbatim sentence(s) of the section it restates",
        "line 21: tip 'four': body has 61 words; a tip has at most 60",
        "line 26: tip 'five': unknown key(s): weight",
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
