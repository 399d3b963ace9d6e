"""Knowledge checks through the real doors: digests composed and sent to the outbox folder, the
answer page over HTTP (GET shows, only POST records), the CLI's report, the summary, the dashboard."""

import csv
import email
import email.policy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from service.content import parse_pack
from service.errors import InputErrors
from service.models import Answer, Delivery, DeliveryItem, EngagementEvent, Person, Question, Tip
from service.quiz.schedule import Asked, due, next_question
from service.roster import import_roster
from tests.conftest import store_policy
from tests.helpers import run_cli
from tests.readers import CHROME, Doors
from tests.test_escalation import START, noon, send_week

SCANNER = "Mozilla/5.0 (compatible; SafeLinks/1.0)"
ROSTER = """email,name,role,department,supervisor_email,timezone,canvas_user_id
head@x.org,Hana Head,administrator,,,,
sam@x.org,Sam Lead,administrator,,head@x.org,,
ann@x.org,Ann Right,teacher,,sam@x.org,,
bob@x.org,Bob Wrong,teacher,,sam@x.org,,
cat@x.org,Cat Other,teacher,,head@x.org,,
dan@x.org,Dan Silent,teacher,,head@x.org,,
"""
ADMIN_TOKEN = "a-long-enough-admin-token-for-tests"


@pytest.fixture
def school(factory, settings, tmp_path: Path):
    path = tmp_path / "roster.csv"
    path.write_text(ROSTER, encoding="utf-8")
    with factory() as s, s.begin():
        store_policy(s)
        import_roster(s, path, now=datetime(2026, 1, 5, tzinfo=UTC))
    return settings.model_copy(update={"admin_token": SecretStr(ADMIN_TOKEN)})


@pytest.fixture
def doors(factory, school) -> Doors:
    return Doors(school, factory)


def digest_of(factory, email: str, week: str) -> int:
    with factory() as s:
        return s.scalar(select(Delivery.id).join(Person, Person.id == Delivery.person_id).where(
            Person.email == email, Delivery.kind == "digest", Delivery.period_key == week))


def asked(factory, delivery_id: int) -> Question:
    with factory() as s:
        question = s.scalar(select(Question).join(DeliveryItem, DeliveryItem.question_id == Question.id)
                            .where(DeliveryItem.delivery_id == delivery_id))
        s.expunge(question)
        return question


def answers(factory) -> list[tuple[str, str, int, bool, bool]]:
    with factory() as s:
        return [tuple(row) for row in s.execute(
            select(Person.email, Question.key, Answer.choice, Answer.correct, Answer.scored)
            .join(Person, Person.id == Answer.person_id).join(Question, Question.id == Answer.question_id)
            .order_by(Answer.id))]


def test_a_get_never_records_an_answer_and_a_post_twice_records_once(factory, school, doors) -> None:
    sent = send_week(factory, school, 0)
    delivery = digest_of(factory, "bob@x.org", "2026-W37")
    question = asked(factory, delivery)
    options = doors.links("digest", delivery).options
    assert len(options) == len(question.options) >= 2
    wrong = next(i for i in range(len(options)) if i != question.correct)
    doors.clock.now = sent + timedelta(seconds=3)
    for url in options:  # a link scanner follows every option; so does the person, tapping one
        page = doors.client.get(url, headers={"User-Agent": SCANNER})
        assert page.status_code == 200 and "Check my answer" in page.text and 'method="post"' in page.text
    tapped = doors.client.get(options[wrong], headers={"User-Agent": CHROME}).text
    assert f'value="{wrong}" checked' in tapped and "Nothing is recorded until you press the button" in tapped
    assert answers(factory) == []
    doors.clock.now = noon(START)
    first = doors.client.post(options[wrong], data={"choice": str(wrong)}, headers={"User-Agent": CHROME})
    second = doors.client.post(options[wrong], data={"choice": str(question.correct)}, headers={"User-Agent": CHROME})
    assert first.status_code == second.status_code == 200
    assert "Not quite." in first.text and question.explanation in first.text
    assert question.quotes[0] in first.text  # the evidence, and where to read it
    assert "/policies/social-media#employee-student-relations" in first.text
    assert "Right!" in second.text and "that first answer is the one we keep" in second.text
    assert answers(factory) == [("bob@x.org", question.key, wrong, False, True)]
    with factory() as s:  # an answer is a human signal, and engagement
        events = s.execute(select(EngagementEvent.kind, EngagementEvent.is_machine)
                           .where(EngagementEvent.kind == "answer")).all()
        bob = s.scalar(select(Person).where(Person.email == "bob@x.org"))
        assert events == [("answer", False)] and bob.last_engaged_at == noon(START)


