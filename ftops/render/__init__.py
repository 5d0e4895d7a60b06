"""Views of a Plan for people (terminal, markdown, charts) and machines (json)."""

from __future__ import annotations

from ftops.plan import Plan
from ftops.render.common import as_of_line
from ftops.render.markdown import render_markdown
from ftops.render.terminal import render_text

__all__ = ["as_of_line", "render_json", "render_markdown", "render_text"]


def render_json(plan: Plan) -> str:
    return plan.to_json()
