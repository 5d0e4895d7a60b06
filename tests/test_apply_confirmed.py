"""Apply executes the plan that was confirmed (or saved, or reviewed), and nothing else: when the
account or the specs moved between the plan and its execution, apply refuses and says what moved
in words. Real emulator over HTTP, real git repositories, the real SDK for the "someone else"."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import git
import pytest
from fake_github import BOT, FakeGitHub

from ftops.commands import apply as apply_command
from ftops.emulator import Emulator
from ftops.errors import StalePlanError
from ftops.plan import ActionType, Plan
from tests.conftest import make_chat_jsonl, sdk_client
from tests.test_actions_e2e import API_KEY, MARKER, REPO, TOKEN, World
from tests.test_engine import (
    Clock,
    Project,
    account,
    actions,
    ftops,
    ftops_name,
    model,
    mutations,
)
from tests.test_engine import env as env

HEX64 = re.compile(r"[0-9a-f]{64}")
ONE = {"bot": model("train-a", suffix="bot")}
CHAIN = {"base-bot": model("train-a", suffix="base"),
         "child": model("train-b", base="base-bot", suffix="child")}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def emu(clock: Clock) -> Iterator[Emulator]:
    with Emulator(job_seconds=60, clock=clock) as server:  # jobs end when the test says so
        yield server


def make_project(tmp_path: Path, models: dict[str, Any]) -> Project:
    project = Project(tmp_path / "repo")
    project.write(models)
    project.commit()
    return project


def apply(project: Project, confirm: Callable[[Plan], None],
          plan_file: Path | None = None) -> apply_command.ApplyRun:
    """``ftops apply`` in-process, outside GitHub Actions; ``confirm`` runs where the user says
    yes: after the plan was shown, before anything is executed."""
    return apply_command.run(apply_command.ApplyOptions(
        specs=project.specs, plan_file=plan_file, confirm=confirm, report=lambda _line: None,
        env={}))


def job_of(plan: Plan, name: str) -> str:
    (action,) = [a for a in plan.actions if a.name == name]
    assert action.job_id is not None
    return action.job_id


def cancel(server: Emulator, job_id: str) -> None:
    with sdk_client(server.base_url) as sdk:
        assert sdk.fine_tuning.jobs.cancel(job_id).status == "cancelled"


# --- interactive: the plan shown is the plan executed --------------------------------------------


def test_a_job_cancelled_after_confirmation_is_refused_not_retrained(
        tmp_path: Path, emu: Emulator, env: dict[str, str]) -> None:
    """The issue's case: the confirmed plan said pending; the job was cancelled before apply
    read the account again. Retraining would start a job nobody approved."""
    project = make_project(tmp_path, ONE)
    assert ftops(project, "apply", "--auto-approve").exit_code == 0
    seen: list[Plan] = []

    def cancel_after_confirming(plan: Plan) -> None:
        seen.append(plan)
        cancel(emu, job_of(plan, "bot"))

    before = len(emu.requests())
    with pytest.raises(StalePlanError) as err:
        apply(project, cancel_after_confirming)
    (shown,) = seen
    assert [a.action for a in shown.actions] == [ActionType.PENDING]
    job = job_of(shown, "bot")
    message = str(err.value)
    assert message.startswith("The account changed since the plan was shown: ")
    assert (f"model bot: the plan said pending (job {job}), the account now says train: "
            f"job {job} was cancelled") in message
    assert not HEX64.search(message)
    # The test's own cancel is the only change: nothing uploaded, nothing trained.
    assert mutations(emu, before) == [f"POST /v1/fine_tuning/jobs/{job}/cancel"]
    _, jobs = account(emu)
    assert [j.status for j in jobs] == ["cancelled"]


def test_an_upload_made_unnecessary_meanwhile_is_a_difference(
        tmp_path: Path, emu: Emulator, env: dict[str, str]) -> None:
    project = make_project(tmp_path, ONE)
    data = (project.specs / "data" / "train-a.jsonl").read_bytes()
    uploaded: list[str] = []

    def someone_uploads(_plan: Plan) -> None:
        with sdk_client(emu.base_url) as sdk:
            uploaded.append(sdk.files.create(file=(ftops_name(data), data),
                                             purpose="fine-tune").id)

    before = len(emu.requests())
    with pytest.raises(StalePlanError) as err:
        apply(project, someone_uploads)
    message = str(err.value)
    assert (f"dataset train-a: the plan said upload specs/data/train-a.jsonl, the account now "
            f"says nothing to do: file {uploaded[0]} already holds its bytes") in message
    assert "model bot: the plan said train, the account now says train: training data " \
           f"train-a: to be uploaded → file {uploaded[0]}" in message
    assert not HEX64.search(message)
    assert mutations(emu, before) == ["POST /v1/files"]  # only the test's own upload


def test_a_job_that_finished_meanwhile_does_not_block(
        tmp_path: Path, emu: Emulator, clock: Clock, env: dict[str, str]) -> None:
    """pending -> ok has nothing to do either way; the child the confirmed plan held back
    until its parent succeeded starts from the parent's model, as the plan said it would."""
    project = make_project(tmp_path, CHAIN)
    first = apply(project, lambda _plan: None)
    assert sorted(first.outcome.started) == ["base-bot"]
    assert first.outcome.deferred.keys() == {"child"}
    seen: list[Plan] = []

    def finish_the_parent(plan: Plan) -> None:
        seen.append(plan)
        clock.now += 3600

    run = apply(project, finish_the_parent)
    assert {a.name: a.action for a in seen[0].actions if a.kind.value == "model"} == {
        "base-bot": ActionType.PENDING, "child": ActionType.BLOCKED}
    assert sorted(run.outcome.started) == ["child"]
    _, jobs = account(emu)
    by_model = {j.metadata["ftops_model"]: j for j in jobs}
    assert by_model["child"].model == by_model["base-bot"].fine_tuned_model