def test_forged_or_foreign_answer_links_and_bad_choices_record_nothing(factory, school, doors) -> None:
    send_week(factory, school, 0)
    delivery = digest_of(factory, "ann@x.org", "2026-W37")
    other = digest_of(factory, "bob@x.org", "2026-W37")
    url = doors.links("digest", delivery).options[0]
    body, tag = url.rsplit("/", 1)[1].split(".")
    foreign_tag = doors.links("digest", other).options[0].rsplit(".", 1)[1]
    for attempt in ("/q/garbage", f"/q/{body}.{foreign_tag}", f"/q/{body}", "/q/" + url.rsplit("/", 1)[1] + "x"):
        assert doors.client.get(attempt).status_code == 404, attempt
        assert doors.client.post(attempt, data={"choice": "0"}).status_code == 404, attempt
    for choice in ("9", "-1", "x", ""):
        refused = doors.client.post(url, data={"choice": choice})
        assert refused.status_code == 400 and "Choose one of the answers" in refused.text, choice
    assert answers(factory) == []


def test_eight_weeks_of_a_wrong_then_right_answer(factory, school, doors) -> None:
    """Wrong in week 1: the tip comes back in week 2, the question in week 4 (within four weeks);
    right in week 4: not again in the eight weeks (it comes back after eight more)."""
    questions, tips = [], []
    for week in range(8):
        send_week(factory, school, week)
        key = f"2026-W{37 + week}"
        delivery = digest_of(factory, "dan@x.org", key)
        question = asked(factory, delivery)
        questions.append(question.key)
        with factory() as s:
            tips.append(list(s.scalars(select(Tip.key).join(DeliveryItem, DeliveryItem.tip_id == Tip.id)
                                       .where(DeliveryItem.delivery_id == delivery).order_by(DeliveryItem.position))))
        if week in (0, 3):
            wrong = next(i for i in range(len(question.options)) if i != question.correct)
            doors.answer(delivery, noon(START + timedelta(weeks=week, days=1)),
                         wrong if week == 0 else question.correct)
    assert questions == ["q-friending-students", "q-harassment-online", "q-postings-not-private",
                         "q-friending-students", "q-negative-comment", "q-personal-account",
                         "q-power-after-graduation", "q-ask-your-supervisor"]
    assert "students-friending" in tips[0] and tips[1][0] == "students-friending"  # back first, within 2 weeks
    assert all(len(set(week)) == len(week) for week in tips)
    assert answers(factory) == [("dan@x.org", "q-friending-students", 1, False, True),  # scored
                                ("dan@x.org", "q-friending-students", 0, True, False)]  # shown, not scored


def test_the_repetition_rules() -> None:
    assert due([Asked(1, "2026-W37", False)]) == (0, "2026-W40")  # wrong: three weeks on, before new ones
    assert due([Asked(1, "2026-W37", None)]) == (2, "2026-W41")  # unanswered: four weeks on, after new ones
    assert due([Asked(1, "2026-W37", True)]) == (2, "2026-W45")  # right: eight weeks on
    assert due([Asked(1, "2026-W37", True), Asked(1, "2026-W45", True)]) == (2, "2027-W08")  # then sixteen
    assert due([Asked(1, "2026-W37", False), Asked(1, "2026-W40", None)]) == (0, "2026-W44")
    assert due([Asked(1, "2026-W37", True)] * 9)[1] == "2027-W36"  # at most 52 weeks (2026 has 53)
    history = [Asked(1, "2026-W37", False), Asked(2, "2026-W38", None)]
    assert [next_question([1, 2, 3], history, w) for w in ("2026-W39", "2026-W40")] == [3, 1]
    history += [Asked(3, "2026-W39", None), Asked(1, "2026-W40", None)]
    assert next_question([1, 2, 3], history, "2026-W41") is None  # nothing due: no question that week
    assert next_question([1, 2], [Asked(1, "2026-W37", True), Asked(2, "2026-W38", True)], "2026-W40") is None


