from html.parser import HTMLParser

from hypothesis import given
from hypothesis import strategies as st

from service.rendering import ALLOWED_TAGS, render_markdown


def test_markdown_renders_and_unsafe_markup_is_removed() -> None:
    html = render_markdown(
        "**Bold** and [docs](https://example.org) "
        "<script>alert(1)</script> [bad](javascript:alert(1)) <img src=x onerror=alert(1)>"
    )
    assert "<strong>Bold</strong>" in html
    assert '<a href="https://example.org" rel="noopener noreferrer">docs</a>' in html
    assert "<script" not in html and "<img" not in html
    assert 'href="javascript' not in html


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.seen.append((tag, attrs))


DANGEROUS = st.sampled_from(
    ["<script>x</script>", "[a](javascript:alert(1))", "<iframe src=x>", "<a href='javascript:x'>y</a>",
     "[a](JaVaScRiPt:alert(1))", "<svg onload=x>", "[a](data:text/html,x)", "<style>*{}</style>",
     "[ok](https://example.org)", "**b**", "<b onclick=x>b</b>"]
)


@given(st.lists(st.one_of(DANGEROUS, st.text(max_size=20)), max_size=6))
def test_no_tip_text_can_smuggle_active_content(parts: list[str]) -> None:
    parser = _Tags()
    parser.feed(str(render_markdown(" ".join(parts))))
    for tag, attrs in parser.seen:
        assert tag in ALLOWED_TAGS
        for name, value in attrs:
            assert name in {"href", "title", "rel"}
            if name == "href":
                assert (value or "").startswith(("http://", "https://", "mailto:"))


def test_text_parts_carry_no_markdown_artefacts() -> None:
    from service.rendering import plain_text

    assert plain_text("It protects **you** and [the section](https://x.org/p#a), _always_.") == \
        "It protects you and the section (https://x.org/p#a), always."
