"""The plan's markdown within GitHub's size limits, each job's details, the check run on the fake
GitHub API, and the one-line reason of any apply failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_github import BOT, FakeGitHub
from test_render import sample_plan

from ftops import github
from ftops.commands.reports import failure_reason
from ftops.errors import FtopsError, RemoteError
from ftops.plan import Action, ActionType, DatasetRef, Display, Kind, Plan, Training
from ftops.render import render_markdown, summary_title
from ftops.render.details import DatasetFacts, JobFacts, ModelFacts, details_text

REPO = "acme/models"
TOKEN = "ghs_CHECKTOKEN0123456789abcdef"


def train(i: int) -> Action:
    training = Training(fingerprint=f"{i:064x}", base="gpt-4o-mini-2024-07-18", parent=None,
                        training=DatasetRef("train", "c" * 64, None), validation=None,
                        method="supervised", hyperparameters={"n_epochs": "auto"},
                        suffix=f"m{i}", seed=i, metadata={"team": "support"})
    return Action(ActionType.TRAIN, Kind.MODEL, f"model-{i:03d}", training=training,
                  display=Display(cost_usd=0.5))


def big_plan(n: int = 500) -> Plan:
    return Plan(actions=tuple(train(i) for i in range(n)))


FACTS = JobFacts(datasets={"train": DatasetFacts("data/train.jsonl", 120, 45_000)},
                 models={f"model-{i:03d}": ModelFacts(3, 135_000) for i in range(500)})


@pytest.mark.parametrize("limit", [65_000, 20_000, 3_000, 800])
def test_a_long_plan_is_cut_whole_rows_first_and_says_what_was_left_out(limit: int) -> None:
    md = render_markdown(big_plan(), FACTS, limit=limit, where="the job summary")
    assert len(md.encode()) <= limit
    assert md.startswith("#### ftops plan\n\n**Plan: 0 to upload, 500 to train")
    assert md.count("<details>") == md.count("</details>")
    rows = md.count("| ➕ | train | `model.model-")
    blocks = md.count("<details>")
    assert rows == 500 or blocks == 0  # details only once every row is in
    left = f"{500 - rows} of 500 action rows, " if rows < 500 else ""
    assert (f"Cut to fit GitHub's size limit: {left}{500 - blocks} job details left out. "
            "The full plan is in the job summary.") in md
    assert md.rstrip().endswith("</code></sub>")  # the plan hash stays


def test_a_plan_that_fits_is_not_cut() -> None:
    md = render_markdown(big_plan(3), FACTS, limit=65_000)
    assert md == render_markdown(big_plan(3), FACTS)
    assert "Cut to fit" not in md
    assert md.count("(train): the job it creates</summary>") == 3


def test_job_details_resolve_epochs_and_name_the_dataset_without_its_content() -> None:
    md = render_markdown(big_plan(1), FACTS)
    assert "| hyperparameters | n_epochs=3 (auto) |" in md
    assert ("| training | train (sha256 cccccccccccc, data/train.jsonl, 120 examples, "
            "45,000 tokens) |") in md
    assert "| billed tokens | 135,000 (est.) |" in md
    assert "| cost | $0.50 (est.) |" in md
    text = details_text(big_plan(1), FACTS)
    assert text.startswith("Jobs:\n  model.model-000 (train):\n      provider         openai\n")
    # Without facts (a saved plan), what the plan holds.
    assert "| training | train (sha256 cccccccccccc) |" in render_markdown(big_plan(1))


def test_summary_title() -> None:
    assert summary_title(sample_plan()) == (
        "Plan: 1 to upload, 1 to train, 1 to replace, 1 to delete, 1 to retry, 1 to cancel, "
        "1 blocked; estimated cost $5.75 + unknown")
    assert summary_title(Plan(actions=())) == "No changes: the account matches the specs"


def test_failure_reason_is_one_line_whatever_raised() -> None:
    assert failure_reason(FtopsError("no key", hint="set it")) == "no key (set it)"
    assert (failure_reason(RuntimeError("boom\n  at line 3"))
            == "unexpected RuntimeError: boom at line 3")
    assert failure_reason(KeyError()) == "unexpected KeyError"


def context(tmp_path: Path, url: str, token: str = TOKEN) -> github.ActionsContext:
    event = {"pull_request": {"number": 7, "base": {"sha": "b" * 40, "repo": {"full_name": REPO}},
                              "head": {"sha": "c" * 40, "repo": {"full_name": REPO}}},
             "repository": {"full_name": REPO, "default_branch": "main"}}
    (tmp_path / "event.json").write_text(json.dumps(event))
    ctx = github.actions_context({
        "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(tmp_path / "event.json"), "GITHUB_REPOSITORY": REPO,
        "GITHUB_API_URL": url, "GITHUB_TOKEN": token})
    assert ctx is not None
    return ctx


def test_check_run_is_created_then_updated(tmp_path: Path) -> None:
    with FakeGitHub({TOKEN: BOT}) as fake:
        ctx = context(tmp_path, fake.url)
        first = github.report_check(ctx, title="Plan: a\nb", summary="x" * 70_000, ok=True)
        second = github.report_check(ctx, title="Plan: c", summary="y", ok=False)
    assert (first.created, second.created, first.id) == (True, False, second.id)
    (run,) = fake.check_runs.values()
    assert (run["head_sha"], run["conclusion"], run["output"]) == (
        "c" * 40, "failure", {"title": "Plan: c", "summary": "y"})
    posted = next(r for r in fake.requests if r.method == "POST")
    assert posted.body["output"] == {"title": "Plan: a b", "summary": "x" * 65_535}


def test_check_run_without_permission_is_a_warning_other_errors_raise(tmp_path: Path) -> None:
    with FakeGitHub({TOKEN: BOT}, no_checks_tokens=frozenset({TOKEN})) as fake:
        refused = github.report_check(context(tmp_path, fake.url), title="t", summary="s",
                                      ok=True)
        assert refused.id is None and refused.warning is not None
        assert "HTTP 403: Resource not accessible by integration" in refused.warning
        assert "`permissions: checks: write`" in refused.warning
        with pytest.raises(RemoteError, match="HTTP 401"):
            github.report_check(context(tmp_path, fake.url, "ghs_wrong0123456789"), title="t",
                                summary="s", ok=True)
