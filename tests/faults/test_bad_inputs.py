"""Bad input at every entry point, from one table: a clear error, and nothing in the database changes."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from service.content import parse_pack
from service.errors import InputErrors
from service.models import Base
from service.policy import PREAMBLE, normalize_text, split_sections
from service.roster import parse_roster
from service.engagement import Signer
from tests.conftest import REPO
from tests.helpers import run_cli

V1 = REPO / "content" / "policies" / "social-media-v1.txt"
HEADER = "email,name,role,department,supervisor_email,timezone,canvas_user_id\n"


def snapshot(factory) -> dict[str, int]:
    with factory() as s:
        return {t.name: s.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}


CASES = [
    # (name, files to write, CLI arguments, expected exit code, expected message)
    ("roster: bad email", {"r.csv": HEADER + "nope,Ann,teacher,,,,\n"}, ["roster", "import", "@r.csv"], 1,
     "line 2: email 'nope' is not a valid address"),
    ("roster: not UTF-8", {"r.csv": b"email,name,role\nann@x.org,Zo\xeb,teacher\n"}, ["roster", "import", "@r.csv"],
     1, "not UTF-8"),
    ("roster: empty file", {"r.csv": ""}, ["roster", "import", "@r.csv"], 1, "missing required column"),
    ("roster: missing file", {}, ["roster", "import", "{tmp}/absent.csv"], 1, "cannot read file"),
    ("content: YAML syntax", {"p.yaml": "tips: [\n"}, ["content", "import", "@p.yaml"], 1, "not valid YAML"),
    ("content: not a mapping", {"p.yaml": "- 1\n- 2\n"}, ["content", "import", "@p.yaml"], 1,
     "a tip pack is a mapping"),
    ("policy: empty", {"v.txt": ""}, ["policy", "import", "@v.txt", "--policy", "social-media", "--version", "9"],
     1, "the file is empty"),
    ("policy: unknown slug", {"v.txt": "Some text"}, ["policy", "import", "@v.txt", "--policy", "nope", "--version",
                                                      "1"], 1, "unknown policy 'nope'"),
    ("policy: label in use", {"v.txt": "Different text"}, ["policy", "import", "@v.txt", "--policy", "social-media",
                                                           "--version", "1"], 1, "already has a version '1'"),
    ("digest: bad week", {}, ["digest", "send", "--week", "2026-53x"], 1, "is not an ISO week"),
    ("escalate: bad date", {}, ["escalate", "--as-of", "tomorrow"], 1, "is not a date"),
    ("report: bad since", {}, ["report", "engagement", "--csv", "{tmp}/x.csv", "--since", "May"], 1,
     "is not a date"),
    ("preview: unknown person", {}, ["digest", "preview", "ghost@x.org"], 1, "no person with email"),
    ("policy diff: unknown version", {}, ["policy", "diff", "social-media", "1", "7"], 1, "has no version '7'"),
    ("CLI: unknown option", {}, ["roster", "import", "--frobnicate"], 2, "No such option"),
]


@pytest.fixture
def seeded(cli_env, capsys):
    for step in (("content", "import", str(REPO / "content" / "social_media.yaml")),
                 ("roster", "import", str(REPO / "content" / "sample_roster.csv")),
                 ("policy", "import", str(V1), "--policy", "social-media", "--version", "1")):
        assert run_cli(capsys, *step)[0] == 0
    return cli_env


@pytest.mark.parametrize("name,files,args,code,message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_clearly_and_changes_nothing(seeded, capsys, factory, name, files, args, code, message):
    paths = {}
    for filename, content in files.items():
        path = seeded / filename
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        paths[filename] = str(path)
    argv = [paths[a[1:]] if a.startswith("@") else a.replace("{tmp}", str(seeded)) for a in args]
    before = snapshot(factory)
    got, out, err = run_cli(capsys, *argv)
    assert got == code, (out, err)
    assert message in err
    assert "Traceback" not in err
    assert snapshot(factory) == before


# ------------------------------------------------------------------ fuzzing the parsers

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("ab@.,\n\"x; é1\t-")), max_size=300))
def test_roster_parser_never_crashes(text: str) -> None:
    try:
        parse_roster(HEADER + text, "fuzz.csv")
    except InputErrors as exc:
        assert exc.problems and all(p.startswith("line ") for p in exc.problems)


@FUZZ
@given(st.text(max_size=300))
def test_pack_parser_never_crashes(text: str) -> None:
    try:
        parse_pack(text, "fuzz.yaml")
    except InputErrors as exc:
        assert exc.problems


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("Ab c.\n:-Zé")), max_size=400))
def test_section_splitter_keeps_every_word(text: str) -> None:
    """Plain text (no Markdown headings): every word ends up in exactly one title or body."""
    sections = split_sections(text)
    words = [w for s in sections for w in ((s.text if s.title == PREAMBLE else s.title + " " + s.text).split())]
    assert sorted(words) == sorted(normalize_text(text).split())


@FUZZ
@given(st.binary(max_size=120))
def test_token_verifier_never_crashes(blob: bytes) -> None:
    assert Signer(["k"]).verify(blob.decode("latin-1")) is None
