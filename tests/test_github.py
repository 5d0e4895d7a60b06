from __future__ import annotations

import dataclasses
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_github import BOT, FakeGitHub

from ftops import github
from ftops.errors import FtopsError
from ftops.github import ActionsContext

REPO = "acme/models"
TOKEN = "ghs_TESTTOKEN0123456789abcdef"
FORK_TOKEN = "ghs_FORKTOKEN0123456789abcdef"
API_KEY = "sk-test-0123456789abcdefSECRET"
HASH_A = "a" * 64
HASH_B = "b" * 64
MARKER = "<!-- ftops:plan:specs -->"


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    tokens = {TOKEN: BOT, FORK_TOKEN: BOT, "ghp_otheruser0123456789": "mallory"}
    with FakeGitHub(tokens, read_only_tokens=frozenset({FORK_TOKEN})) as server:
        yield server


def pr_event(number: int = 7, head_repo: str | None = REPO) -> dict[str, Any]:
    return {
        "pull_request": {
            "number": number,
            "base": {"sha": "b" * 40, "repo": {"full_name": REPO}},
            "head": {"sha": "c" * 40, "repo": {"full_name": head_repo} if head_repo else None},
        },
        "repository": {"full_name": REPO, "default_branch": "main"},
    }


def merged(number: int, merge_sha: str) -> dict[str, Any]:
    return {"number": number, "merged_at": "2026-11-25T00:00:00Z", "merge_commit_sha": merge_sha}


def push_event() -> dict[str, Any]:
    return {"after": "d" * 40, "repository": {"full_name": REPO, "default_branch": "main"}}


def make_env(
    tmp_path: Path, api_url: str, event: dict[str, Any], event_name: str, **extra: str
) -> dict[str, str]:
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(event))
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": event_name,
        "GITHUB_EVENT_PATH": str(event_file),
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_API_URL": api_url,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_RUN_ID": "42",
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "GITHUB_OUTPUT": str(tmp_path / "output.txt"),
        "GITHUB_SHA": "d" * 40,
        "GITHUB_REF": "refs/heads/main" if event_name == "push" else "refs/pull/7/merge",
        "OPENAI_API_KEY": API_KEY,
    }
    env.update(extra)
    return env


def pr_ctx(tmp_path: Path, fake: FakeGitHub, **extra: str) -> ActionsContext:
    ctx = github.actions_context(make_env(tmp_path, fake.url, pr_event(), "pull_request", **extra))
    assert ctx is not None
    return ctx


def push_ctx(tmp_path: Path, fake: FakeGitHub) -> ActionsContext:
    ctx = github.actions_context(make_env(tmp_path, fake.url, push_event(), "push"))
    assert ctx is not None
    return ctx


def sent_text(fake: FakeGitHub) -> str:
    """Everything sent to the server except the Authorization header, which must carry it."""
    return json.dumps(
        [
            [r.method, r.path, r.query, r.body]
            + [v for k, v in r.headers.items() if k.lower() != "authorization"]
            for r in fake.requests
        ]
    )


def read_outputs(path: Path) -> dict[str, str]:
    """Parse GITHUB_OUTPUT the way the runner does: name=value or name<<DELIM ... DELIM."""
    lines = path.read_text().split("\n")
    out: dict[str, str] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, i + 1)
            out[name] = "\n".join(lines[i + 1 : end])
            i = end + 1
        elif line:
            name, value = line.split("=", 1)
            out[name] = value
            i += 1
        else:
            i += 1
    return out


# --- context -------------------------------------------------------------------------------


def test_not_in_actions_gives_none() -> None:
    assert github.actions_context({}) is None
    assert github.actions_context({"GITHUB_ACTIONS": "false", "GITHUB_REPOSITORY": REPO}) is None


