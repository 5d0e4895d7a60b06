"""GitHub Actions: the run's context, the sticky PR comment that is the approval record, the job
summary and step outputs.

``context`` reads the run and writes the runner's files, ``client`` talks to the REST API and
``comment`` keeps the approval record, ``checks`` the
``ftops plan`` check run. This package sits below the commands: it imports
neither the OpenAI SDK, the commands nor the emulator.
"""

from ftops.errors import redact  # every text this package writes goes through it
from ftops.github.checks import CHECK_NAME, CheckRun, report_check
from ftops.github.client import GitHubApi
from ftops.github.comment import (
    COMMENT_LIMIT,
    Comment,
    check_approval,
    comment_marker,
    fit_markdown,
    plan_hash_marker,
    report_apply,
    reviewed_plan_hash,
    upsert_comment,
)
from ftops.github.context import (
    BOT_LOGIN,
    ActionsContext,
    actions_context,
    fork_notice_markdown,
    is_fork_without_secrets,
    write_outputs,
    write_summary,
)

__all__ = [
    "BOT_LOGIN",
    "CHECK_NAME",
    "COMMENT_LIMIT",
    "ActionsContext",
    "CheckRun",
    "Comment",
    "GitHubApi",
    "actions_context",
    "check_approval",
    "comment_marker",
    "fit_markdown",
    "fork_notice_markdown",
    "is_fork_without_secrets",
    "plan_hash_marker",
    "redact",
    "report_apply",
    "report_check",
    "reviewed_plan_hash",
    "upsert_comment",
    "write_outputs",
    "write_summary",
]
