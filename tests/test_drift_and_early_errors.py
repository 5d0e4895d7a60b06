"""Drift the plan must see (a fine-tuned model or a dataset file deleted outside ftops) and
mistakes it must refuse before any mutating request (a base no provider can fine-tune, a budget
that cannot be checked or is exceeded, a dataset git does not track).

End-to-end tests run the real CLI against the emulator over HTTP in real git repositories;
the rules themselves are tested on the pure planner."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import git
import pytest
import yaml
from click.testing import Result

from ftops import drift, gitinfo
from ftops.emulator import Emulator
from ftops.plan import STARTS_JOB, ActionType, Plan
from ftops.project import LOCK_FILE
from ftops.state import Actual, Job, RemoteModel, Source
from ftops.validate import validate
from tests.conftest import make_chat_jsonl, run_cli, sdk_client
from tests.test_engine import KEY, Clock, Project, account, ftops, log, model, mutations
from tests.test_planner import (
    MINI,
    NANO,
    UPLOADED,
    by_address,
    desired,
    fp,
    job,
    run,
)
from tests.test_planner import model as spec_model

ROOT = Path(__file__).resolve().parents[1]
DRIFT_WORKFLOW = ROOT / "examples" / "workflows" / "ftops-drift.yml"
MISSPELT = "gpt-4o-mni-2024-07-18"
TWO = {"alpha": model("train-a", suffix="alpha"), "beta": model("train-b", suffix="beta")}
CREATE_JOB = "POST /v1/fine_tuning/jobs"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    proj = Project(tmp_path / "repo")
    proj.write(TWO)
    proj.commit()
    return proj


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def emu(clock: Clock) -> Iterator[Emulator]:
    with Emulator(job_seconds=60, clock=clock) as server:
        yield server


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, emu: Emulator) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url)


def trained(project: Project, emu: Emulator, clock: Clock) -> dict[str, Any]:
    """Apply, let every job succeed; each model's job, by model name."""
    assert ftops(project, "apply", "--auto-approve").exit_code == 0
    clock.now += 120
    _, jobs = account(emu)
    return {j.metadata["ftops_model"]: j for j in jobs}


def plan_json(project: Project, *args: str) -> tuple[int, dict[str, Any]]:
    result = ftops(project, "plan", "--json", *args)
    return result.exit_code, json.loads(result.stdout)