def test_pull_request_context(tmp_path: Path) -> None:
    env = make_env(tmp_path, "https://api.github.com/", pr_event(), "pull_request")
    ctx = github.actions_context(env)
    assert ctx is not None
    assert (ctx.event_name, ctx.repository, ctx.pr_number) == ("pull_request", REPO, 7)
    assert (ctx.base_sha, ctx.head_sha) == ("b" * 40, "c" * 40)
    assert ctx.api_url == "https://api.github.com"
    assert ctx.run_url == "https://github.com/acme/models/actions/runs/42"
    assert ctx.is_pull_request and not ctx.is_fork and not ctx.is_push_to_default_branch
    assert ctx.summary_path == tmp_path / "summary.md"
    assert ctx.output_path == tmp_path / "output.txt"
    assert ctx.token == TOKEN
    assert set(ctx.secrets) == {TOKEN, API_KEY}
    assert ctx.comment_author == BOT
    assert TOKEN not in repr(ctx) and API_KEY not in repr(ctx)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.pr_number = 8  # type: ignore[misc]


def test_push_context(tmp_path: Path) -> None:
    ctx = github.actions_context(make_env(tmp_path, "http://x", push_event(), "push"))
    assert ctx is not None
    assert ctx.pr_number is None and not ctx.is_fork
    assert ctx.default_branch == "main" and ctx.is_push_to_default_branch
    assert ctx.sha == "d" * 40


def test_env_secrets_cover_provider_keys_not_short_flags(tmp_path: Path) -> None:
    env = make_env(
        tmp_path,
        "http://x",
        push_event(),
        "push",
        AZURE_OPENAI_API_KEY="azure-key-123456789",
        FEATURE_TOKEN="true",
        MY_SECRET="hunter2hunter2",
        PLAIN_SETTING="notasecretvalue",
    )
    ctx = github.actions_context(env)
    assert ctx is not None
    assert set(ctx.secrets) == {TOKEN, API_KEY, "azure-key-123456789", "hunter2hunter2"}


def test_fork_detection(tmp_path: Path) -> None:
    env = make_env(tmp_path, "http://x", pr_event(head_repo="stranger/models"), "pull_request")
    del env["OPENAI_API_KEY"]
    ctx = github.actions_context(env)
    assert ctx is not None and ctx.is_fork
    assert github.is_fork_without_secrets(ctx, api_key_present=False)
    assert not github.is_fork_without_secrets(ctx, api_key_present=True)
    deleted = github.actions_context(
        make_env(tmp_path, "http://x", pr_event(head_repo=None), "pull_request")
    )
    assert deleted is not None and deleted.is_fork
    same = github.actions_context(make_env(tmp_path, "http://x", pr_event(), "pull_request"))
    assert same is not None and not github.is_fork_without_secrets(same, api_key_present=False)
    notice = github.fork_notice_markdown()
    assert notice.startswith("### ftops: plan skipped for a pull request from a fork")
    assert "validated offline" in notice


def test_bad_event_file_names_file_and_line(tmp_path: Path) -> None:
    env = make_env(tmp_path, "http://x", {}, "pull_request")
    Path(env["GITHUB_EVENT_PATH"]).write_text('{\n  "pull_request": {,\n}')
    with pytest.raises(FtopsError) as err:
        github.actions_context(env)
    assert str(err.value).startswith(f"{env['GITHUB_EVENT_PATH']}:2: invalid JSON")
    env["GITHUB_EVENT_PATH"] = str(tmp_path / "missing.json")
    with pytest.raises(FtopsError, match="cannot read the GitHub event file"):
        github.actions_context(env)
    with pytest.raises(FtopsError, match="GITHUB_REPOSITORY is not set"):
        github.actions_context({"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push"})


# --- sticky comment ------------------------------------------------------------------------


def test_first_run_posts_second_run_edits(tmp_path: Path, fake: FakeGitHub) -> None:
    ctx = pr_ctx(tmp_path, fake)
    first = github.upsert_comment(ctx, "## Plan\n1 to train", "specs", plan_hash=HASH_A)
    second = github.upsert_comment(ctx, "## Plan\n2 to train", "specs", plan_hash=HASH_B)
    assert fake.mutations() == [
        ("POST", f"/repos/{REPO}/issues/7/comments"),
        ("PATCH", f"/repos/{REPO}/issues/comments/{first.id}"),
    ]
    assert first.created and not second.created and first.id == second.id
    assert second.url == f"https://github.com/{REPO}/pull/7#issuecomment-{first.id}"
    [comment] = fake.comments(REPO, 7)
    assert comment["body"] == f"{MARKER}\n<!-- ftops:plan-hash:{HASH_B} -->\n## Plan\n2 to train"
    assert {r.headers["authorization"] for r in fake.requests} == {f"Bearer {TOKEN}"}
    assert {r.headers["x-github-api-version"] for r in fake.requests} == {"2022-11-28"}


