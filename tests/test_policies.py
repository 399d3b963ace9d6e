import pytest
from sqlalchemy import select

from service.errors import InputErrors
from service.models import PolicyVersion
from service.content import import_version
from service.policy import split_sections
from tests.conftest import REPO

SEED = REPO / "content" / "policies" / "social-media-v1.txt"
SEED_HEADINGS = [
    "Preamble",
    "Social Media Best Practices",
    "Employee-Student Relations",
    "Respect and Responsibility",
    "Professional and Personal Personae",
    "Sharing Information and Privacy",
    "References",
]


def test_the_seed_splits_on_its_plain_title_lines() -> None:
    sections = split_sections(SEED.read_text(encoding="utf-8"))
    assert [s.title for s in sections] == SEED_HEADINGS
    relations = sections[2].text
    assert relations.startswith("The School strongly discourages")
    assert "mandatory reporting requirement in section 464" in relations
    assert "Related Blake Policies:" in sections[-1].text  # a colon line is not a heading


def test_markdown_headings_win_over_title_lines() -> None:
    text = "# Social Media\nIntro line.\n\n## New Platforms\nShort Title Line\nBody text.\n"
    sections = split_sections(text)
    assert [s.title for s in sections] == ["Social Media", "New Platforms"]
    assert "Short Title Line" in sections[1].text


def test_import_stores_a_version_and_ignores_identical_text(session) -> None:
    result = import_version(session, SEED, slug="social-media", label="1", title="Social Media Best Practices")
    assert result.status == "created"
    assert [s.title for s in result.version.sections] == SEED_HEADINGS
    assert len(result.version.content_hash) == 64
    again = import_version(session, SEED, slug="social-media", label="2")
    assert again.status == "unchanged" and again.version.label == "1"
    assert len(session.scalars(select(PolicyVersion)).all()) == 1


@pytest.mark.parametrize(
    "content,slug,label,title,message",
    [
        (b"", "social-media", "1", "T", "the file is empty"),
        (b"  \n\n", "social-media", "1", "T", "the file is empty"),
        (b"caf\xe9", "social-media", "1", "T", "not UTF-8"),
        (b"Some text", "new-policy", "1", None, "unknown policy 'new-policy': give --title"),
        (b"Some text", "social-media", "bad label!", "T", "version label 'bad label!'"),
    ],
)
def test_bad_policy_input_stores_nothing(session, tmp_path, content, slug, label, title, message) -> None:
    path = tmp_path / "policy.txt"
    path.write_bytes(content)
    with pytest.raises(InputErrors) as info:
        import_version(session, path, slug=slug, label=label, title=title)
    assert message in info.value.problems[0]
    assert session.scalars(select(PolicyVersion)).all() == []


def test_a_used_version_label_is_refused(session, tmp_path) -> None:
    import_version(session, SEED, slug="social-media", label="1", title="Social Media Best Practices")
    changed = tmp_path / "v2.txt"
    changed.write_text(SEED.read_text(encoding="utf-8") + "\nA new closing paragraph.\n", encoding="utf-8")
    with pytest.raises(InputErrors) as info:
        import_version(session, changed, slug="social-media", label="1")
    assert info.value.problems == ["policy 'social-media' already has a version '1'"]
