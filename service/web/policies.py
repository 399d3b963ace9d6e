"""The current text of a policy, one anchor per section (where "Read the section" lands)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from service.models import Policy
from service.rendering import section_anchor
from service.web.context import Web, current, page

router = APIRouter()


@router.get("/policies/{slug}", response_class=HTMLResponse)
def policy_page(slug: str, web: Web = Depends(current)) -> HTMLResponse:
    with web.unit_of_work() as session:
        policy = session.scalar(select(Policy).where(Policy.slug == slug))
        if policy is None or not policy.versions:
            return page("not_found", 404)
        version = policy.versions[-1]
        sections = [(section_anchor(s.title), s.title, s.text.split("\n\n") if s.text else [])
                    for s in version.sections]
        return page("policy", title=policy.title, version=version.label, sections=sections)