def test_duplicates_a_crash_left_are_still_mended(
        tmp_path: Path, emu: Emulator, env: dict[str, str]) -> None:
    project = make_project(tmp_path, ONE)
    assert ftops(project, "apply", "--auto-approve").exit_code == 0
    data = (project.specs / "data" / "train-a.jsonl").read_bytes()
    (kept,), _ = account(emu)
    with sdk_client(emu.base_url) as sdk:  # what a crash between upload and look leaves
        extra = sdk.files.create(file=(ftops_name(data), data), purpose="fine-tune").id
    run = apply(project, lambda _plan: None)
    assert run.outcome.deduplicated == [f"file {extra} (duplicate of {kept.id})"]
    files, _ = account(emu)
    assert [f.id for f in files] == [kept.id]


# --- saved plans: the same words ------------------------------------------------------------------


def test_a_stale_saved_plan_lists_its_differences_in_words(
        tmp_path: Path, emu: Emulator, env: dict[str, str]) -> None:
    project = make_project(tmp_path, ONE)
    assert ftops(project, "apply", "--auto-approve").exit_code == 0
    saved = tmp_path / "p.json"
    assert ftops(project, "plan", "--out", str(saved)).exit_code == 0
    job = job_of(Plan.from_json(saved.read_text()), "bot")
    cancel(emu, job)
    before = len(emu.requests())
    result = ftops(project, "apply", str(saved))
    assert result.exit_code == 1
    assert (f"Error: Saved plan is stale: model bot: the plan said pending (job {job}), the "
            f"account now says train: job {job} was cancelled (run `ftops plan` again and "
            "review the new plan)\n") == result.stderr
    assert mutations(emu, before) == []


def test_a_saved_plan_made_before_new_data_names_the_dataset_not_its_hash(
        tmp_path: Path, emu: Emulator, env: dict[str, str]) -> None:
    project = make_project(tmp_path, {**ONE, "other": model("train-b", epochs=2)})
    saved = tmp_path / "p.json"
    assert ftops(project, "plan", "--out", str(saved)).exit_code == 0
    (project.specs / "data" / "train-b.jsonl").write_bytes(make_chat_jsonl(13, tag="b"))
    project.commit("more data")
    result = ftops(project, "apply", str(saved))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Saved plan is stale: ")
    assert not HEX64.search(result.stderr)
    reasons = (result.stderr.removeprefix("Error: Saved plan is stale: ")
               .removesuffix(" (run `ftops plan` again and review the new plan)\n").split("; "))
    assert reasons[0] == ("dataset train-b: the plan said upload specs/data/train-b.jsonl, the "
                          "specs now say upload specs/data/train-b.jsonl: its content changed")
    assert reasons[1] == ("model other: the plan said train, the specs now say train: "
                          "training data train-b changed")
    assert len(reasons) == 2  # bot and train-a are as they were
    assert mutations(emu) == []


