"""Markdown to safe HTML, and the Jinja2 environment shared by emails, Canvas and the web."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from functools import lru_cache
from typing import Protocol
from html import escape, unescape

import css_inline
import nh3
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup

from service.channels import InlineImage, Message, Skeleton, placeholder
from service.models import Delivery, Notice, Person, Question, Tip
from service.paths import TEMPLATES_DIR


class Links(Protocol):
    """The tracked URLs an email carries (signed by :class:`service.engagement.Links`)."""

    def pixel(self, delivery_id: int) -> str: ...

    def click(self, delivery_id: int, target: str) -> str: ...

    def ack(self, delivery_id: int, subject: str = "") -> str: ...

    def answer(self, delivery_id: int, question_id: int, choice: int) -> str: ...

    def team(self, summary_delivery_id: int) -> str: ...

ALLOWED_TAGS = {"p", "br", "strong", "em", "b", "i", "ul", "ol", "li", "a", "code", "blockquote"}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}
ALLOWED_SCHEMES = {"http", "https", "mailto"}
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


def render_markdown(text: str) -> Markup:
    """Render tip Markdown; raw HTML is escaped and unsafe tags/URLs are removed."""
    html = _markdown.render(text)
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_SCHEMES,
        link_rel="noopener noreferrer",
    )
    return Markup(clean)


@lru_cache(maxsize=1)
def template_env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=select_autoescape(["html", "html.j2", "htm"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["markdown"] = render_markdown
    return env


LINK_MARK = "@@LINK{}@@"
_HREF = re.compile(r'href="([^"]*)"')
_MD_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_MD_EMPHASIS = re.compile(r"(\*\*|__|\*|_)(\S(?:.*?\S)?)\1")


@dataclass(frozen=True)
class TipBlock:
    """A tip rendered once (CSS inlined), with its links left as numbered marks."""

    html: str
    text: str
    targets: tuple[str, ...]

    def for_delivery(self, link_for: Callable[[str], str]) -> tuple[str, str]:
        html, text = self.html, self.text
        for index, target in enumerate(self.targets):
            url = link_for(target)
            mark = LINK_MARK.format(index)
            html = html.replace(mark, escape(url))
            text = text.replace(mark, url)
        return html, text


SUMMARY_TAGS = {"p", "ul", "li", "strong", "em", "mark", "del", "ins"}


def safe_summary(html: str) -> Markup:
    """A notice's summary (built from the diff) cleaned again before it reaches an email or Canvas."""
    return Markup(nh3.clean(html, tags=SUMMARY_TAGS))


