"""GitHub Actions: the run's context, the sticky PR comment that is the approval record, the job
summary and step outputs.

One comment per spec directory is found again by a hidden marker and edited in place (as
dflook/terraform-github-actions and Atlantis do). It embeds the hash of the plan it shows; on the
push that merges the pull request, apply re-plans and refuses when the hash differs from the
reviewed one. Every text sent to GitHub or written to a file goes through :func:`redact` first.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from ftops.errors import FtopsError, redact

COMMENT_LIMIT = 65_536
BOT_LOGIN = "github-actions[bot]"
_PR_EVENTS = ("pull_request", "pull_request_target")
# Environment variables whose values are never written anywhere (names normalised to A_B form).
_SECRET_NAME = re.compile(r"(^|_)(TOKEN|API_KEY|SECRET|PASSWORD)$")
_MIN_ENV_SECRET = 8  # shorter values (flags like "true") are not treated as secrets
_HASH_MARKER = re.compile(r"<!-- ftops:plan-hash:([A-Za-z0-9:_.-]+) -->")
_HEADER_LINE = re.compile(r"^<!-- ftops:plan(?:-hash)?:[^\n]* -->\n?", re.MULTILINE)
_APPLY_BEGIN, _APPLY_END = "<!-- ftops:apply:begin -->", "<!-- ftops:apply:end -->"
_APPLY_SECTION = re.compile(
    re.escape(_APPLY_BEGIN) + r".*?(?:" + re.escape(_APPLY_END) + r"|\Z)\s*(?:---\s*)?", re.DOTALL
)
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


@dataclass(frozen=True)
class ActionsContext:
    """What this GitHub Actions run is about, read once from the standard variables."""

    event_name: str
    repository: str  # owner/name
    api_url: str
    server_url: str
    run_id: str | None
    sha: str | None
    ref: str | None
    default_branch: str | None
    pr_number: int | None
    base_sha: str | None
    head_sha: str | None
    is_fork: bool  # head repository differs from the base repository: no secrets
    summary_path: Path | None
    output_path: Path | None
    comment_author: str = BOT_LOGIN  # login whose comments are trusted as the approval record
    token: str | None = field(default=None, repr=False)
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @property
    def is_pull_request(self) -> bool:
        return self.pr_number is not None

    @property
    def is_push_to_default_branch(self) -> bool:
        return (
            self.event_name == "push"
            and self.default_branch is not None
            and self.ref == f"refs/heads/{self.default_branch}"
        )

    @property
    def run_url(self) -> str | None:
        if self.run_id is None:
            return None
        return f"{self.server_url}/{self.repository}/actions/runs/{self.run_id}"


def actions_context(env: Mapping[str, str] | None = None) -> ActionsContext | None:
    """The context of the current run, or None when not running in GitHub Actions.

    ``FTOPS_COMMENT_AUTHOR`` names the login that posts comments when the token is not the
    default ``GITHUB_TOKEN`` (a personal token or a GitHub App token).
    """
    env = os.environ if env is None else env
    if env.get("GITHUB_ACTIONS") != "true":
        return None
    repository = _required(env, "GITHUB_REPOSITORY")
    event_name = _required(env, "GITHUB_EVENT_NAME")
    event = _read_event(env.get("GITHUB_EVENT_PATH"))
    pr = _dig(event, "pull_request") if event_name in _PR_EVENTS else None
    number = _dig(pr, "number")
    head_repo = _dig(pr, "head", "repo", "full_name")  # None when the fork was deleted
    base_repo = _dig(pr, "base", "repo", "full_name") or repository
    return ActionsContext(
        event_name=event_name,
        repository=repository,
        api_url=env.get("GITHUB_API_URL", "https://api.github.com").rstrip("/"),
        server_url=env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/"),
        run_id=env.get("GITHUB_RUN_ID") or None,
        sha=env.get("GITHUB_SHA") or None,
        ref=env.get("GITHUB_REF") or None,
        default_branch=_dig(event, "repository", "default_branch"),
        pr_number=number if isinstance(number, int) else None,
        base_sha=_dig(pr, "base", "sha"),
        head_sha=_dig(pr, "head", "sha"),
        is_fork=pr is not None and head_repo != base_repo,
        summary_path=_path(env.get("GITHUB_STEP_SUMMARY")),
        output_path=_path(env.get("GITHUB_OUTPUT")),
        comment_author=env.get("FTOPS_COMMENT_AUTHOR") or BOT_LOGIN,
        token=env.get("GITHUB_TOKEN") or None,
        secrets=_env_secrets(env),
    )


@dataclass(frozen=True)
class GitHubApi:
    """A minimal REST client: JSON in and out, Bearer token, ``Link`` pagination, no redirects."""

    base_url: str
    token: str = field(repr=False)
    secrets: tuple[str, ...] = field(default=(), repr=False)
    timeout: float = 30.0

    def request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        data, _ = self._send(method, self.base_url + path, body)
        return data

    def get_all(self, path: str) -> list[Any]:
        """Every item of a list endpoint, following ``Link: <...>; rel="next"`` headers."""
        url: str | None = f"{self.base_url}{path}?{urlencode({'per_page': 100})}"
        items: list[Any] = []
        while url is not None:
            data, link = self._send("GET", url, None)
            if not isinstance(data, list):
                raise FtopsError(f"GitHub API: GET {path} did not return a list")
            items.extend(data)
            url = _next_link(link)
            if url is not None and not url.startswith(self.base_url + "/"):
                # The token goes only to the configured API host.
                raise FtopsError(f"GitHub API: GET {path} paginated to another host")
        return items

    def _send(
        self, method: str, url: str, body: Mapping[str, Any] | None
    ) -> tuple[Any, str | None]:
        request = urllib.request.Request(
            url,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "Content-Type": "application/json",
                "User-Agent": "ftops",
            },
        )
        path = url.removeprefix(self.base_url).split("?")[0]
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                payload, link = response.read(), response.headers.get("Link")
        except urllib.error.HTTPError as exc:
            raise self._status_error(method, path, exc) from None
        except (OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise FtopsError(
                self._redact(f"cannot reach the GitHub API at {self.base_url}: {reason}"),
                hint="check GITHUB_API_URL and the runner's network",
            ) from None
        try:
            return (json.loads(payload) if payload else None), link
        except ValueError:
            raise FtopsError(f"GitHub API: {method} {path} returned invalid JSON") from None

    def _status_error(self, method: str, path: str, exc: urllib.error.HTTPError) -> FtopsError:
        try:
            detail = str(json.loads(exc.read()).get("message", ""))
        except (ValueError, AttributeError, OSError):
            detail = ""
        hints = {
            401: "the github-token is missing, invalid or expired",
            403: "give the workflow `permissions: pull-requests: write` (pull requests from "
            "forks get a read-only token), or wait if this is a rate limit",
            404: "check the repository name and that the token can access it",
            429: "GitHub is rate limiting; re-run the job later",
        }
        hint = hints.get(exc.code) or (
            "GitHub is unavailable; re-run the job" if exc.code >= 500 else None
        )
        message = f"GitHub API: {method} {path} returned HTTP {exc.code}"
        if detail:
            message = f"{message}: {detail[:200]}"
        return FtopsError(self._redact(message), hint=hint)

    def _redact(self, text: str) -> str:
        return redact(text, (self.token, *self.secrets))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib would resend the Authorization header to wherever a redirect points."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


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
        raise FtopsError(
            "plan-changed: no reviewed plan found for this commit "
            "(it did not come from a pull request with an ftops plan comment)",
            hint=hint,
        )
    raise FtopsError(
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


def write_summary(ctx: ActionsContext, markdown: str) -> None:
    """Append to the job summary (GITHUB_STEP_SUMMARY); nothing when the runner gives none."""
    if ctx.summary_path is not None:
        _append(ctx.summary_path, redact(markdown, _secrets(ctx)).rstrip("\n") + "\n\n")


def write_outputs(ctx: ActionsContext, outputs: Mapping[str, object]) -> None:
    """Set step outputs (GITHUB_OUTPUT). Booleans become true/false; mappings and lists become
    JSON, written like multi-line strings with the heredoc syntax and a random delimiter."""
    if ctx.output_path is None:
        return
    parts = []
    for name, value in outputs.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name):
            raise FtopsError(f"invalid step output name {name!r}")
        text = redact(_output_text(value), _secrets(ctx))
        if isinstance(value, (Mapping, list, tuple)) or "\n" in text or "\r" in text:
            delimiter = f"ftops_{uuid.uuid4().hex}"
            parts.append(f"{name}<<{delimiter}\n{text}\n{delimiter}\n")
        else:
            parts.append(f"{name}={text}\n")
    _append(ctx.output_path, "".join(parts))


def is_fork_without_secrets(ctx: ActionsContext, api_key_present: bool) -> bool:
    """A pull request from a fork runs without repository secrets (and with a read-only token):
    ftops then validates offline, explains in the summary and exits 0."""
    return ctx.is_pull_request and ctx.is_fork and not api_key_present


def fork_notice_markdown() -> str:
    return (
        "### ftops: plan skipped for a pull request from a fork\n\n"
        "GitHub does not give workflows triggered by pull requests from forks access to "
        "repository secrets, so ftops could not read the OpenAI account and did not comment on "
        "the pull request. The specs and datasets were validated offline.\n\n"
        "The plan is computed when the change reaches a branch of this repository: after merge, "
        "the apply workflow re-plans with the repository's secrets before it trains anything.\n"
    )


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
            and _dig(comment, "user", "login") == ctx.comment_author
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
        redact(markdown, _secrets(ctx)), COMMENT_LIMIT - _length(header), where=where
    )
    return header + body


def _closes(fence: str, match: re.Match[str]) -> bool:
    opening = fence.removeprefix("mermaid:")
    run = match.group(1)
    return run[0] == opening[0] and len(run) >= len(opening) and not match.group(2).strip()


def _length(text: str) -> int:
    """Length in UTF-16 code units: never less than len(), and what browsers count."""
    return len(text.encode("utf-16-le")) // 2


def _output_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (Mapping, list, tuple)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def _secrets(ctx: ActionsContext) -> tuple[str, ...]:
    return (ctx.token or "", *ctx.secrets)


def _env_secrets(env: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(
        sorted(
            value
            for name, value in env.items()
            if _SECRET_NAME.search(name.upper().replace("-", "_")) and len(value) >= _MIN_ENV_SECRET
        )
    )


def _next_link(header: str | None) -> str | None:
    match = re.search(r'<([^>]+)>\s*;\s*rel="?next"?', header or "")
    return match.group(1) if match else None


def _append(path: Path, text: str) -> None:
    try:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise FtopsError(f"cannot write: {exc.strerror}", path=str(path)) from None


def _read_event(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise FtopsError(f"cannot read the GitHub event file: {exc.strerror}", path=path) from None
    try:
        event = json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"invalid JSON in the GitHub event: {exc.msg}"
        raise FtopsError(message, path=path, line=exc.lineno) from None
    if not isinstance(event, dict):
        raise FtopsError("the GitHub event is not a JSON object", path=path)
    return event


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    if not value:
        raise FtopsError(f"{name} is not set although GITHUB_ACTIONS is true")
    return value


def _dig(value: object, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None
