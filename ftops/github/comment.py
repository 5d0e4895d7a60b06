"""The sticky PR comment that is the approval record.

One comment per spec directory is found again by a hidden marker and edited in place (as
dflook/terraform-github-actions and Atlantis do). It embeds the hash of the plan it shows; on the
push that merges the pull request, apply re-plans and refuses when the hash differs from the
reviewed one. Every text sent to GitHub goes through :func:`redact` first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ftops.errors import FtopsError, StalePlanError, redact
from ftops.github.client import GitHubApi
from ftops.github.context import ActionsContext, dig

COMMENT_LIMIT = 65_536
_HASH_MARKER = re.compile(r"<!-- ftops:plan-hash:([A-Za-z0-9:_.-]+) -->")
_HEADER_LINE = re.compile(r"^<!-- ftops:plan(?:-hash)?:[^\n]* -->\n?", re.MULTILINE)
_APPLY_BEGIN, _APPLY_END = "<!-- ftops:apply:begin -->", "<!-- ftops:apply:end -->"
_APPLY_SECTION = re.compile(
    re.escape(_APPLY_BEGIN) + r".*?(?:" + re.escape(_APPLY_END) + r"|\Z)\s*(?:---\s*)?", re.DOTALL
)
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


@dataclass(frozen=True)
class Comment:
    id: int
    url: str
    body: str
    created: bool  # True when this call posted it, False when it edited an earlier one


def comment_marker(marker_key: str) -> str:
    """The hidden marker of the comment for one spec directory."""
    return f"<!-- ftops:plan:{re.sub(r'[^A-Za-z0-9._/-]', '_', marker_key)} -->"


def plan_hash_marker(plan_hash: str) -> str:
    marker = f"<!-- ftops:plan-hash:{plan_hash} -->"
    if not _HASH_MARKER.fullmatch(marker):
        raise FtopsError(f"invalid plan hash {plan_hash!r}", hint="expected a hex sha256")
    return marker


def upsert_comment(
    ctx: ActionsContext, body: str, marker_key: str, *, plan_hash: str | None = None
) -> Comment:
    """Post the plan comment on the pull request, or edit the one posted by an earlier run."""
    if ctx.pr_number is None:
        raise FtopsError(
            f"cannot comment: the {ctx.event_name} event is not a pull request",
            hint="comment only from a workflow triggered by pull_request",
        )
    api = _api(ctx)
    existing = _find_comment(api, ctx, ctx.pr_number, marker_key)
    return _put_comment(
        api, ctx, ctx.pr_number, existing, _compose(ctx, marker_key, plan_hash, body)
    )


def reviewed_plan_hash(ctx: ActionsContext, marker_key: str) -> str | None:
    """The plan hash in the ftops comment of the pull request this run is about.

    On a push, that is the merged pull request the pushed commit came from. None when there is no
    such pull request, no ftops comment on it, or no hash in the comment.
    """
    api = _api(ctx)
    number = _pull_request_number(api, ctx)
    comment = None if number is None else _find_comment(api, ctx, number, marker_key)
    match = None if comment is None else _HASH_MARKER.search(comment.get("body") or "")
    return None if match is None else match.group(1)


def check_approval(reviewed_hash: str | None, current_hash: str, *, allow_changed: bool) -> None:
    """Refuse to apply a plan other than the one reviewed in the pull request."""
    if reviewed_hash == current_hash or allow_changed:
        return
    hint = "review the new plan in a pull request, or re-run apply with --allow-plan-changed"
    if reviewed_hash is None:
        raise StalePlanError(
            "plan-changed: no reviewed plan found for this commit "
            "(it did not come from a pull request with an ftops plan comment)",
            hint=hint,
        )
    raise StalePlanError(
        f"plan-changed: the plan ({current_hash[:12]}) differs from the one reviewed in the pull "
        f"request ({reviewed_hash[:12]}); the account or the specs changed since review",
        hint=hint,
    )


def report_apply(ctx: ActionsContext, marker_key: str, markdown: str) -> Comment | None:
    """Put the apply outcome at the top of the pull request's ftops comment, above the reviewed
    plan (posting a comment if there is none). None when the run belongs to no pull request."""
    api = _api(ctx)
    number = _pull_request_number(api, ctx)
    if number is None:
        return None
    existing = _find_comment(api, ctx, number, marker_key)
    old = "" if existing is None else existing.get("body") or ""
    match = _HASH_MARKER.search(old)
    reviewed = _APPLY_SECTION.sub("", _HEADER_LINE.sub("", old)).strip()
    body = f"{_APPLY_BEGIN}\n{markdown}\n{_APPLY_END}"
    if reviewed:
        body = f"{body}\n\n---\n\n{reviewed}"
    text = _compose(ctx, marker_key, match.group(1) if match else None, body)
    return _put_comment(api, ctx, number, existing, text)


def fit_markdown(markdown: str, limit: int, *, where: str) -> str:
    """``markdown`` cut at a line boundary to at most ``limit`` characters, note included.

    Code fences open at the cut are closed; a mermaid block open at the cut is dropped whole (half
    a chart does not render); open ``<details>`` are closed. The note says the text was
    truncated and that the full text is in ``where``.
    """
    if _length(markdown) <= limit:
        return markdown
    lines = [line + "\n" for line in markdown.removesuffix("\n").split("\n")]

    def note(shown: int) -> str:
        return (
            f"\n> [!WARNING]\n> Truncated to fit GitHub's {COMMENT_LIMIT:,}-character limit "
            f"({shown} of {len(lines)} lines shown). The full plan is in {where}.\n"
        )

    budget = limit - _length(note(len(lines)))
    # states[i]: (open fence or None, line index where it opened, open <details>) after i lines.
    states: list[tuple[str | None, int, int]] = [(None, 0, 0)]
    sizes = [0]
    fence: str | None = None
    fence_start = details = 0
    for i, line in enumerate(lines):
        match = _FENCE.match(line)
        if fence is None and match:
            fence, fence_start = match.group(1), i
            if match.group(2).strip().startswith("mermaid"):
                fence = "mermaid:" + fence
        elif fence is not None and match and _closes(fence, match):
            fence = None
        elif fence is None:
            details += line.count("<details") - line.count("</details>")
            details = max(details, 0)
        states.append((fence, fence_start, details))
        sizes.append(sizes[-1] + _length(line))
    for cut in range(len(lines), -1, -1):
        fence, fence_start, details = states[cut]
        if fence is not None and fence.startswith("mermaid:"):
            cut, (fence, _, details) = fence_start, states[fence_start]
        closers = (f"{fence}\n" if fence else "") + "</details>\n" * details
        if sizes[cut] + _length(closers) <= budget:
            return "".join(lines[:cut]) + closers + note(cut)
    return note(0)[1:]


def _api(ctx: ActionsContext) -> GitHubApi:
    if not ctx.token:
        raise FtopsError("GITHUB_TOKEN is not set", hint="pass `github-token` to the ftops action")
    return GitHubApi(ctx.api_url, ctx.token, ctx.secrets)


def _find_comment(
    api: GitHubApi, ctx: ActionsContext, number: int, marker_key: str
) -> dict[str, Any] | None:
    """The oldest comment carrying the marker, among those written by ``ctx.comment_author``
    (anyone can paste a marker; only the bot's comment is the approval record)."""
    marker = comment_marker(marker_key)
    for comment in api.get_all(f"/repos/{ctx.repository}/issues/{number}/comments"):
        if (
            isinstance(comment, dict)
            and marker in (comment.get("body") or "")
            and dig(comment, "user", "login") == ctx.comment_author
        ):
            return comment
    return None


def _put_comment(
    api: GitHubApi, ctx: ActionsContext, number: int, existing: dict[str, Any] | None, text: str
) -> Comment:
    if existing is None:
        data = api.request(
            "POST", f"/repos/{ctx.repository}/issues/{number}/comments", {"body": text}
        )
    else:
        path = f"/repos/{ctx.repository}/issues/comments/{existing['id']}"
        data = api.request("PATCH", path, {"body": text})
    return Comment(
        id=int(data["id"]),
        url=str(data.get("html_url", "")),
        body=str(data.get("body", text)),
        created=existing is None,
    )


def _pull_request_number(api: GitHubApi, ctx: ActionsContext) -> int | None:
    """The pull request of this run: the event's own, or the merged one ``ctx.sha`` came from."""
    if ctx.pr_number is not None:
        return ctx.pr_number
    if ctx.sha is None:
        return None
    pulls = [
        p
        for p in api.get_all(f"/repos/{ctx.repository}/commits/{ctx.sha}/pulls")
        if isinstance(p, dict) and p.get("merged_at") and isinstance(p.get("number"), int)
    ]
    pulls.sort(key=lambda p: p.get("merge_commit_sha") != ctx.sha)  # the merge itself first
    return pulls[0]["number"] if pulls else None


def _compose(ctx: ActionsContext, marker_key: str, plan_hash: str | None, markdown: str) -> str:
    header = comment_marker(marker_key) + "\n"
    if plan_hash is not None:
        header += plan_hash_marker(plan_hash) + "\n"
    where = (
        f"the job summary of [this workflow run]({ctx.run_url})"
        if ctx.run_url
        else "the job summary of this workflow run"
    )
    body = fit_markdown(
        redact(markdown, ctx.secret_values), COMMENT_LIMIT - _length(header), where=where
    )
    return header + body


def _closes(fence: str, match: re.Match[str]) -> bool:
    opening = fence.removeprefix("mermaid:")
    run = match.group(1)
    return run[0] == opening[0] and len(run) >= len(opening) and not match.group(2).strip()


def _length(text: str) -> int:
    """Length in UTF-16 code units: never less than len(), and what browsers count."""
    return len(text.encode("utf-16-le")) // 2