def section_anchor(section: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", section.lower()).strip("-")


def section_url(base_url: str, policy_slug: str, section: str) -> str:
    return f"{base_url}/policies/{policy_slug}#{section_anchor(section)}"


@lru_cache(maxsize=1)
def email_css() -> str:
    return (TEMPLATES_DIR / "email" / "_styles.css").read_text(encoding="utf-8")


def plain_text(markdown: str, link=lambda text, url: f"{text} ({url})") -> str:
    """A tip's Markdown as an email's text part reads it: links as "text (url)", no emphasis marks."""
    text = _MD_LINK.sub(lambda m: link(m.group(1), m.group(2)), markdown.strip())
    return _MD_EMPHASIS.sub(r"\2", text)


def render_tip_block(tip: Tip, base_url: str) -> TipBlock:
    targets: list[str] = []

    def mark(url: str) -> str:
        targets.append(url)
        return LINK_MARK.format(len(targets) - 1)

    body_html = _HREF.sub(lambda m: f'href="{mark(unescape(m.group(1)))}"', str(render_markdown(tip.body)))
    body_text = plain_text(tip.body, lambda text, url: f"{text} ({mark(url)})")
    section_link = mark(section_url(base_url, tip.policy.slug, tip.section))
    env = template_env()
    refs = [r for r in tip.refs if r != tip.section]
    quote = _evidence(tip.quotes)
    html = env.get_template("email/_tip.html.j2").render(
        tip=tip, refs=refs, body_html=Markup(body_html), section_link=section_link, quote=quote
    )
    text = env.get_template("email/_tip.txt.j2").render(
        tip=tip, refs=refs, body_text="\n".join("  " + line for line in body_text.splitlines()),
        section_link=section_link, quote=quote,
    )
    return TipBlock(css_inline.inline_fragment(html, email_css()), text + "\n\n", tuple(targets))  # a blank line


def render_question_block(question: Question) -> TipBlock:
    """A knowledge check, its options as buttons; each option's link is a mark (its index)."""
    env = template_env()
    marks = [LINK_MARK.format(i) for i in range(len(question.options))]
    html = env.get_template("email/_question.html.j2").render(question=question, option_links=marks)
    text = env.get_template("email/_question.txt.j2").render(question=question, option_links=marks)
    targets = tuple(str(i) for i in range(len(question.options)))
    return TipBlock(css_inline.inline_fragment(html, email_css()), text, targets)


def _evidence(quotes: list[str] | None, words: int = 30) -> str:
    """The tip's first quote, its evidence, shortened to a glance (the section link has the rest)."""
    if not quotes:
        return ""
    parts = quotes[0].split()
    return " ".join(parts[:words]) + (" …" if len(parts) > words else "")


DIGEST_PLACEHOLDERS = ("subject", "preheader", "week", "greeting_html", "greeting_text", "carried_html",
                       "carried_text", "tips_html", "tips_text", "question_html", "question_text", "ack", "pixel",
                       "prefs")
CARRIED_HEADING = "Also for you today"


@lru_cache(maxsize=8)
def digest_skeleton(organisation: str) -> Skeleton:
    """The digest shared by everyone: per-person parts are placeholders filled per message."""
    env = template_env()
    ph = {name: placeholder(name) for name in DIGEST_PLACEHOLDERS}
    html = env.get_template("email/digest.html.j2").render(ph=ph, css=Markup(email_css()), organisation=organisation)
    text = env.get_template("email/digest.txt.j2").render(ph=ph, organisation=organisation)
    inlined = css_inline.CSSInliner(keep_style_tags=True).inline(html)
    return Skeleton(subject=ph["subject"], html=inlined, text=text)


def html_to_text(html: str) -> str:
    """Plain text of a small HTML fragment (list items become bullet lines)."""
    text = re.sub(r"<li[^>]*>", "\n* ", html)
    text = re.sub(r"<(mark|strong)>", "*", text)
    text = re.sub(r"</(mark|strong)>", "*", text)
    return unescape(re.sub(r"<[^>]+>", "", text)).strip()


def first_name(name: str) -> str:
    return name.split()[0] if name.split() else name


class DigestRenderer:
    """Turns a digest delivery into a Message; tip blocks are rendered once per run."""

    kind = "digest"

    def __init__(self, base_url: str, organisation: str, links: Links):
        self.base_url = base_url
        self.links = links
        self.skeleton = digest_skeleton(organisation)
        self._blocks: dict[tuple[int, object], TipBlock] = {}

    def block(self, tip: Tip) -> TipBlock:
        key = (tip.id, tip.updated_at)  # an edited tip renders afresh
        if key not in self._blocks:
            self._blocks[key] = render_tip_block(tip, self.base_url)
        return self._blocks[key]

    def question_block(self, question: Question) -> TipBlock:
        key = (-question.id, question.updated_at)
        if key not in self._blocks:
            self._blocks[key] = render_question_block(question)
        return self._blocks[key]

    def message(self, delivery_id: int, person: Person, tips: list[Tip], subject: str, week: str,
                carried: Sequence[Part] = (), question: Question | None = None) -> Message:
        """``person`` needs only ``email`` and ``name``; ``carried``: the day's held emails it brings;
        ``question``: the knowledge check it asks, if one is due."""
        html_parts, text_parts = [], []
        for tip in tips:
            html, text = self.block(tip).for_delivery(lambda target: self.links.click(delivery_id, target))
            html_parts.append(html)
            text_parts.append(text)
        question_html = question_text = ""
        if question is not None:
            question_html, question_text = self.question_block(question).for_delivery(
                lambda choice: self.links.answer(delivery_id, question.id, int(choice)))
        monday = date.fromisocalendar(int(week[:4]), int(week[6:]), 1)
        more = f" — and {len(tips) - 1} more quick reminders" if len(tips) > 1 else ""
        name = first_name(person.name)
        carried_html, carried_text = carried_blocks(list(carried), CARRIED_HEADING)
        values = {
            "subject": subject,
            "preheader": escape(f"{tips[0].title}{more}"),
            "week": f"{monday.day} {monday:%B %Y}",
            "greeting_html": f"Hi {escape(name)},",
            "greeting_text": f"Hi {name},",
            "carried_html": carried_html,
            "carried_text": carried_text,
            "tips_html": "".join(html_parts),
            "tips_text": "".join(text_parts),
            "question_html": question_html,
            "question_text": question_text,
            "ack": self.links.ack(delivery_id),
            "pixel": self.links.pixel(delivery_id),
            "prefs": self.links.preferences(delivery_id),
        }
        return Message(
            delivery_id=delivery_id,
            kind=self.kind,
            to_email=person.email,
            to_name=person.name,
            skeleton=self._skeleton_with(tuple(image for part in carried for image in part.images)),
            values={placeholder(k): v for k, v in values.items()},
            custom_args={"delivery_id": str(delivery_id), "kind": self.kind},
        )

    def _skeleton_with(self, images: tuple[InlineImage, ...]) -> Skeleton:
        """The shared skeleton; a digest carrying a chart (a summary) gets its own copy with the image."""
        return replace(self.skeleton, inline_images=images) if images else self.skeleton

    def render(self, delivery: Delivery) -> Message:
        tips = [item.tip for item in delivery.items if item.tip is not None]
        if not tips:
            raise ValueError("a digest without tips")
        question = next((item.question for item in delivery.items if item.question is not None), None)
        return self.message(delivery.id, delivery.person, tips, delivery.subject, delivery.payload["week"],
                            question=question)


@dataclass(frozen=True)
class Part:
    """A held email as a section of another (a bundle, a digest): its headline and body only."""

    headline: str
    html: Markup  # CSS inlined
    text: str
    images: tuple[InlineImage, ...] = ()


def carried_blocks(parts: list[Part], heading: str) -> tuple[str, str]:
    """Parts as a digest carries them, under one heading (empty when there are none)."""
    if not parts:
        return "", ""
    html = template_env().get_template("email/_carried.html.j2").render(parts=parts, heading=heading)
    text = template_env().get_template("email/_carried.txt.j2").render(parts=parts, heading=heading)
    return css_inline.inline_fragment(html, email_css()), text


class LetterRenderer:
    """Emails written to one person from their own template: reminder, nudge, escalation, notice.

    Notices and reminders say the same to everyone they reach, so each is rendered once
    with the reader's name and links left as placeholders: a notice to a whole district
    then goes out like a digest, a thousand readers to a provider request.
    """

    kinds = frozenset({"notice", "reminder", "nudge", "escalation", "summary", "confirm", "review", "attention"})
    shared_kinds = frozenset({"notice", "reminder"})

    def __init__(self, base_url: str, organisation: str, links: Links):
        self.base_url = base_url
        self.organisation = organisation
        self.links = links
        self._skeletons: dict[tuple[object, ...], Skeleton] = {}

    def render(self, delivery: Delivery) -> Message:
        person = delivery.person
        name = self._greeting_name(delivery)
        if delivery.kind in self.shared_kinds:
            skeleton, values = self._shared(delivery, name)
        else:
            context = self._context(delivery, name)
            skeleton, values = self._skeleton(delivery, context, context), {}
        return Message(
            delivery_id=delivery.id, kind=delivery.kind,
            to_email=person.email if person else delivery.payload["to_email"],
            to_name=person.name if person else "", skeleton=skeleton, values=values,
            custom_args={"delivery_id": str(delivery.id), "kind": delivery.kind},
        )

    @staticmethod
    def _greeting_name(delivery: Delivery) -> str:
        """The reader's first name; "there" for an address outside the roster."""
        return first_name(delivery.person.name) if delivery.person else "there"

    def _context(self, delivery: Delivery, name: str) -> dict[str, object]:
        context: dict[str, object] = {
            "organisation": self.organisation,
            "subject": delivery.subject,
            "headline": delivery.subject,
            "preheader": delivery.subject,
            "first_name": name,
            "pixel": None,
            "css": Markup(email_css()),
            # the reader's own preferences (digest day, leave, Canvas), in every email to a person
            "prefs_url": self.links.preferences(delivery.id) if delivery.person_id else None,
            "part": False,
        }
        return context | getattr(self, f"_{delivery.kind}")(delivery)

    def part(self, delivery: Delivery) -> Part:
        """A held email rendered as a section of the email that carries it (no greeting, footer or pixel)."""
        context = self._context(delivery, self._greeting_name(delivery)) | {"part": True, "pixel": None}
        env = template_env()
        html = env.get_template(f"email/{delivery.kind}.html.j2").render(context)
        text = env.get_template(f"email/{delivery.kind}.txt.j2").render(context)
        return Part(str(context["headline"]), Markup(css_inline.inline_fragment(html, email_css())), text.strip(),
                    tuple(context.get("images", ())))

    def _attention(self, delivery: Delivery) -> dict[str, object]:
        """A day's held emails in one: each a section under its own headline."""
        parts = [self.part(held) for held in delivery.carried]
        if not parts:
            raise ValueError("an attention email carrying nothing")
        return {"parts": parts, "images": [image for part in parts for image in part.images],
                "pixel": self.links.pixel(delivery.id), "headline": "For your attention today",
                "preheader": "; ".join(part.headline for part in parts)}

    def _shared(self, delivery: Delivery, name: str) -> tuple[Skeleton, dict[str, str]]:
        """A notice or reminder: rendered once per notice (the template, the summary's cleaning),
        only the reader's name and signed links made per message."""
        notice = _notice_of(delivery)
        links = self._notice_links(delivery, notice)
        key = (delivery.kind, notice.id, delivery.payload.get("days_left"), delivery.subject)
        if key not in self._skeletons:
            context = self._context(delivery, name)
            blank = {k: placeholder(k) for k in links}
            self._skeletons[key] = self._skeleton(delivery, context | blank | {"first_name": placeholder("name_html")},
                                                  context | blank | {"first_name": placeholder("name_text")})
        values = {placeholder(k): v for k, v in links.items()}
        return self._skeletons[key], values | {placeholder("name_html"): escape(name), placeholder("name_text"): name}

    @staticmethod
    def _skeleton(delivery: Delivery, html_context: dict[str, object], text_context: dict[str, object]) -> Skeleton:
        env = template_env()
        html = css_inline.CSSInliner(keep_style_tags=False).inline(
            env.get_template(f"email/{delivery.kind}.html.j2").render(html_context)
        )
        text = env.get_template(f"email/{delivery.kind}.txt.j2").render(text_context)
        return Skeleton(subject=delivery.subject, html=html, text=text,
                        inline_images=tuple(html_context.get("images", ())))

    def _notice_links(self, delivery: Delivery, notice: Notice) -> dict[str, str]:
        policy_page = f"{self.base_url}/policies/{notice.policy_version.policy.slug}"
        return {"ack_url": self.links.ack(delivery.id, f"notice:{notice.id}"),
                "policy_link": self.links.click(delivery.id, policy_page), "pixel": self.links.pixel(delivery.id),
                "prefs_url": self.links.preferences(delivery.id)}

    def _notice_context(self, delivery: Delivery) -> dict[str, object]:
        notice = _notice_of(delivery)
        version = notice.policy_version
        return {
            "policy_title": version.policy.title,
            "version": version.label,
            "due_on": f"{notice.due_on.day} {notice.due_on:%B %Y}",
            "summary": safe_summary(notice.summary),
        } | self._notice_links(delivery, notice)

    def _notice(self, delivery: Delivery) -> dict[str, object]:
        context = self._notice_context(delivery)
        return context | {"headline": f"{context['policy_title']} has changed",
                          "summary_text": _notice_of(delivery).summary_text or html_to_text(str(context["summary"]))}

    def _confirm(self, delivery: Delivery) -> dict[str, object]:
        """The personal link a reader asked for on a shared page (a Canvas post)."""
        return {"ack_url": self.links.ack(delivery.id, delivery.payload["ack_subject"]),
                "what": delivery.payload["what"]}

    def _review(self, delivery: Delivery) -> dict[str, object]:
        """The admin's list of tips a policy version suspended or made sendable again."""
        payload = delivery.payload
        return {"tips": payload["tips"], "policy": payload["policy"], "version": payload["version"],
                "headline": "Tips to review"}

    def _reminder(self, delivery: Delivery) -> dict[str, object]:
        return self._notice_context(delivery) | {"days_left": int(delivery.payload.get("days_left", 0))}

    def _nudge(self, delivery: Delivery) -> dict[str, object]:
        tips = [
            {"title": t.title, "body_html": render_markdown(t.body), "body_text": " ".join(plain_text(t.body).split()),
             "section": t.section, "refs": [r for r in t.refs if r != t.section]}
            for t in (item.tip for item in delivery.items) if t is not None
        ]
        return {"tips": tips, "ack_url": self.links.ack(delivery.id), "pixel": self.links.pixel(delivery.id),
                "headline": "A few reminders you may have missed"}

    def _summary(self, delivery: Delivery) -> dict[str, object]:
        from service.charts import trend_png  # matplotlib loads in ~1 s: only when a summary is drawn

        payload = delivery.payload
        trend = [dict(p, rate=p["engaged"] / p["reached"] if p["reached"] else None, label=p.get("label", p["week"]))
                 for p in payload["trend"]]
        rates = [p["rate"] for p in trend]
        alt = "Engagement by week: " + ", ".join(
            f"{p['label']} {'no digests' if p['rate'] is None else format(p['rate'], '.0%')}" for p in trend)
        cid = f"trend-{delivery.id}@policy-nudge"
        chart = InlineImage(cid, trend_png([p["label"] for p in trend], rates), "png", "engagement-trend.png")
        rate = payload.get("rate")
        teams, people = payload.get("teams", []), payload.get("people", [])
        return {"rate": rate if isinstance(rate, dict) else {"reachable": 0}, "trend": trend, "teams": teams,
                "more_teams": payload.get("teams_total", len(teams) - 1) - (len(teams) - 1), "people": people,
                "more_people": payload.get("people_total", len(people)) - len(people),
                "notices": payload.get("notices", []), "rollup": payload.get("rollup", False),
                "checks": payload.get("checks", []), "chart_cid": cid, "chart_alt": alt, "images": [chart],
                "team_url": self.links.team(delivery.id) if delivery.person else None,
                "headline": f"Your team's week ({payload['week']})"}

    def _escalation(self, delivery: Delivery) -> dict[str, object]:
        payload = delivery.payload
        groups = payload.get("groups")
        if groups is None:  # queued before emails listed each person once: one group, as it was written
            groups = [{"title": "Needs attention", "known": [], "new": [
                {"name": a["name"], "reasons": [a["why"]]} for a in payload.get("attention", [])]}]
        caught_up = payload.get("caught_up", [r["name"] for r in payload.get("resolved", [])])
        return {"groups": [g for g in groups if g["new"] or g["known"]], "caught_up": caught_up,
                "undeliverable": payload.get("undeliverable", []), "admin": delivery.person is None,
                "headline": "Your team and our staff guidelines" if delivery.person else "People who need attention"}


def _notice_of(delivery: Delivery) -> Notice:
    return next(item.notice for item in delivery.items if item.notice is not None)