def from_root(project: Project, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    """``ftops ARGS --specs specs`` from the repository root, as CI runs it: spec paths in
    messages read ``specs/...``, as they do in ``ftops validate``'s."""
    monkeypatch.chdir(project.root)
    return run_cli(Path("specs"), *args)


def line_of(path: Path, needle: str) -> int:
    """1-based line of the first line of ``path`` containing ``needle``."""
    lines = path.read_text().splitlines()
    return next(i for i, text in enumerate(lines, 1) if needle in text)


# --- item 5: drift ------------------------------------------------------------------------


@pytest.mark.usefixtures("env")
def test_a_deleted_fine_tuned_model_plans_retrain_and_apply_trains_it_again(
        project: Project, emu: Emulator, clock: Clock) -> None:
    jobs = trained(project, emu, clock)
    dead = jobs["alpha"].fine_tuned_model
    assert plan_json(project, "--detailed-exitcode")[0] == 0
    with sdk_client(emu.base_url) as sdk:
        sdk.models.delete(dead)

    code, out = plan_json(project, "--detailed-exitcode")
    assert code == 2
    by = {a["address"]: a for a in out["actions"]}
    assert {k: a["action"] for k, a in by.items()} == {"model.alpha": "retrain",
                                                      "model.beta": "ok"}
    assert by["model.alpha"]["display"]["note"] == f"fine-tuned model {dead} was deleted"
    assert by["model.alpha"]["job_id"] == jobs["alpha"].id
    assert out["summary"]["retrain"] == 1 and out["has_changes"] is True
    text = ftops(project, "plan").stdout
    [line] = [x for x in text.splitlines() if "model.alpha" in x]
    assert line.split()[:3] == ["~", "retrain", "model.alpha"]
    assert f"fine-tuned model {dead} was deleted" in line
    assert "1 to retrain" in text

    # The lock, as status writes it, says the model no longer exists; status shows it.
    status = ftops(project, "status", "--json")
    assert status.exit_code == 0
    rows = {r["name"]: r for r in json.loads(status.stdout)["models"]}
    assert (rows["alpha"]["state"], rows["alpha"]["deleted"]) == ("retrain", True)
    assert rows["beta"]["deleted"] is False
    assert f"{dead} (deleted)" in ftops(project, "status").stdout
    locked = project.lock()["models"]
    assert locked["alpha"]["deleted"] is True and locked["alpha"]["fine_tuned_model"] == dead
    assert "deleted" not in locked["beta"]

    # Apply trains a new job for it, once; the next apply leaves that job alone.
    before = len(emu.requests())
    applied = ftops(project, "apply", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert "Apply complete: 0 uploaded, 1 started, 0 pruned" in applied.stdout
    assert mutations(emu, before) == [CREATE_JOB]
    before = len(emu.requests())
    again = ftops(project, "apply", "--auto-approve")
    assert "Apply complete: 0 uploaded, 0 started, 0 pruned" in again.stdout
    assert mutations(emu, before) == []
    _, listed = account(emu)
    alpha = sorted((j for j in listed if j.metadata["ftops_model"] == "alpha"),
                   key=lambda j: j.created_at)
    assert len(alpha) == 2 and alpha[0].status == "succeeded"
    assert alpha[1].status not in ("cancelled", "failed")
    clock.now += 120
    code, out = plan_json(project, "--detailed-exitcode")
    assert code == 0 and {a["action"] for a in out["actions"]} == {"ok"}
    assert ftops(project, "status").exit_code == 0
    entry = project.lock()["models"]["alpha"]
    assert entry["job_id"] == alpha[1].id and "deleted" not in entry
    assert entry["fine_tuned_model"] not in (None, dead)


@pytest.mark.usefixtures("env")
def test_a_dataset_file_deleted_remotely_plans_an_upload_again(
        project: Project, emu: Emulator, clock: Clock) -> None:
    jobs = trained(project, emu, clock)
    with sdk_client(emu.base_url) as sdk:
        sdk.models.delete(jobs["alpha"].fine_tuned_model)
        sdk.files.delete(jobs["alpha"].training_file)
    code, out = plan_json(project, "--detailed-exitcode")
    assert code == 2
    by = {a["address"]: a for a in out["actions"]}
    assert by["dataset.train-a"]["action"] == "upload"
    assert by["model.alpha"]["action"] == "retrain"
    assert by["model.alpha"]["depends_on"] == ["dataset.train-a"]
    assert by["model.alpha"]["training"]["training"]["file_id"] is None
    before = len(emu.requests())
    assert ftops(project, "apply", "--auto-approve").exit_code == 0
    assert mutations(emu, before) == ["POST /v1/files", CREATE_JOB]


def test_a_file_deleted_remotely_is_uploaded_for_a_pending_train_and_retry() -> None:
    d = desired(spec_model("new"), spec_model("broken", validation="val"))
    failed = job("ftjob-1", "failed", "broken", fp(d, "broken"), validation_file="file-val")
    # Only the validation file is still listed: the training file was deleted remotely.
    p = run(d, Actual(files=UPLOADED[1:], jobs=(failed,)))
    by = by_address(p)
    assert [(a.address, a.action) for a in p.actions if a.action is ActionType.UPLOAD] == [
        ("dataset.train", ActionType.UPLOAD)]
    assert by["model.broken"].action is ActionType.RETRY
    for name in ("model.new", "model.broken"):
        training = by[name].training
        assert training is not None and training.training.file_id is None
        assert by[name].depends_on == ("dataset.train",)
    broken = by["model.broken"].training
    assert broken is not None and broken.validation is not None
    assert broken.validation.file_id == "file-val"


def _succeeded(d: Any, model_id: str = "ft:gpt-4.1-nano-2025-04-14:acme:bot:abc") -> Job:
    return job("ftjob-1", "succeeded", "bot", fp(d), fine_tuned_model=model_id)


def test_deleted_only_when_the_listing_can_tell() -> None:
    gone = "ft:gpt-4.1-nano-2025-04-14:acme:bot:abc"
    bases = (RemoteModel(NANO), RemoteModel(MINI))
    other_ft = RemoteModel("ft:gpt-4.1-nano-2025-04-14:acme:other:def")
    cases = [
        # (provider type, listing, deleted?)
        ("openai", (), False),  # no listing at all: it tells nothing
        ("openai", bases, True),  # OpenAI lists the account's fine-tunes beside the bases
        ("azure", bases, True),  # so does Azure
        (None, bases, False),  # an endpoint whose listing shows no fine-tune at all
        (None, (*bases, other_ft), True),  # one that lists fine-tunes, but not this one
        (None, (), False),
    ]
    for provider_type, listing, deleted in cases:
        d = desired(spec_model(provider_type=provider_type))
        p = run(d, Actual(files=UPLOADED, jobs=(_succeeded(d, gone),), models=listing))
        expected = ActionType.RETRAIN if deleted else ActionType.OK
        assert by_address(p)["model.bot"].action is expected, (provider_type, listing)
    # Listed: ok, whatever the endpoint.
    for provider_type in ("openai", None):
        d = desired(spec_model(provider_type=provider_type))
        p = run(d, Actual(files=UPLOADED, jobs=(_succeeded(d, gone),),
                          models=(*bases, RemoteModel(gone))))
        assert by_address(p)["model.bot"].action is ActionType.OK
    # Another provider's listing says nothing about this one.
    d = desired(spec_model())
    elsewhere = tuple(dataclasses.replace(m, provider="az") for m in bases)
    assert by_address(run(d, Actual(files=UPLOADED, jobs=(_succeeded(d, gone),),
                                    models=elsewhere)))["model.bot"].action is ActionType.OK


def test_retrain_is_a_change_and_blocks_children_but_a_retired_model_stays_retired() -> None:
    assert ActionType.RETRAIN in STARTS_JOB
    d = desired(spec_model("done", base=MINI), spec_model("child", parent="done"))
    done = job("ftjob-1", "succeeded", "done", fp(d, "done"),
               fine_tuned_model="ft:gpt-4o-mini-2024-07-18:acme:done:abc")
    deleted = Actual(files=UPLOADED, jobs=(done,), models=(RemoteModel(MINI),))
    p = run(d, deleted)
    by = by_address(p)
    retrain = by["model.done"]
    assert retrain.action is ActionType.RETRAIN and p.has_changes and p.needs_attention
    assert retrain.training is not None and retrain.training.base == MINI
    assert retrain.training.fingerprint == fp(d, "done")
    assert retrain.display.note == ("fine-tuned model ft:gpt-4o-mini-2024-07-18:acme:done:abc "
                                    "was deleted")
    assert retrain.display.cost_usd is None and p.summary["retrain"] == 1
    assert by["model.child"].action is ActionType.BLOCKED
    assert by["model.child"].depends_on == ("model.done",)
    assert Plan.from_json(p.to_json()) == p
    # On the day its base shuts down, a deleted model is retired, not retrained.
    retired = run(d, deleted, today=dt.date(2027, 1, 14))
    assert by_address(retired)["model.done"].action is ActionType.RETIRED


def test_the_deletion_rule_is_one_function() -> None:
    d = desired(spec_model())
    done = _succeeded(d)
    listing = Actual(models=(RemoteModel(NANO),))
    assert drift.model_deleted(listing, done, "openai")
    assert not drift.model_deleted(listing, done, None)
    assert not drift.model_deleted(Actual(), done, "openai")
    assert not drift.model_deleted(listing, dataclasses.replace(done, status="failed"), "openai")


def test_the_drift_workflow_runs_plan_with_detailed_exitcode_and_tells_2_from_1(
        tmp_path: Path) -> None:
    workflow = yaml.safe_load(DRIFT_WORKFLOW.read_text())
    steps = workflow["jobs"]["drift"]["steps"]
    [plan_step] = [s for s in steps if "ftops" in str(s.get("uses", ""))]
    assert plan_step["with"]["command"] == "plan"
    assert plan_step["with"]["detailed-exitcode"] is True
    [explain] = [s for s in steps if s.get("name") == "Explain"]
    assert explain["if"] == "failure()"
    assert explain["env"]["PLAN_JSON"] == f"${{{{ steps.{plan_step['id']}.outputs.plan-json }}}}"
    comment = DRIFT_WORKFLOW.read_text().split("\nname:")[0]
    assert "model was deleted" in comment and "retrain" in comment
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash not installed")

    def explain_with(plan_json_path: str) -> str:
        done = subprocess.run([bash, "-c", explain["run"]], capture_output=True, text=True,
                              env={**os.environ, "PLAN_JSON": plan_json_path}, check=False)
        assert done.returncode == 1, done.stderr
        return done.stdout

    clean = tmp_path / "drift.json"
    clean.write_text(json.dumps({"errors": [], "has_changes": True}))
    broken = tmp_path / "errors.json"
    broken.write_text(json.dumps({"errors": [{"code": "x"}], "has_changes": True}))
    assert "::error title=ftops drift::drift:" in explain_with(str(clean))
    assert "the plan failed" in explain_with(str(broken))
    assert "the plan failed" in explain_with("")
    assert "the plan failed" in explain_with(str(tmp_path / "missing.json"))


# --- item 6: errors before any mutation -------------------------------------------------------


@pytest.mark.usefixtures("env")
def test_a_misspelt_base_is_one_plan_error_at_file_line_and_apply_uploads_nothing(
        project: Project, emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    project.write({**TWO, "alpha": model("train-a", base=MISSPELT, suffix="alpha")})
    project.commit("typo")
    line = line_of(project.specs / "models.yaml", f"base: {MISSPELT}")
    message = (f"models.alpha.base: unknown base model '{MISSPELT}' "
               "(did you mean 'gpt-4o-mini-2024-07-18'?)")
    expected = f"specs/models.yaml:{line}: {message}"
    planned = from_root(project, monkeypatch, "plan", "--json", "--detailed-exitcode")
    assert planned.exit_code == 1
    assert json.loads(planned.stdout)["errors"] == [
        {"file": "specs/models.yaml", "line": line, "code": "unknown_base_model",
         "message": message}]
    text = from_root(project, monkeypatch, "plan")
    assert text.exit_code == 1
    assert f"  x {expected}" in text.stdout.splitlines()
    applied = from_root(project, monkeypatch, "apply", "--auto-approve")
    assert applied.exit_code == 1
    assert expected in applied.stderr and len(applied.stderr.splitlines()) == 1
    assert mutations(emu) == []
    assert {r["method"] for r in log(emu)} == {"GET"}


def test_a_base_the_provider_cannot_fine_tune() -> None:
    listed = (RemoteModel(NANO), RemoteModel("dall-e-3"), RemoteModel("acme-base-1"))
    where = {"source": Source("specs/m.yaml", 3), "key_lines": {"base": 4}}

    def errors(provider_type: str | None, base: str,
               models: tuple[RemoteModel, ...] = listed) -> list[str]:
        d = desired(spec_model(base=base, provider_type=provider_type, **where))
        return [str(e) for e in run(d, Actual(files=UPLOADED, models=models)).errors]

    assert errors("openai", "dall-e-3") == [
        "specs/m.yaml:4: models.bot.base: dall-e-3 is listed by provider openai but is not a "
        "base model it can fine-tune"]
    assert errors("openai", MISSPELT, ()) == [
        f"specs/m.yaml:4: models.bot.base: unknown base model '{MISSPELT}' "
        "(did you mean 'gpt-4o-mini-2024-07-18'?)"]
    # The catalog knows it, but this account's listing does not offer it.
    assert errors("azure", MINI) == [
        f"specs/m.yaml:4: models.bot.base: {MINI} is not in provider openai's /models listing"]
    assert errors("openai", "gpt-4o-mini") == [
        "specs/m.yaml:4: models.bot.base: gpt-4o-mini is not in provider openai's /models "
        "listing"]
    assert errors("openai", "gpt-4o-mini", (*listed, RemoteModel(MINI))) == []
    assert errors("openai", NANO) == [] and errors("openai", MINI, ()) == []
    # A compatible endpoint may serve bases the catalog does not know: its listing decides...
    assert errors(None, "acme-base-1") == []
    assert errors(None, "acme-base-2") == [
        "specs/m.yaml:4: models.bot.base: acme-base-2 is not in provider openai's /models "
        "listing (did you mean 'acme-base-1'?)"]
    # ...and with no listing, nothing is refused.
    assert errors(None, "acme-base-2", ()) == []
    # A literal fine-tuned base must still exist.
    assert errors("openai", "ft:gpt-4.1-nano-2025-04-14:acme:old:xyz") == [
        "specs/m.yaml:4: models.bot.base: ft:gpt-4.1-nano-2025-04-14:acme:old:xyz is not in "
        "provider openai's /models listing"]


def test_a_base_is_checked_only_when_a_job_would_start() -> None:
    d = desired(spec_model(base="retired-lab-model"), spec_model("child", parent="bot"))
    done = job("ftjob-1", "succeeded", "bot", fp(d), fine_tuned_model="ft:lab:bot")
    child = job("ftjob-2", "succeeded", "child", fp(d, "child"), fine_tuned_model="ft:lab:c")
    p = run(d, Actual(files=UPLOADED, jobs=(done, child),
                      models=(RemoteModel(NANO), RemoteModel("ft:lab:bot"),
                              RemoteModel("ft:lab:c"))))
    assert p.errors == ()
    assert {a.action for a in p.actions} == {ActionType.OK}


def test_max_cost_usd_without_a_price_or_exceeded_is_a_plan_error_at_file_line() -> None:
    where = {"source": Source("specs/m.yaml", 3), "key_lines": {"max_cost_usd": 7}}
    unknown = desired(spec_model(base="acme-base-1", provider_type=None, max_cost_usd=1,
                                 **where))
    assert [str(e) for e in run(unknown, Actual(files=UPLOADED)).errors] == [
        "specs/m.yaml:7: models.bot.max_cost_usd: no training price is known for acme-base-1, "
        "so the budget cannot be checked; add `pricing: {acme-base-1: {training_usd_per_1m: "
        "...}}`"]
    assert [w.code for w in run(unknown, Actual(files=UPLOADED)).warnings] == ["undeclared"]
    over = desired(spec_model(estimated_cost_usd=2.5, cost_basis=(3, 12_345), max_cost_usd=1,
                              **where))
    [error] = run(over, Actual(files=UPLOADED)).errors
    assert (error.path, error.line, error.code) == ("specs/m.yaml", 7, "budget_exceeded")
    assert str(error) == ("specs/m.yaml:7: models.bot.max_cost_usd: estimated cost $2.50 "
                          "exceeds the budget $1.00 (3 epochs x 12,345 tokens)")
    within = desired(spec_model(estimated_cost_usd=0.5, max_cost_usd=1, **where))
    assert run(within, Actual(files=UPLOADED)).errors == ()
    # A model already trained spends nothing new: its budget is not the plan's business.
    d = desired(spec_model(base="acme-base-1", provider_type=None, max_cost_usd=1, **where))
    done = job("ftjob-1", "succeeded", "bot", fp(d), fine_tuned_model="ft:x")
    assert run(d, Actual(files=UPLOADED, jobs=(done,))).errors == ()


@pytest.mark.usefixtures("env")
def test_plan_budget_errors_read_exactly_as_validate_reports_them(
        project: Project, emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    models = {"alpha": model("train-a", suffix="alpha", max_cost_usd=0.000001),
              "beta": model("train-b", base="my-lab-model", suffix="beta", max_cost_usd=1)}
    project.write(models)
    project.commit("budgets")
    monkeypatch.chdir(project.root)
    validated = {e.code: str(e) for e in validate(specs=Path("specs")).errors}
    assert sorted(validated) == ["budget_exceeded", "no_price"]
    planned = from_root(project, monkeypatch, "plan")
    assert planned.exit_code == 1
    for error in validated.values():
        assert f"  x {error}" in planned.stdout.splitlines()
    out = json.loads(from_root(project, monkeypatch, "plan", "--json").stdout)
    codes = sorted(e["code"] for e in out["errors"])
    assert codes == ["budget_exceeded", "no_price", "unknown_base_model"]
    assert from_root(project, monkeypatch, "apply", "--auto-approve").exit_code == 1
    assert mutations(emu) == []


@pytest.mark.usefixtures("env")
def test_a_dataset_git_ignores_is_refused_by_apply_unless_allow_dirty(
        project: Project, emu: Emulator) -> None:
    root = project.root
    # A fresh repository in which the training data of beta was never committed: git ignores it.
    shutil.rmtree(root / ".git")
    (root / ".gitignore").write_text("specs/data/train-b.jsonl\n")
    project.commit()
    with git.Repo(root) as repo:
        assert "specs/data/train-b.jsonl" not in repo.git.ls_files().splitlines()
    assert ftops(project, "plan").exit_code == 0  # plan reads; only apply is refused
    refused = ftops(project, "apply", "--auto-approve")
    assert refused.exit_code == 1
    [message] = refused.stderr.splitlines()
    assert "specs/data/train-b.jsonl (ignored by git)" in message
    assert "train-a.jsonl" not in message
    assert mutations(emu) == []
    assert ftops(project, "apply", "--auto-approve", "--allow-dirty").exit_code == 0
    assert (root / LOCK_FILE).exists()


@pytest.mark.usefixtures("env")
def test_an_untracked_dataset_is_named_too(project: Project, emu: Emulator) -> None:
    data = project.specs / "data" / "train-c.jsonl"
    data.write_bytes(make_chat_jsonl(12, tag="c"))
    project.write({**TWO, "gamma": model("train-c", suffix="gamma")},
                  data={"train-a": make_chat_jsonl(12, tag="a"),
                        "train-b": make_chat_jsonl(12, tag="b"),
                        "train-c": make_chat_jsonl(12, tag="c")})
    with git.Repo(project.root) as repo:
        repo.git.add("specs/models.yaml", "specs/datasets.yaml")
        repo.index.commit("gamma, without its data")
    refused = ftops(project, "apply", "--auto-approve")
    assert refused.exit_code == 1
    assert "specs/data/train-c.jsonl (untracked)" in refused.stderr
    assert mutations(emu) == []


def test_dirty_files_counts_untracked_and_ignored(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "data").mkdir(parents=True)
    (root / ".gitignore").write_text("data/secret.jsonl\ndata/hidden/\n")
    (root / "data" / "train.jsonl").write_text("{}\n")
    repo = git.Repo.init(root)
    repo.git.add(A=True)
    repo.git.commit("-m", "init", env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x",
                                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"})
    (root / "data" / "secret.jsonl").write_text("{}\n")
    (root / "data" / "hidden").mkdir()
    (root / "data" / "hidden" / "h.jsonl").write_text("{}\n")
    (root / "data" / "new.jsonl").write_text("{}\n")
    paths = ["data/train.jsonl", "data/secret.jsonl", "data/hidden/h.jsonl", "data/new.jsonl"]
    assert gitinfo.dirty_files(root, paths) == (
        "data/hidden/h.jsonl", "data/new.jsonl", "data/secret.jsonl")
    assert gitinfo.file_states(root, paths) == {
        "data/hidden/h.jsonl": "ignored", "data/new.jsonl": "untracked",
        "data/secret.jsonl": "ignored"}
    repo.close()


def test_the_lock_reads_and_writes_the_deleted_mark(tmp_path: Path) -> None:
    from ftops.errors import FtopsError
    from ftops.lock import Lock, LockedModel, dump_lock, read_lock
    path = tmp_path / LOCK_FILE
    gone = LockedModel("f" * 64, "ftjob-1", "succeeded", "ft:x:acme:bot:1", 10, deleted=True)
    kept = LockedModel("e" * 64, "ftjob-2", "succeeded", "ft:x:acme:other:2", 10)
    path.write_text(dump_lock(Lock(models={"bot": gone, "other": kept})))
    assert "deleted: true" in path.read_text() and path.read_text().count("deleted") == 1
    assert read_lock(path).models == {"bot": gone, "other": kept}
    path.write_text(path.read_text().replace("deleted: true", "deleted: maybe"))
    with pytest.raises(FtopsError, match="'deleted' must be true or false"):
        read_lock(path)


def test_a_spec_form_plan_error_shows_its_place_in_the_pull_request_comment() -> None:
    from ftops.render import render_markdown
    where = {"source": Source("specs/m.yaml", 3), "key_lines": {"base": 4}}
    p = run(desired(spec_model(base=MISSPELT, **where)), Actual(files=UPLOADED))
    body = render_markdown(p)
    assert "- ❌ `specs/m.yaml:4`: models.bot.base: unknown base model" in body