def test_one_comment_per_spec_directory(tmp_path: Path, fake: FakeGitHub) -> None:
    ctx = pr_ctx(tmp_path, fake)
    github.upsert_comment(ctx, "a", "team-a/specs")
    github.upsert_comment(ctx, "b", "team-b/specs")
    github.upsert_comment(ctx, "a2", "team-a/specs")
    bodies = sorted(c["body"] for c in fake.comments(REPO, 7))
    assert bodies == ["<!-- ftops:plan:team-a/specs -->\na2", "<!-- ftops:plan:team-b/specs -->\nb"]
    assert [m for m, _ in fake.mutations()] == ["POST", "POST", "PATCH"]


def test_marker_keys_cannot_close_the_html_comment() -> None:
    assert github.comment_marker("specs") == MARKER
    assert github.comment_marker("a b-->x") == "<!-- ftops:plan:a_b--_x -->"
    with pytest.raises(FtopsError, match="invalid plan hash"):
        github.plan_hash_marker("abc --> <b>")


def test_finds_comment_on_a_later_page(tmp_path: Path) -> None:
    with FakeGitHub({TOKEN: BOT}, max_per_page=2) as fake:
        for i in range(5):
            fake.add_comment(REPO, 7, f"looks good {i}", login="alice")
        old = fake.add_comment(REPO, 7, f"{MARKER}\nold plan")
        ctx = pr_ctx(tmp_path, fake)
        github.upsert_comment(ctx, "new plan", "specs")
        assert fake.mutations() == [("PATCH", f"/repos/{REPO}/issues/comments/{old['id']}")]
        pages = [r.query.get("page", "1") for r in fake.requests if r.method == "GET"]
        assert pages == ["1", "2", "3"]


def test_marker_pasted_by_someone_else_is_not_the_record(tmp_path: Path, fake: FakeGitHub) -> None:
    fake.add_comment(REPO, 7, f"{MARKER}\n<!-- ftops:plan-hash:{HASH_B} -->", login="mallory")
    ctx = pr_ctx(tmp_path, fake)
    assert github.reviewed_plan_hash(ctx, "specs") is None
    github.upsert_comment(ctx, "plan", "specs", plan_hash=HASH_A)
    assert [m for m, _ in fake.mutations()] == ["POST"]
    assert github.reviewed_plan_hash(ctx, "specs") == HASH_A


def test_comment_author_for_personal_tokens(tmp_path: Path, fake: FakeGitHub) -> None:
    ctx = pr_ctx(
        tmp_path, fake, GITHUB_TOKEN="ghp_otheruser0123456789", FTOPS_COMMENT_AUTHOR="mallory"
    )
    github.upsert_comment(ctx, "one", "specs")
    github.upsert_comment(ctx, "two", "specs")
    assert [m for m, _ in fake.mutations()] == ["POST", "PATCH"]


def test_long_plan_is_truncated_safely(tmp_path: Path, fake: FakeGitHub) -> None:
    ctx = pr_ctx(tmp_path, fake)
    rows = "".join(f"| model-{i} | train | $0.{i % 100:02d} |\n" for i in range(1500))
    code = "".join(f"+ example line {i} with some padding text\n" for i in range(2000))
    body = f"## Plan\n\n{rows}\n```diff\n{code}```\n\nfooter\n"
    assert len(body) > 100_000
    github.upsert_comment(ctx, body, "specs", plan_hash=HASH_A)
    [comment] = fake.comments(REPO, 7)
    text = comment["body"]
    assert len(text) <= github.COMMENT_LIMIT
    assert text.startswith(f"{MARKER}\n<!-- ftops:plan-hash:{HASH_A} -->\n## Plan")
    assert len(re.findall(r"^```", text, re.MULTILINE)) % 2 == 0
    assert "footer" not in text
    assert "Truncated to fit GitHub's 65,536-character limit" in text
    assert "[this workflow run](https://github.com/acme/models/actions/runs/42)" in text


