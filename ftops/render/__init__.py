"""Views of a Plan for people (terminal, markdown, charts) and machines (json)."""

from __future__ import annotations

from ftops.plan import Plan
from ftops.render.common import as_of_line
from ftops.render.details import JobFacts, details_text
from ftops.render.markdown import FULL_PLAN, render_markdown, summary_title
from ftops.render.terminal import render_text

__all__ = ["FULL_PLAN", "JobFacts", "as_of_line", "details_text", "render_json",
           "render_markdown", "render_text", "summary_title"]


def render_json(plan: Plan) -> str:
    return plan.to_json()