def test_a_saved_plan_executes_itself(tmp_path: Path, emu: Emulator, clock: Clock,
                                      env: dict[str, str]) -> None:
    """A job finishing between plan and apply changes nothing the saved plan does."""
    project = make_project(tmp_path, {**ONE, "other": model("train-b", epochs=2)})
    assert ftops(project, "apply", "--auto-approve").exit_code == 0
    (project.specs / "models.yaml").write_text(
        (project.specs / "models.yaml").read_text().replace("n_epochs: 2", "n_epochs: 4"))
    project.commit("longer")
    saved = tmp_path / "p.json"
    assert ftops(project, "plan", "--out", str(saved)).exit_code == 0
    assert actions(ftops(project, "plan", "--json")) == {"model.bot": "pending",
                                                         "model.other": "replace"}
    clock.now += 3600  # bot's job succeeds
    result = ftops(project, "apply", str(saved))
    assert result.exit_code == 0, result.output
    assert "0 uploaded, 1 started" in result.stdout


# --- the Action: the reviewed plan, whatever it said ------------------------------------------


@pytest.fixture
def world(tmp_path: Path, emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """One model in a repository whose one commit is both the pull request's head and the push
    to main (test_actions_e2e.py has the demo's two commits)."""
    project = make_project(tmp_path, ONE)
    head = git.Repo(project.root).head.commit.hexsha
    monkeypatch.chdir(project.root)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url)
    with FakeGitHub({TOKEN: BOT}) as fake:
        yield World(project.root, git.Repo(project.root), head, head, fake, emu)


def started_locally(world: World) -> apply_command.ApplyRun:
    """An apply outside the Action before the merge: the account has every job already."""
    run = apply_command.run(apply_command.ApplyOptions(
        specs=Path("specs"), report=lambda _line: None, env={}))
    assert run.outcome.started
    return run


def merged(world: World, plan_hash: str) -> None:
    """The pushed commit came from pull request 7, whose ftops comment carries ``plan_hash``."""
    world.github.add_comment(REPO, 7, f"{MARKER}\n<!-- ftops:plan-hash:{plan_hash} -->\nplan")
    world.github.set_commit_pulls(REPO, world.head_sha, [
        {"number": 7, "merged_at": "2026-11-25T00:00:00Z", "merge_commit_sha": world.head_sha}])


def action_apply(world: World, confirm: Callable[[Plan], None] = lambda _plan: None
                 ) -> apply_command.ApplyRun:
    """``ftops apply --auto-approve`` as the apply workflow runs it on a push to main."""
    return apply_command.run(apply_command.ApplyOptions(
        specs=Path("specs"), confirm=confirm, report=lambda _line: None,
        env=world.env("push")))


def test_action_a_reviewed_no_change_plan_refuses_a_merge_that_now_trains(world: World) -> None:
    first = started_locally(world)  # the pull request's plan had no changes
    job = first.outcome.started["bot"]
    merged(world, Plan(actions=()).plan_hash)

    def cancelled_meanwhile(_plan: Plan) -> None:
        cancel(world.emulator, job)

    before = len(world.emulator.requests())
    with pytest.raises(StalePlanError) as err:
        action_apply(world, cancelled_meanwhile)
    message = str(err.value)
    assert message.startswith("plan-changed: the account changed since the plan was shown: ")
    assert f"job {job} was cancelled" in message
    assert [f"{r['method']} {r['path']}" for r in world.emulator.requests()[before:]
            if r["method"] != "GET"] == [f"POST /v1/fine_tuning/jobs/{job}/cancel"]
    (comment,) = world.comments()
    assert "#### ftops apply refused: plan-changed" in comment["body"]
    assert f"job {job} was cancelled" in comment["body"]
    assert "Nothing was uploaded or trained." in world.summary.read_text()


def test_action_checks_the_reviewed_plan_when_the_plan_has_no_changes(world: World) -> None:
    """The reviewed plan trained; the plan on the push has nothing to do: that is not what was
    reviewed, and apply says so rather than reporting success."""
    first = started_locally(world)
    merged(world, first.plan.plan_hash)
    before = len(world.emulator.requests())
    with pytest.raises(StalePlanError, match=r"^plan-changed: the plan \("):
        action_apply(world)
    assert [r for r in world.emulator.requests()[before:] if r["method"] != "GET"] == []
    (comment,) = world.comments()
    assert "#### ftops apply refused: plan-changed" in comment["body"]
    assert world.outputs()["has-changes"] == "false"