def test_fit_markdown_keeps_short_text() -> None:
    assert github.fit_markdown("short\n```\nx", 100, where="w") == "short\n```\nx"


def test_fit_markdown_closes_code_fence() -> None:
    text = "intro\n````diff\n" + "".join(f"+ line {i}\n" for i in range(100)) + "````\nend\n"
    out = github.fit_markdown(text, 400, where="the summary")
    assert len(out) <= 400
    head, note = out.split("\n> [!WARNING]\n")
    assert head.startswith("intro\n````diff\n+ line 0\n") and head.endswith("\n````\n")
    shown = head.count("\n")
    assert note == (
        "> Truncated to fit GitHub's 65,536-character limit "
        f"({shown - 1} of 104 lines shown). The full plan is in the summary.\n"
    )


def test_fit_markdown_drops_an_unfinished_mermaid_block() -> None:
    chart = "```mermaid\nxychart-beta\n" + "".join(f"  line [{i}]\n" for i in range(50)) + "```\n"
    text = "<details><summary>Loss</summary>\n\nbefore\n" + chart + "after\n</details>\n"
    out = github.fit_markdown(text, 400, where="w")
    assert "mermaid" not in out and "xychart" not in out
    assert out.startswith("<details><summary>Loss</summary>\n\nbefore\n</details>\n")
    assert len(out) <= 400


def test_fit_markdown_counts_utf16_units() -> None:
    text = "x\n" * 10 + "😀" * 200 + "\n"
    assert len(text) <= 300
    out = github.fit_markdown(text, 300, where="w")
    assert len(out.encode("utf-16-le")) // 2 <= 300
    assert out.startswith("x\n" * 10 + "\n> [!WARNING]\n> Truncated")
    assert "(10 of 11 lines shown)" in out


# --- approval record -----------------------------------------------------------------------


def test_reviewed_plan_hash_from_the_merged_pull_request(tmp_path: Path, fake: FakeGitHub) -> None:
    sha = "d" * 40
    fake.set_commit_pulls(
        REPO,
        sha,
        [
            {"number": 3, "merged_at": None, "merge_commit_sha": None},
            {"number": 5, "merged_at": "2026-11-20T10:00:00Z", "merge_commit_sha": "e" * 40},
            {"number": 9, "merged_at": "2026-11-25T10:00:00Z", "merge_commit_sha": sha},
        ],
    )
    fake.add_comment(REPO, 5, f"{MARKER}\n<!-- ftops:plan-hash:{HASH_B} -->\nold")
    fake.add_comment(REPO, 9, f"{MARKER}\n<!-- ftops:plan-hash:{HASH_A} -->\nreviewed")
    ctx = push_ctx(tmp_path, fake)
    assert github.reviewed_plan_hash(ctx, "specs") == HASH_A
    assert github.reviewed_plan_hash(ctx, "other-specs") is None
    assert fake.mutations() == []
    assert f"/repos/{REPO}/commits/{sha}/pulls" in [r.path for r in fake.requests]


def test_no_merged_pull_request_means_no_reviewed_plan(tmp_path: Path, fake: FakeGitHub) -> None:
    fake.set_commit_pulls(REPO, "d" * 40, [{"number": 3, "merged_at": None}])
    ctx = push_ctx(tmp_path, fake)
    assert github.reviewed_plan_hash(ctx, "specs") is None
    assert github.report_apply(ctx, "specs", "applied") is None
    assert fake.mutations() == []


def test_check_approval() -> None:
    github.check_approval(HASH_A, HASH_A, allow_changed=False)
    github.check_approval(HASH_A, HASH_B, allow_changed=True)
    github.check_approval(None, HASH_B, allow_changed=True)
    with pytest.raises(FtopsError) as err:
        github.check_approval(HASH_A, HASH_B, allow_changed=False)
    assert str(err.value).startswith("plan-changed: the plan (bbbbbbbbbbbb) differs from")
    assert "--allow-plan-changed" in str(err.value)
    with pytest.raises(FtopsError, match=r"^plan-changed: no reviewed plan found"):
        github.check_approval(None, HASH_B, allow_changed=False)


