"""Turning a Canvas outbox row into the announcement's title and HTML body."""

from __future__ import annotations

from datetime import datetime

from markupsafe import Markup


from service.channels import Message, Skeleton
from service.models import (
    Delivery,
)
from service.rendering import render_markdown, safe_summary, section_url, template_env
from service.engagement import Links


class CanvasRenderer:
    """Turns a Canvas outbox row into the announcement's title and HTML body."""

    def __init__(self, base_url: str, links: Links):
        self.base_url = base_url
        self.links = links

    def render(self, delivery: Delivery) -> Message:
        payload = delivery.payload
        if delivery.kind == "notice":
            body = self._notice_body(delivery)
        else:
            body = self._tip_body(delivery)
        post_at = payload.get("post_at")
        return Message(
            delivery_id=delivery.id,
            kind=delivery.kind,
            to_email="",
            to_name=f"course {payload['course_id']}",
            skeleton=Skeleton(subject=delivery.subject, html=body, text=""),
            options={
                "course_id": payload["course_id"],
                "marker": payload["marker"],
                "section_ids": payload.get("section_ids") or [],
                "post_at": datetime.fromisoformat(post_at) if post_at else None,
                "search_from": datetime.fromisoformat(payload["search_from"]),
                "search_to": datetime.fromisoformat(payload["search_to"]),
            },
        )

    def _tip_body(self, delivery: Delivery) -> str:
        tips = [item.tip for item in delivery.items if item.tip is not None]
        if not tips:
            raise ValueError("a Canvas tip post without a tip")
        tip = tips[0]
        refs = [r for r in tip.refs if r != tip.section]
        return template_env().get_template("canvas/announcement.html.j2").render(
            headline=tip.title,
            body_html=Markup(render_markdown(tip.body)),
            citation=" · ".join([tip.section, *refs]),
            section_link=self.links.click(delivery.id, section_url(self.base_url, tip.policy.slug, tip.section)),
            ack_url=self.links.ack(delivery.id),
            marker=delivery.payload["marker"],
        )

    def _notice_body(self, delivery: Delivery) -> str:
        notice = next((item.notice for item in delivery.items if item.notice is not None), None)
        if notice is None:
            raise ValueError("a Canvas notice post without a notice")
        version = notice.policy_version
        return template_env().get_template("canvas/notice.html.j2").render(
            policy_title=version.policy.title,
            version=version.label,
            due_on=f"{notice.due_on.day} {notice.due_on:%B %Y}",
            summary=safe_summary(notice.summary),
            policy_link=self.links.click(delivery.id, f"{self.base_url}/policies/{version.policy.slug}"),
            ack_url=self.links.ack(delivery.id, f"notice:{notice.id}"),
            marker=delivery.payload["marker"],
        )
