"""The ``ftops plan`` check run on the pull request's head commit, which branch protection can
require: success when the plan is valid, failure when it has errors (apply would refuse it).

The Checks API needs ``permissions: checks: write``; without it GitHub answers 403 ("Resource
not accessible by integration"), and plan says so in one line and goes on: the comment and
the job summary do not depend on the check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ftops.errors import FtopsError, RemoteError, redact
from ftops.github.client import GitHubApi
from ftops.github.context import ActionsContext, dig

CHECK_NAME = "ftops plan"
TITLE_LIMIT = 1_000  # GitHub accepts longer titles, but shows one line
SUMMARY_LIMIT = 65_535  # the Checks API's limit on output.summary, in characters


@dataclass(frozen=True)
class CheckRun:
    id: int | None  # None when the check could not be written
    url: str
    created: bool
    warning: str | None = None  # why there is no check run, in one line


def report_check(ctx: ActionsContext, *, title: str, summary: str, ok: bool) -> CheckRun:
    """Create, or update when one exists, the check run on the pull request's head commit.

    A refusal of the Checks API (no ``checks: write``, or a fork's read-only token) becomes
    ``CheckRun.warning``; other failures raise as every GitHub error does."""
    sha = ctx.head_sha or ctx.sha
    if sha is None:
        raise FtopsError(f"cannot write the check run: the {ctx.event_name} event names no commit")
    if not ctx.token:
        raise FtopsError("GITHUB_TOKEN is not set", hint="pass `github-token` to the ftops action")
    api = GitHubApi(ctx.api_url, ctx.token, ctx.secrets)
    body: dict[str, Any] = {
        "name": CHECK_NAME,
        "head_sha": sha,
        "status": "completed",
        "conclusion": "success" if ok else "failure",
        "output": {"title": _one_line(title)[:TITLE_LIMIT],
                   "summary": redact(summary, ctx.secret_values)[:SUMMARY_LIMIT]},
    }
    if ctx.run_url:
        body["details_url"] = ctx.run_url
    try:
        existing = _find(api, ctx.repository, sha)
        if existing is None:
            data = api.request("POST", f"/repos/{ctx.repository}/check-runs", body)
        else:
            path = f"/repos/{ctx.repository}/check-runs/{existing}"
            data = api.request("PATCH", path, {k: v for k, v in body.items() if k != "head_sha"})
    except RemoteError as exc:
        if " returned HTTP 403" not in exc.message:
            raise
        return CheckRun(None, "", False, warning=(
            f"no `{CHECK_NAME}` check run: {exc.message} (give the workflow "
            "`permissions: checks: write`; pull requests from forks get a read-only token)"))
    return CheckRun(int(data["id"]), str(data.get("html_url", "")), existing is None)


def _find(api: GitHubApi, repository: str, sha: str) -> int | None:
    """The id of the commit's check run of that name, if one was written before."""
    data = api.request("GET", f"/repos/{repository}/commits/{sha}/check-runs"
                              f"?check_name={quote(CHECK_NAME)}&filter=latest")
    runs = dig(data, "check_runs")
    for run in runs if isinstance(runs, list) else []:
        if isinstance(run, dict) and run.get("name") == CHECK_NAME and isinstance(
                run.get("id"), int):
            return int(run["id"])
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())