def test_reports_count_first_answers_as_a_hand_count_does(factory, school, doors, cli_env, capsys) -> None:
    """Week 1 (friending, Employee-Student Relations): Ann and Cat right, Bob wrong (then right:
    not kept); week 2 (harassment, Social Media Best Practices): Ann wrong, Bob right."""
    choices = {0: {"ann@x.org": True, "cat@x.org": True, "bob@x.org": False},
               1: {"ann@x.org": False, "bob@x.org": True}}
    for week, who in choices.items():
        send_week(factory, school, week)
        for address, right in who.items():
            delivery = digest_of(factory, address, f"2026-W{37 + week}")
            question = asked(factory, delivery)
            wrong = next(i for i in range(len(question.options)) if i != question.correct)
            doors.answer(delivery, noon(START + timedelta(weeks=week, days=1)), question.correct if right else wrong)
    doors.answer(digest_of(factory, "bob@x.org", "2026-W37"), noon(START + timedelta(days=2)), 0)
    code, out, err = run_cli(capsys, "report", "questions", "--csv", str(cli_env / "questions.csv"))
    assert code == 0, err
    assert "most misunderstood: Social Media Best Practices: 50% right first time (1 of 2 first answers)" in out
    with open(cli_env / "questions.csv", newline="", encoding="utf-8") as handle:
        rows = {row["question_id"]: row for row in csv.DictReader(handle)}
    assert [(r["asked"], r["answered"], r["right_first_time"], r["right_first_time_percent"])
            for r in (rows["q-friending-students"], rows["q-harassment-online"], rows["q-duty-to-report"])] == [
        ("6", "3", "2", "67%"), ("6", "2", "1", "50%"), ("0", "0", "0", "")]
    assert rows["q-friending-students"]["section"] == "Employee-Student Relations"
    code, out, err = run_cli(capsys, "report", "questions", "--csv", str(cli_env / "team.csv"), "--team", "sam@x.org")
    with open(cli_env / "team.csv", newline="", encoding="utf-8") as handle:
        team = {row["question_id"]: row for row in csv.DictReader(handle)}
    assert (team["q-friending-students"]["asked"], team["q-friending-students"]["answered"],
            team["q-friending-students"]["right_first_time"]) == ("2", "2", "1")
    code, out, err = run_cli(capsys, "report", "supervisors", "--week", "2026-W38")
    assert code == 0, err
    with factory() as s:
        summary = s.scalar(select(Delivery).join(Person, Person.id == Delivery.person_id)
                           .where(Person.email == "sam@x.org", Delivery.kind == "summary"))
    assert summary.payload["checks"] == [
        {"section": "Employee-Student Relations", "team": "50% right first time (1 of 2 first answers)",
         "school": "67% right first time (2 of 3 first answers)"},
        {"section": "Social Media Best Practices", "team": "50% right first time (1 of 2 first answers)",
         "school": "50% right first time (1 of 2 first answers)"}]
    with factory() as s:  # the head's team is everyone else: the school less the head's own (none)
        head = s.scalar(select(Delivery).join(Person, Person.id == Delivery.person_id)
                        .where(Person.email == "head@x.org", Delivery.kind == "summary"))
    assert [(c["team"], c["school"]) for c in head.payload["checks"]] == [
        ("67% right first time (2 of 3 first answers)",) * 2, ("50% right first time (1 of 2 first answers)",) * 2]
    for eml in (Path(doors.folder) / "summary").glob("*.eml"):
        message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
        assert "Quick checks, right the first time (so far):" in message.get_body(("plain",)).get_content()
    client = doors.client
    assert client.post("/admin/login", data={"token": ADMIN_TOKEN}, follow_redirects=True).status_code == 200
    overview = client.get("/admin", follow_redirects=True).text
    assert "Most misunderstood guideline:</strong> Social Media Best Practices" in overview
    with factory() as s:
        sam = s.scalar(select(Person.id).where(Person.email == "sam@x.org"))
    assert "67% right first time (2 of 3 first answers)" in client.get(f"/admin/teams/{sam}").text


def pack(questions: str) -> str:
    return ("policy: {slug: social-media, title: Social Media Best Practices}\ntips:\n"
            "  - {id: t, section: Respect and Responsibility, title: T, body: B,\n"
            "     source: [\"don’t reply in haste.\"]}\nquestions:\n" + questions)


GOOD = """  - id: q
    section: Respect and Responsibility
    question: What then?
    options: [Reply at once, Don’t reply in haste]
    answer: Don’t reply in haste
    explanation: When publicly criticized, don’t reply in haste.
    source: ["When publicly criticized or receiving a negative comment, don’t reply in haste."]
"""


@pytest.mark.parametrize(("change", "problem"), [
    (("answer: Don’t reply in haste", "answer: Wait"), "line 6: question 'q': answer 'Wait' is not one of the options"),
    (("options: [Reply at once, Don’t reply in haste]", "options: [A, B, C, D, Don’t reply in haste]"),
     "a question has 2 to 4 options, not 5"),
    (("options: [Reply at once, Don’t reply in haste]", "options: [Don’t reply in haste, don’t reply in haste]"),
     "two options are the same"),
    (("    source:", "    tip: nope\n    source:"), "tip 'nope' is not a tip of this pack"),
    (("explanation: When", "explanation:\n      - When"), "explanation is required"),
    (("    source: [", "    sauce: 1\n    source: ["), "unknown key(s): sauce"),
])
def test_a_bad_question_is_refused_with_its_line(change, problem) -> None:
    with pytest.raises(InputErrors) as caught:
        parse_pack(pack(GOOD.replace(*change)), "pack.yaml")
    assert any(problem in line for line in caught.value.problems), caught.value.problems


def test_a_question_that_quotes_or_cites_what_its_section_does_not_say_is_refused(factory) -> None:
    from service.content import check_pack, history_of, load_pack
    from tests.conftest import REPO

    with factory() as s, s.begin():
        store_policy(s)
    invented = GOOD.replace("don’t reply in haste.\"]", "reply within a day.\"]")
    cited = GOOD.replace("What then?", "What does Policy 464 say?")
    with factory() as s:
        from service.content import get_policy
        history = history_of(get_policy(s, "social-media"))
    for text, problem in ((invented, "quote not in section"), (cited, "does not name policy 464")):
        with pytest.raises(InputErrors) as caught:
            check_pack(parse_pack(pack(text), "pack.yaml"), history, "pack.yaml")
        assert any("question 'q'" in line and problem in line for line in caught.value.problems), caught.value
    assert load_pack(REPO / "content" / "social_media.yaml").questions