def test_merge_then_refuse_changed_plan(tmp_path: Path, fake: FakeGitHub) -> None:
    """The whole loop: PR plan comment, merge, apply re-plans to a different hash and refuses."""
    github.upsert_comment(pr_ctx(tmp_path, fake), "plan A", "specs", plan_hash=HASH_A)
    fake.set_commit_pulls(
        REPO,
        "d" * 40,
        [{"number": 7, "merged_at": "2026-11-25T00:00:00Z", "merge_commit_sha": "d" * 40}],
    )
    reviewed = github.reviewed_plan_hash(push_ctx(tmp_path, fake), "specs")
    assert reviewed == HASH_A
    github.check_approval(reviewed, HASH_A, allow_changed=False)
    with pytest.raises(FtopsError, match="plan-changed"):
        github.check_approval(reviewed, HASH_B, allow_changed=False)


def test_report_apply_tops_the_reviewed_comment(tmp_path: Path, fake: FakeGitHub) -> None:
    github.upsert_comment(pr_ctx(tmp_path, fake), "## Plan\nreviewed", "specs", plan_hash=HASH_A)
    fake.set_commit_pulls(
        REPO,
        "d" * 40,
        [{"number": 7, "merged_at": "2026-11-25T00:00:00Z", "merge_commit_sha": "d" * 40}],
    )
    ctx = push_ctx(tmp_path, fake)
    first = github.report_apply(ctx, "specs", "### Applied\n1 job started")
    second = github.report_apply(ctx, "specs", "### Applied\nsucceeded")
    assert first is not None and second is not None and not second.created
    [comment] = fake.comments(REPO, 7)
    assert comment["body"] == (
        f"{MARKER}\n<!-- ftops:plan-hash:{HASH_A} -->\n"
        "<!-- ftops:apply:begin -->\n### Applied\nsucceeded\n<!-- ftops:apply:end -->\n\n"
        "---\n\n## Plan\nreviewed"
    )
    assert [m for m, _ in fake.mutations()] == ["POST", "PATCH", "PATCH"]
    assert github.reviewed_plan_hash(ctx, "specs") == HASH_A


def test_report_apply_posts_when_the_pr_has_no_comment(tmp_path: Path, fake: FakeGitHub) -> None:
    fake.set_commit_pulls(
        REPO,
        "d" * 40,
        [{"number": 4, "merged_at": "2026-11-25T00:00:00Z", "merge_commit_sha": "x"}],
    )
    result = github.report_apply(push_ctx(tmp_path, fake), "specs", "applied")
    assert result is not None and result.created
    assert [c["body"] for c in fake.comments(REPO, 4)] == [
        f"{MARKER}\n<!-- ftops:apply:begin -->\napplied\n<!-- ftops:apply:end -->"
    ]


# --- errors --------------------------------------------------------------------------------


def test_comment_needs_a_pull_request(tmp_path: Path, fake: FakeGitHub) -> None:
    with pytest.raises(FtopsError, match="the push event is not a pull request"):
        github.upsert_comment(push_ctx(tmp_path, fake), "x", "specs")
    assert fake.requests == []


def test_missing_token(tmp_path: Path, fake: FakeGitHub) -> None:
    ctx = dataclasses.replace(pr_ctx(tmp_path, fake), token=None)
    with pytest.raises(FtopsError, match="GITHUB_TOKEN is not set"):
        github.upsert_comment(ctx, "x", "specs")


def test_bad_token_is_a_clear_error_without_the_token(tmp_path: Path, fake: FakeGitHub) -> None:
    ctx = pr_ctx(tmp_path, fake, GITHUB_TOKEN="ghs_WRONGTOKEN0123456789")
    with pytest.raises(FtopsError) as err:
        github.upsert_comment(ctx, "x", "specs")
    assert str(err.value) == (
        f"GitHub API: GET /repos/{REPO}/issues/7/comments returned HTTP 401: Bad credentials "
        "(the github-token is missing, invalid or expired)"
    )


def test_read_only_fork_token_names_the_permission(tmp_path: Path, fake: FakeGitHub) -> None:
    ctx = pr_ctx(tmp_path, fake, GITHUB_TOKEN=FORK_TOKEN)
    with pytest.raises(FtopsError) as err:
        github.upsert_comment(ctx, "x", "specs")
    assert "HTTP 403: Resource not accessible by integration" in str(err.value)
    assert "pull-requests: write" in str(err.value)
    assert FORK_TOKEN not in str(err.value)


