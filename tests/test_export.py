"""``ftops export`` and ``ftops import`` against the emulator, in real git repositories."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result

from ftops.commands import import_
from ftops.emulator import Emulator
from ftops.errors import FtopsError
from ftops.project import load_project
from tests.conftest import make_chat_jsonl, run_cli, sdk_client
from tests.test_engine import BASE, KEY, Project

MODELS = {
    "alpha": {"base": "mini", "training": "train-a", "validation": "train-b", "suffix": "alpha",
              "hyperparameters": {"n_epochs": 2, "batch_size": "auto"}, "seed": 7,
              "metadata": {"team": "a"}},
    "child": {"base": "alpha", "training": "train-b", "suffix": "child"},
}


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    with Emulator(job_seconds=0) as server:
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        yield server


def ftops(specs: Path, *args: str) -> Result:
    return run_cli(specs, *args)


def plan_json(specs: Path) -> dict[str, Any]:
    result = ftops(specs, "plan", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def by_address(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["address"]: a for a in plan["actions"]}


def test_export_then_replan_on_a_fresh_emulator_reproduces_fingerprints(
        tmp_path: Path, emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    project = Project(tmp_path / "repo")
    project.write(MODELS)
    project.commit()
    assert ftops(project.specs, "apply", "--auto-approve", "--wait").exit_code == 0
    prints = project.fingerprints()
    out = tmp_path / "bundle"
    exported = ftops(project.specs, "export", "--out", str(out))
    assert exported.exit_code == 0, exported.output
    assert sorted(p.name for p in out.iterdir()) == ["alpha", "child"]

    alpha = out / "alpha"
    for data in (alpha / "datasets").iterdir():  # exact bytes, named by their hash
        assert hashlib.sha256(data.read_bytes()).hexdigest() == data.stem
    record = json.loads((alpha / "job.json").read_text())
    locked = project.lock()["models"]["alpha"]
    assert yaml.safe_load((alpha / "lock.yaml").read_text()) == {"alpha": locked}
    assert record["fingerprint"] == prints["alpha"] == locked["fingerprint"]
    assert record["job"]["id"] == locked["job_id"]
    assert record["job"]["base"] == BASE and record["job"]["seed"] == 7
    assert record["job"]["hyperparameters"]["n_epochs"] == 2
    assert record["metrics"] is not None and "train_loss" in record["metrics"]
    assert (alpha / "results.csv").read_text().startswith("step")

    # Elsewhere, on an empty account: the bundle alone plans the same models.
    with Emulator(job_seconds=0) as fresh:
        monkeypatch.setenv("OPENAI_BASE_URL", fresh.base_url)
        moved = tmp_path / "elsewhere"
        shutil.copytree(out / "child", moved)
        plan = by_address(plan_json(moved / "specs"))
    assert plan["model.alpha"]["action"] == "train"
    assert plan["model.alpha"]["training"]["fingerprint"] == prints["alpha"]
    assert plan["model.child"]["training"]["fingerprint"] == prints["child"]


def test_export_skips_models_without_a_succeeded_job(tmp_path: Path, emu: Emulator) -> None:
    project = Project(tmp_path / "repo")
    project.write({"alpha": MODELS["alpha"]})
    project.commit()
    result = ftops(project.specs, "export", "alpha", "--out", str(tmp_path / "b"))
    assert result.exit_code == 1
    assert "skipped alpha: its current fingerprint has no succeeded job (no job)" in result.stdout
    assert not (tmp_path / "b").exists()


def hand_made_job(server: Emulator) -> tuple[str, bytes]:
    """A job created with the SDK directly, as a team would before using ftops."""
    data = make_chat_jsonl(11, tag="hand")
    with sdk_client(server.base_url) as sdk:
        file = sdk.files.create(file=("support.jsonl", data), purpose="fine-tune")
        job = sdk.fine_tuning.jobs.create(
            model=BASE, training_file=file.id, suffix="support", seed=3,
            hyperparameters={"n_epochs": 2}, metadata={"team": "support"})
        sdk.fine_tuning.jobs.retrieve(job.id)  # the emulator finishes it on this read
    return job.id, data


def test_adopting_a_hand_made_job_yields_a_spec_whose_plan_is_ok(
        tmp_path: Path, emu: Emulator) -> None:
    project = Project(tmp_path / "repo")
    project.write({"alpha": MODELS["alpha"]})
    project.commit()
    job_id, data = hand_made_job(emu)
    before = len(emu.requests())
    result = ftops(project.specs, "import", job_id)
    assert result.exit_code == 0, result.output
    assert f"adopted {job_id} as model support" in result.stdout
    assert all(r["method"] == "GET" for r in emu.requests()[before:])  # adopting changes nothing
    assert (project.root / "data" / "imported" / "support-train.jsonl").read_bytes() == data
    spec = yaml.safe_load((project.specs / "imported.yaml").read_text())
    entry = spec["models"]["support"]
    assert entry["adopt"]["job"] == job_id
    assert (entry["base"], entry["suffix"], entry["seed"], entry["metadata"]) == (
        BASE, "support", 3, {"team": "support"})
    assert entry["hyperparameters"]["n_epochs"] == 2

    plan = by_address(plan_json(project.specs))
    assert plan["model.support"]["action"] == "ok"
    assert plan["model.support"]["job_id"] == job_id
    assert plan["model.alpha"]["action"] == "train"  # the rest of the specs is unaffected
    status = json.loads(ftops(project.specs, "status", "--json").stdout)
    row = next(r for r in status["models"] if r["name"] == "support")
    assert (row["state"], row["job_id"]) == ("ok", job_id)

    # Changing what the weights depend on retrains: the adopted job becomes the previous one.
    entry["hyperparameters"]["n_epochs"] = 3
    (project.specs / "imported.yaml").write_text(yaml.safe_dump(spec))
    changed = by_address(plan_json(project.specs))
    assert changed["model.support"]["action"] == "replace"


def test_import_refuses_jobs_ftops_made_and_leaves_nothing_behind(
        tmp_path: Path, emu: Emulator) -> None:
    project = Project(tmp_path / "repo")
    project.write({"alpha": MODELS["alpha"]})
    project.commit()
    assert ftops(project.specs, "apply", "--auto-approve").exit_code == 0
    ours = project.lock()["models"]["alpha"]["job_id"]
    job_id, _ = hand_made_job(emu)
    with pytest.raises(FtopsError, match=f"job {ours} is already managed by ftops"):
        import_.run(import_.ImportOptions(job_ids=(job_id, ours), specs=project.specs))
    assert not (project.specs / "imported.yaml").exists()
    assert not (project.root / "data" / "imported" / "support-train.jsonl").exists()
    again = ftops(project.specs, "import", job_id, "--name", "bot", "--out",
                  str(project.root / "elsewhere.yaml"))
    assert again.exit_code == 1
    assert "is not a .yaml file in the spec directory" in again.stderr
    assert load_project(project.specs).spec.model("bot") is None
