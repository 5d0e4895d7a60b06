"""plan/apply/status in GitHub Actions end to end: the real CLI against the fake GitHub REST API
and the emulator, in a temporary git repository holding a copy of the demo specs."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git
import pytest
from click.testing import CliRunner, Result
from conftest import raw_request
from fake_github import BOT, FakeGitHub

from ftops.cli import main
from ftops.emulator import Emulator

REPO = "acme/models"
TOKEN = "ghs_E2ETOKEN0123456789abcdef"
API_KEY = "sk-e2e-0123456789abcdefSECRETKEY"
SPECS = Path(__file__).resolve().parent.parent / "specs"
ACTOR = "Test <test@example.com>"
MARKER = "<!-- ftops:plan:specs -->"
CANARY = "zebra-canary-4417-quartz"


@dataclass
class World:
    root: Path
    repo: git.Repo
    base_sha: str
    head_sha: str
    github: FakeGitHub
    emulator: Emulator

    def env(self, event_name: str, *, fork: bool = False, **extra: str) -> dict[str, str]:
        if event_name == "pull_request":
            head_repo = "mallory/models" if fork else REPO
            event: dict[str, Any] = {
                "pull_request": {
                    "number": 7,
                    "base": {"sha": self.base_sha, "repo": {"full_name": REPO}},
                    "head": {"sha": self.head_sha, "repo": {"full_name": head_repo}},
                },
                "repository": {"full_name": REPO, "default_branch": "main"},
            }
        else:
            event = {"after": self.head_sha,
                     "repository": {"full_name": REPO, "default_branch": "main"}}
        event_file = self.root.parent / "event.json"
        event_file.write_text(json.dumps(event))
        env = {
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": event_name,
            "GITHUB_EVENT_PATH": str(event_file),
            "GITHUB_REPOSITORY": REPO,
            "GITHUB_API_URL": self.github.url,
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_RUN_ID": "42",
            "GITHUB_TOKEN": TOKEN,
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "GITHUB_OUTPUT": str(self.output),
            "GITHUB_SHA": self.head_sha,
            "GITHUB_REF": "refs/heads/main" if event_name == "push" else "refs/pull/7/merge",
            "RUNNER_TEMP": str(self.root.parent),
            "OPENAI_BASE_URL": self.emulator.base_url,
            "OPENAI_API_KEY": API_KEY,
        }
        env.update(extra)
        return env

    @property
    def summary(self) -> Path:
        return self.root.parent / "summary.md"

    @property
    def output(self) -> Path:
        return self.root.parent / "output.txt"

    def outputs(self) -> dict[str, str]:
        """GITHUB_OUTPUT parsed (name=value and name<<DELIM heredocs); later values win."""
        lines = self.output.read_text().splitlines()
        out: dict[str, str] = {}
        i = 0
        while i < len(lines):
            if match := re.fullmatch(r"([\w-]+)<<(\S+)", lines[i]):
                end = lines.index(match.group(2), i + 1)
                out[match.group(1)] = "\n".join(lines[i + 1 : end])
                i = end + 1
            else:
                name, _, value = lines[i].partition("=")
                out[name] = value
                i += 1
        return out

    def comments(self) -> list[dict[str, Any]]:
        return self.github.comments(REPO, 7)

    def mutating_openai_requests(self) -> list[dict[str, Any]]:
        log = raw_request(self.emulator.url + "/_emulator/requests").json()
        return [r for r in log if r["method"] not in ("GET", "HEAD")]

    def assert_no_secret(self, *texts: str) -> None:
        sent = [json.dumps(r.body) for r in self.github.requests]
        files = [p.read_text() for p in (self.summary, self.output) if p.exists()]
        for text in [*texts, *sent, *files, *(c["body"] for c in self.comments())]:
            assert API_KEY not in text
            assert TOKEN not in text


def run(world: World, args: list[str], env: dict[str, str]) -> Result:
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


@pytest.fixture
def world(tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    root = tmp_path / "repo"
    shutil.copytree(SPECS, root / "specs")
    (root / ".gitignore").write_text(".ftops/\n")
    # Words that appear in a dataset and must never appear in a comment (the pull request leaves
    # this example alone, so no dataset diff shows it either).
    with (root / "specs" / "data" / "support-val.jsonl").open("a") as val:
        val.write(json.dumps({"messages": [
            {"role": "user", "content": f"What does {CANARY} mean?"},
            {"role": "assistant", "content": f"{CANARY} is a test phrase."}]}) + "\n")
    repo = git.Repo.init(root, initial_branch="main")
    repo.index.add([".gitignore", "specs"])
    base = repo.index.commit("specs", author=git.Actor("Test", "test@example.com"))
    # The pull request: one answer corrected, one example added to the training set.
    train = root / "specs" / "data" / "support-train.jsonl"
    lines = train.read_text().splitlines()
    first = json.loads(lines[0])
    first["messages"][-1]["content"] = "Open Settings, then Security, then Reset password."
    extra = json.loads(lines[1])
    extra["messages"][1]["content"] = "Where do I see my invoices?"
    extra["messages"][-1]["content"] = "Billing, then Invoices."
    lines[0] = json.dumps(first)
    train.write_text("\n".join([*lines, json.dumps(extra)]) + "\n")
    repo.index.add(["specs/data/support-train.jsonl"])
    head = repo.index.commit("better answers", author=git.Actor("Test", "test@example.com"))
    monkeypatch.chdir(root)
    with FakeGitHub({TOKEN: BOT}) as fake:
        yield World(root, repo, base.hexsha, head.hexsha, fake, emulator)


def test_plan_posts_one_comment_then_edits_it(world: World) -> None:
    args = ["plan", "--specs", "specs", "--comment", "--detailed-exitcode"]
    first = run(world, args, world.env("pull_request"))
    assert first.exit_code == 2, first.output
    assert "Plan comment posted" in first.output
    second = run(world, [*args, "--out", "plan.json"], world.env("pull_request"))
    assert second.exit_code == 2, second.output
    assert "Plan comment updated" in second.output

    assert [m for m, _ in world.github.mutations()] == ["POST", "PATCH"]
    (comment,) = world.comments()
    plan = json.loads((world.root / "plan.json").read_text())
    body = comment["body"]
    assert body.startswith(MARKER + "\n")
    assert f"<!-- ftops:plan-hash:{plan['plan_hash']} -->" in body
    assert len(body) < 65_536
    assert ("**Plan: 3 to upload, 1 to train, 0 to replace, 0 to delete, 1 blocked** · "
            f"estimated cost **${plan['estimated_cost_usd']:.2f}**") in body
    assert "| ➕ | train | `model.support-bot` | from gpt-4o-mini-2024-07-18; est. $" in body
    assert "2 models on gpt-4o-mini-2024-07-18 stop answering on 2027-01-14" in body
    assert "| `support-train` | `specs/data/support-train.jsonl` | 15 |" in body
    # The dataset diff against the pull request's base commit.
    assert "#### Dataset changes" in body
    assert ("`specs/data/support-train.jsonl`: +1 added, -0 removed, ~1 changed, "
            "13 unchanged; tokens +25") in body
    assert "Estimated training cost change: **+$" in body
    assert "support-val.jsonl`: +" not in body

    summary = world.summary.read_text()
    assert summary.count("#### ftops plan") == 2
    outputs = world.outputs()
    assert outputs["has-changes"] == "true"
    assert outputs["plan-json"] == str((world.root / "plan.json").resolve())
    assert json.loads(outputs["models"]) == {}
    assert outputs["estimated-cost"] == f"{plan['estimated_cost_usd']:.2f}"
    assert world.mutating_openai_requests() == []
    world.assert_no_secret(first.output, second.output)


def test_fork_without_key_validates_offline_and_succeeds(world: World) -> None:
    env = world.env("pull_request", fork=True, OPENAI_API_KEY="")
    result = run(world, ["plan", "--specs", "specs", "--comment"], env)
    assert result.exit_code == 0, result.output
    assert "validated offline" in result.output
    assert "Traceback" not in result.output
    summary = world.summary.read_text()
    assert "plan skipped for a pull request from a fork" in summary
    assert "#### Offline validation passed" in summary
    assert world.github.requests == []
    assert raw_request(world.emulator.url + "/_emulator/requests").json() == []
    world.assert_no_secret(result.output)


def test_apply_refuses_a_plan_other_than_the_reviewed_one(world: World) -> None:
    world.github.add_comment(REPO, 7, f"{MARKER}\n<!-- ftops:plan-hash:{'a' * 64} -->\nold plan")
    world.github.set_commit_pulls(REPO, world.head_sha, [
        {"number": 7, "merged_at": "2026-11-25T00:00:00Z", "merge_commit_sha": world.head_sha}])
    args = ["apply", "--specs", "specs", "--auto-approve", "--wait", "--commit-lock"]
    result = run(world, args, world.env("push"))
    assert result.exit_code == 1
    assert "Error: plan-changed: the plan (" in result.stderr
    assert "Traceback" not in result.output
    assert world.mutating_openai_requests() == []
    assert not (world.root / "ftops.lock").exists()
    assert world.repo.head.commit.hexsha == world.head_sha
    (comment,) = world.comments()
    assert "#### ftops apply refused: plan-changed" in comment["body"]
    assert f"<!-- ftops:plan-hash:{'a' * 64} -->" in comment["body"]
    assert world.outputs()["has-changes"] == "true"
    world.assert_no_secret(result.output)


def test_reviewed_plan_is_applied_lock_committed_and_reported(world: World) -> None:
    plan = run(world, ["plan", "--specs", "specs", "--comment"], world.env("pull_request"))
    assert plan.exit_code == 0, plan.output
    reviewed = json.loads((world.root.parent / "ftops-plan.json").read_text())["plan_hash"]
    # The merge is a new commit: the approval is the plan's content, not a commit sha.
    merge = world.repo.index.commit(
        "Merge pull request #7", parent_commits=[world.repo.commit(world.base_sha),
                                                 world.repo.commit(world.head_sha)],
        author=git.Actor("Test", "test@example.com"))
    world.github.set_commit_pulls(REPO, merge.hexsha, [
        {"number": 7, "merged_at": "2026-11-25T00:00:00Z", "merge_commit_sha": merge.hexsha}])
    args = ["apply", "--specs", "specs", "--auto-approve", "--wait", "--commit-lock"]
    env = world.env("push", GITHUB_SHA=merge.hexsha)
    result = CliRunner().invoke(main, args, catch_exceptions=False,
                                env={**env, "GIT_AUTHOR_NAME": None, "GIT_AUTHOR_EMAIL": None})
    assert result.exit_code == 0, result.output
    assert "Apply complete: 3 uploaded, 2 started, 0 pruned." in result.output

    head = world.repo.head.commit
    assert head.message.strip() == "ftops: update ftops.lock (2 models)"
    assert list(head.stats.files) == ["ftops.lock"]
    assert head.parents[0].hexsha == merge.hexsha
    assert (head.author.name, head.author.email) == (
        "github-actions[bot]", "41898282+github-actions[bot]@users.noreply.github.com")
    applied = Path(world.outputs()["plan-json"])
    assert json.loads(applied.read_text())["plan_hash"] == reviewed
    models = json.loads(world.outputs()["models"])
    assert sorted(models) == ["support-bot", "support-bot-tone"]
    assert all(v.startswith("ft:gpt-4o-mini-2024-07-18:") for v in models.values())
    assert models["support-bot"] in (world.root / "ftops.lock").read_text()

    (comment,) = world.comments()
    body = comment["body"]
    assert body.index("#### ftops apply succeeded") < body.index("#### ftops plan")
    assert body.count("xychart-beta") == 2
    assert "| final train loss |" in body
    assert "committed as" in body

    status = run(world, ["status", "--specs", "specs", "--markdown"], world.env("push"))
    assert status.exit_code == 0, status.output
    # The suite pins the day (conftest), so every view says which day it reasons about.
    assert status.output.startswith("#### ftops status · as of 2026-12-01\n")
    assert "| `support-bot` | ok | succeeded |" in status.output
    assert status.output.count("```mermaid\n") == 2
    assert "xychart-beta" in status.output
    assert re.search(r"\| trained tokens \| [\d,]+ \|", status.output)
    assert re.search(r"\| cost \| \$\d+\.\d\d \|", status.output)
    world.assert_no_secret(plan.output, result.output, status.output)


def test_apply_that_stops_part_way_says_so_on_the_pull_request(world: World) -> None:
    plan = run(world, ["plan", "--specs", "specs", "--comment"], world.env("pull_request"))
    assert plan.exit_code == 0, plan.output
    world.github.set_commit_pulls(REPO, world.head_sha, [
        {"number": 7, "merged_at": "2026-11-25T00:00:00Z", "merge_commit_sha": world.head_sha}])
    args = ["apply", "--specs", "specs", "--auto-approve", "--wait", "--timeout", "0"]
    with Emulator(job_seconds=600) as slow:  # the job outlives --timeout
        result = run(world, args, world.env("push", OPENAI_BASE_URL=slow.base_url))
    assert result.exit_code == 1
    assert "Error: timed out waiting for job ftjob-" in result.stderr
    assert "Traceback" not in result.output
    (comment,) = world.comments()
    failure = comment["body"].split("#### ftops plan")[0]
    assert "#### ftops apply FAILED\n\ntimed out waiting for job ftjob-" in failure
    assert "#### ftops apply FAILED" in world.summary.read_text()
    world.assert_no_secret(plan.output, result.output)


def test_comment_outside_github_actions_is_a_one_line_error(world: World) -> None:
    env = {"GITHUB_ACTIONS": "", "OPENAI_BASE_URL": world.emulator.base_url,
           "OPENAI_API_KEY": API_KEY}
    result = run(world, ["plan", "--specs", "specs", "--comment"], env)
    assert result.exit_code == 1
    assert result.stderr == ("Error: --comment works only in GitHub Actions (GITHUB_ACTIONS is "
                             "not true) (drop --comment when running locally)\n")


def test_the_comment_shows_the_whole_job_but_no_dataset_content(world: World) -> None:
    result = run(world, ["plan", "--specs", "specs", "--comment", "-v"], world.env("pull_request"))
    assert result.exit_code == 0, result.output
    (comment,) = world.comments()
    body = comment["body"]
    plan = json.loads((world.root.parent / "ftops-plan.json").read_text())
    bot = next(a for a in plan["actions"] if a["address"] == "model.support-bot")
    train_sha = bot["training"]["training"]["sha256"]
    block = body.split("<details><summary><code>model.support-bot</code> (train): "
                       "the job it creates</summary>")[1].split("</details>")[0]
    assert "| provider | openai |" in block
    assert "| base | gpt-4o-mini-2024-07-18 |" in block
    assert (f"| training | support-train (sha256 {train_sha[:12]}, "
            "specs/data/support-train.jsonl, 15 examples, ") in block
    assert "| validation | support-val (sha256 " in block
    assert "specs/data/support-val.jsonl, 11 examples, " in block
    assert "| method | supervised |" in block
    assert ("| hyperparameters | batch_size=auto, learning_rate_multiplier=auto, n_epochs=3 |"
            in block)
    assert "| suffix | support-bot |" in block
    assert "| seed | 42 |" in block
    assert "team=support" in block
    assert re.search(r"\| billed tokens \| [\d,]+ \(est\.\) \|", block)
    assert re.search(r"\| cost \| \$0\.\d+ \(est\.\) \|", block)
    # The chained model's job: its base is known only once its parent succeeds.
    assert "| base | the fine-tuned model of model.support-bot once it succeeds |" in body
    # `ftops plan -v` prints the same fields.
    assert "  model.support-bot (train):" in result.output
    assert "      base             gpt-4o-mini-2024-07-18" in result.output
    assert "15 examples" in result.output
    # Datasets are named, hashed and counted, never quoted.
    for text in (body, world.summary.read_text(), result.output):
        assert CANARY not in text


def test_500_models_fit_the_comment_and_the_summary(world: World) -> None:
    models = ["models:"] + [
        f"  model-{i:03d}:\n    base: mini\n    training: support-train\n"
        f"    validation: support-val\n    suffix: m{i:03d}\n    seed: {i}\n"
        f"    metadata: {{team: support, owner: team-{i % 7}}}"
        for i in range(500)]
    (world.root / "specs" / "models.yaml").write_text("\n".join(models) + "\n")
    world.repo.index.add(["specs/models.yaml"])
    world.repo.index.commit("500 models", author=git.Actor("Test", "test@example.com"))
    result = run(world, ["plan", "--specs", "specs", "--comment"], world.env("pull_request"))
    assert result.exit_code == 0, result.output
    (comment,) = world.comments()
    body = comment["body"]
    assert len(body) < 65_536 and len(body.encode("utf-16-le")) // 2 < 65_536
    summary = world.summary.read_text()
    assert len(summary.encode()) < 1024 * 1024
    # The summary line and the table come first; what does not fit is counted and pointed to.
    assert "**Plan: 2 to upload, 500 to train, 0 to replace, 0 to delete" in body, body[:800]
    assert "| ➕ | train | `model.model-000` |" in body
    cut = re.search(r"Cut to fit GitHub's size limit: (?:(\d+) of 502 action rows, )?"
                    r"(?:\d+ error/warning line\(s\), )?(\d+) job details left out\. The full "
                    r"plan is in the job summary of \[this workflow run\]\(https://github\.com/"
                    r"acme/models/actions/runs/42\) and the plan JSON", body)
    assert cut, body[-2000:]
    shown_rows = body.count("| ➕ | train | `model.model-")
    assert shown_rows + int(cut.group(1) or 0) == 500
    assert body.count("<details>") == body.count("</details>")
    plan = json.loads(Path(world.outputs()["plan-json"]).read_text())
    assert f"<!-- ftops:plan-hash:{plan['plan_hash']} -->" in body
    # The job summary holds every row and every job's details.
    assert summary.count("| ➕ | train | `model.model-") == 500
    assert summary.count("(train): the job it creates</summary>") == 500
    assert "Cut to fit" not in summary


def test_plan_writes_the_check_run_and_updates_it(world: World) -> None:
    args = ["plan", "--specs", "specs", "--check"]
    first = run(world, args, world.env("pull_request"))
    assert first.exit_code == 0, first.output
    assert "Check run `ftops plan` created" in first.output
    (check,) = world.github.check_runs.values()
    assert check["name"] == "ftops plan"
    assert check["head_sha"] == world.head_sha
    assert (check["status"], check["conclusion"]) == ("completed", "success")
    assert check["output"]["title"].startswith(
        "Plan: 3 to upload, 1 to train, 0 to replace, 0 to delete, 1 blocked; estimated cost $")
    assert "#### ftops plan" in check["output"]["summary"]
    assert check["details_url"] == "https://github.com/acme/models/actions/runs/42"
    second = run(world, args, world.env("pull_request"))
    assert "Check run `ftops plan` updated" in second.output
    assert len(world.github.check_runs) == 1
    assert [m for m, p in world.github.mutations() if "check-runs" in p] == ["POST", "PATCH"]
    found = [r for r in world.github.requests if r.path.endswith("/check-runs")
             and r.method == "GET"]
    assert found[0].path == f"/repos/{REPO}/commits/{world.head_sha}/check-runs"
    assert found[0].query["check_name"] == "ftops plan"
    world.assert_no_secret(first.output, second.output)


def test_a_plan_with_errors_fails_its_check_run(world: World) -> None:
    models = (world.root / "specs" / "models.yaml").read_text()
    (world.root / "specs" / "models.yaml").write_text(
        models.replace("max_cost_usd: 5", "max_cost_usd: 0.0001"))
    result = run(world, ["plan", "--specs", "specs", "--check"], world.env("pull_request"))
    assert result.exit_code == 1, result.output
    (check,) = world.github.check_runs.values()
    assert check["conclusion"] == "failure"
    assert "error(s): apply will refuse it" in check["output"]["title"]


def test_without_checks_permission_plan_warns_once_and_goes_on(
        world: World, tmp_path: Path) -> None:
    world.github.no_checks_tokens = frozenset({TOKEN})
    args = ["plan", "--specs", "specs", "--check", "--comment", "--detailed-exitcode"]
    result = run(world, args, world.env("pull_request"))
    assert result.exit_code == 2, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert warnings == [
        f"Warning: no `ftops plan` check run: GitHub API: POST /repos/{REPO}/check-runs returned "
        "HTTP 403: Resource not accessible by integration (give the workflow "
        "`permissions: checks: write`; pull requests from forks get a read-only token)"]
    assert "Plan comment posted" in result.output
    assert world.github.check_runs == {}
    assert "#### ftops plan" in world.summary.read_text()
    assert world.outputs()["has-changes"] == "true"


def test_an_api_error_during_apply_marks_the_comment_failed(world: World) -> None:
    # The specs accept this suffix; the API refuses it with a 400 when the job is created.
    models = (world.root / "specs" / "models.yaml").read_text()
    (world.root / "specs" / "models.yaml").write_text(
        models.replace("suffix: support-bot\n", "suffix: support:bot\n"))
    world.repo.index.add(["specs/models.yaml"])
    head = world.repo.index.commit("colon", author=git.Actor("Test", "test@example.com"))
    world.github.set_commit_pulls(REPO, head.hexsha, [
        {"number": 7, "merged_at": "2026-11-25T00:00:00Z", "merge_commit_sha": head.hexsha}])
    args = ["apply", "--specs", "specs", "--auto-approve"]
    result = run(world, args, world.env("push", GITHUB_SHA=head.hexsha))
    assert result.exit_code == 1
    assert re.search(r"^Error: API error 400: .*Invalid 'suffix'", result.stderr, re.MULTILINE)
    (comment,) = world.comments()
    failed = r"#### ftops apply FAILED\n\nAPI error 400: [^\n]*Invalid 'suffix'[^\n]*\n"
    assert re.search(failed, comment["body"]), comment["body"]
    assert re.search(failed, world.summary.read_text())
    world.assert_no_secret(result.output)
