"""The Actions run: its context read from the standard variables and the event file, fork
detection, and the two files the runner reads back (step outputs and the job summary).

Every text written to those files goes through :func:`redact` first.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftops.errors import FtopsError, redact

BOT_LOGIN = "github-actions[bot]"
_PR_EVENTS = ("pull_request", "pull_request_target")
# Environment variables whose values are never written anywhere (names normalised to A_B form).
_SECRET_NAME = re.compile(r"(^|_)(TOKEN|API_KEY|SECRET|PASSWORD)$")
_MIN_ENV_SECRET = 8  # shorter values (flags like "true") are not treated as secrets


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

    @property
    def secret_values(self) -> tuple[str, ...]:
        """The token and the environment's secrets: what is redacted from every text written."""
        return (self.token or "", *self.secrets)


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
    pr = dig(event, "pull_request") if event_name in _PR_EVENTS else None
    number = dig(pr, "number")
    head_repo = dig(pr, "head", "repo", "full_name")  # None when the fork was deleted
    base_repo = dig(pr, "base", "repo", "full_name") or repository
    return ActionsContext(
        event_name=event_name,
        repository=repository,
        api_url=env.get("GITHUB_API_URL", "https://api.github.com").rstrip("/"),
        server_url=env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/"),
        run_id=env.get("GITHUB_RUN_ID") or None,
        sha=env.get("GITHUB_SHA") or None,
        ref=env.get("GITHUB_REF") or None,
        default_branch=dig(event, "repository", "default_branch"),
        pr_number=number if isinstance(number, int) else None,
        base_sha=dig(pr, "base", "sha"),
        head_sha=dig(pr, "head", "sha"),
        is_fork=pr is not None and head_repo != base_repo,
        summary_path=_path(env.get("GITHUB_STEP_SUMMARY")),
        output_path=_path(env.get("GITHUB_OUTPUT")),
        comment_author=env.get("FTOPS_COMMENT_AUTHOR") or BOT_LOGIN,
        token=env.get("GITHUB_TOKEN") or None,
        secrets=_env_secrets(env),
    )


def write_summary(ctx: ActionsContext, markdown: str) -> None:
    """Append to the job summary (GITHUB_STEP_SUMMARY); nothing when the runner gives none."""
    if ctx.summary_path is not None:
        _append(ctx.summary_path, redact(markdown, ctx.secret_values).rstrip("\n") + "\n\n")


def write_outputs(ctx: ActionsContext, outputs: Mapping[str, object]) -> None:
    """Set step outputs (GITHUB_OUTPUT). Booleans become true/false; mappings and lists become
    JSON, written like multi-line strings with the heredoc syntax and a random delimiter."""
    if ctx.output_path is None:
        return
    parts = []
    for name, value in outputs.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name):
            raise FtopsError(f"invalid step output name {name!r}")
        text = redact(_output_text(value), ctx.secret_values)
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


def dig(value: object, *keys: str) -> Any:
    """``value[k1][k2]...`` of decoded JSON, or None as soon as a level is missing or not an
    object (events and API replies are not trusted to have the documented shape)."""
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _output_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (Mapping, list, tuple)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def _env_secrets(env: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(
        sorted(
            value
            for name, value in env.items()
            if _SECRET_NAME.search(name.upper().replace("-", "_")) and len(value) >= _MIN_ENV_SECRET
        )
    )


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


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None