def test_unreachable_api(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = make_env(tmp_path, f"http://127.0.0.1:{port}", pr_event(), "pull_request")
    ctx = github.actions_context(env)
    assert ctx is not None
    with pytest.raises(FtopsError, match=r"cannot reach the GitHub API at http://127\.0\.0\.1:"):
        github.upsert_comment(ctx, "x", "specs")


def test_pagination_never_sends_the_token_to_another_host(tmp_path: Path) -> None:
    with FakeGitHub({TOKEN: BOT}, max_per_page=1) as fake:
        fake.add_comment(REPO, 7, "one")
        fake.add_comment(REPO, 7, "two")
        fake.link_base = "http://127.0.0.2:9"
        with pytest.raises(FtopsError, match="paginated to another host"):
            github.upsert_comment(pr_ctx(tmp_path, fake), "x", "specs")
        assert len(fake.requests) == 1


# --- summary, outputs, secrets -------------------------------------------------------------


def test_summary_appends(tmp_path: Path, fake: FakeGitHub) -> None:
    ctx = pr_ctx(tmp_path, fake)
    github.write_summary(ctx, "## Plan\n")
    github.write_summary(ctx, "more")
    assert (tmp_path / "summary.md").read_text() == "## Plan\n\nmore\n\n"


def test_outputs_use_heredoc_for_json(tmp_path: Path, fake: FakeGitHub) -> None:
    ctx = pr_ctx(tmp_path, fake)
    models = {"support-bot": "ft:gpt-4o-mini-2024-07-18:acme::abc123", "b": None}
    github.write_outputs(
        ctx,
        {
            "has-changes": True,
            "plan-json": "/tmp/ftops-plan.json",
            "models": models,
            "estimated-cost": 12.5,
        },
    )
    github.write_outputs(ctx, {"has-changes": False, "note": "two\nlines"})
    raw = (tmp_path / "output.txt").read_text()
    assert raw.startswith("has-changes=true\nplan-json=/tmp/ftops-plan.json\nmodels<<ftops_")
    outputs = read_outputs(tmp_path / "output.txt")
    assert outputs == {
        "has-changes": "false",
        "plan-json": "/tmp/ftops-plan.json",
        "models": json.dumps(models, sort_keys=True, separators=(",", ":")),
        "estimated-cost": "12.5",
        "note": "two\nlines",
    }
    assert json.loads(outputs["models"]) == models
    with pytest.raises(FtopsError, match="invalid step output name"):
        github.write_outputs(ctx, {"bad name": 1})


def test_no_files_outside_actions_runner(tmp_path: Path, fake: FakeGitHub) -> None:
    ctx = dataclasses.replace(pr_ctx(tmp_path, fake), summary_path=None, output_path=None)
    github.write_summary(ctx, "x")
    github.write_outputs(ctx, {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["event.json"]


def test_redact() -> None:
    assert github.redact("key sk-1 and sk-12 ok", ["sk-12", "sk-1", ""]) == "key *** and *** ok"


def test_no_secret_in_anything_sent_or_written(tmp_path: Path, fake: FakeGitHub) -> None:
    leaky = f"token {TOKEN} key {API_KEY}"
    ctx = pr_ctx(tmp_path, fake)
    github.upsert_comment(ctx, leaky, "specs", plan_hash=HASH_A)
    github.upsert_comment(ctx, leaky + " again", "specs", plan_hash=HASH_A)
    github.write_summary(ctx, leaky)
    github.write_outputs(ctx, {"models": {"m": leaky}, "plain": leaky})
    fake.set_commit_pulls(
        REPO,
        "d" * 40,
        [{"number": 7, "merged_at": "2026-11-25T00:00:00Z", "merge_commit_sha": "d" * 40}],
    )
    github.report_apply(push_ctx(tmp_path, fake), "specs", leaky)
    written = (tmp_path / "summary.md").read_text() + (tmp_path / "output.txt").read_text()
    for secret in (TOKEN, API_KEY):
        assert secret not in sent_text(fake)
        assert secret not in written
    assert "token *** key ***" in fake.comments(REPO, 7)[0]["body"]
    assert "token *** key ***" in written
