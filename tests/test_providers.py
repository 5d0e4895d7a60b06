"""Providers end to end: several providers in one run (one of them Azure, through the real
``AzureOpenAI``), an endpoint without the metadata filter, keys, and lifecycle warnings."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from click.testing import CliRunner, Result

from ftops import clock
from ftops.cli import main
from ftops.commands import plan, status
from ftops.emulator import Emulator
from ftops.errors import FtopsError
from ftops.providers import CAPABILITIES, Features, make_client
from ftops.spec import Provider
from tests.conftest import make_chat_jsonl, run_cli, sdk_client
from tests.test_engine import BASE, Project

LAB_KEY = "sk-lab-SECRET-0a1b2c3d4e5f"
AZ_KEY = "az-SECRET-9f8e7d6c5b4a"
API_VERSION = "2025-04-01-preview"
FTOPS = Path(sys.executable).with_name("ftops")


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def lab() -> Iterator[Emulator]:
    with Emulator(job_seconds=0) as server:
        yield server


@pytest.fixture
def azure() -> Iterator[Emulator]:
    with Emulator(job_seconds=0, flavor="azure", azure_rules=True) as server:
        yield server


def write_project(root: Path, providers: dict[str, Any], models: dict[str, Any]) -> Project:
    project = Project(root)
    data = {"datasets": {"train-a": {"path": "data/train-a.jsonl"},
                         "train-b": {"path": "data/train-b.jsonl"}},
            "base_models": {"mini": BASE}, "providers": providers}
    (project.specs / "data").mkdir(parents=True, exist_ok=True)
    (project.specs / "data" / "train-a.jsonl").write_bytes(make_chat_jsonl(12, tag="a"))
    (project.specs / "data" / "train-b.jsonl").write_bytes(make_chat_jsonl(12, tag="b"))
    (project.specs / "datasets.yaml").write_text(yaml.safe_dump(data, sort_keys=True))
    (project.specs / "models.yaml").write_text(yaml.safe_dump({"models": models}))
    project.commit()
    return project


def ftops(project: Project, *args: str) -> Result:
    return run_cli(project.specs, *args)


def plan_actions(project: Project) -> dict[str, str]:
    result = ftops(project, "plan", "--json")
    assert result.exit_code == 0, result.output
    return {a["address"]: a["action"] for a in json.loads(result.stdout)["actions"]}


def jobs_of(server: Emulator, *, azure: bool = False) -> list[Any]:
    client: openai.OpenAI
    if azure:
        client = openai.AzureOpenAI(azure_endpoint=server.azure_endpoint, api_version=API_VERSION,
                                    api_key="any", max_retries=0,
                                    http_client=openai.DefaultHttpxClient(trust_env=False))
    else:
        client = sdk_client(server.base_url)
    with client:
        return list(client.fine_tuning.jobs.list(limit=100))


def two_providers(lab: Emulator, azure: Emulator) -> dict[str, Any]:
    return {"lab": {"base_url": lab.base_url, "api_key_env": "LAB_KEY"},
            "az": {"type": "azure", "endpoint": azure.azure_endpoint,
                   "api_version": API_VERSION, "api_key_env": "AZ_KEY"}}


MODELS = {
    "on-lab": {"base": "mini", "training": "train-a", "suffix": "lab", "provider": "lab"},
    "on-az": {"base": "mini", "training": "train-b", "suffix": "az", "provider": "az"},
}


def test_two_providers_planned_and_applied_in_one_run(
        tmp_path: Path, lab: Emulator, azure: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_KEY", LAB_KEY)
    monkeypatch.setenv("AZ_KEY", AZ_KEY)
    project = write_project(tmp_path / "repo", two_providers(lab, azure), MODELS)
    assert plan_actions(project) == {
        "dataset.train-a[lab]": "upload", "dataset.train-b[az]": "upload",
        "model.on-lab[lab]": "train", "model.on-az[az]": "train"}
    applied = ftops(project, "apply", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert "2 uploaded, 2 started" in applied.stdout
    assert plan_actions(project) == {"model.on-lab[lab]": "ok", "model.on-az[az]": "ok"}
    # Each account holds only its own model's job, and each client spoke its own dialect.
    assert [j.metadata["ftops_model"] for j in jobs_of(lab)] == ["on-lab"]
    assert [j.metadata["ftops_model"] for j in jobs_of(azure, azure=True)] == ["on-az"]
    assert all(r["path"].startswith("/openai/") and "api-version=" in r["query"]
               for r in azure.requests())
    assert all(r["path"].startswith("/v1/") for r in lab.requests())
    locked = project.lock()["models"]
    assert {name: entry["provider"] for name, entry in locked.items()} == {
        "on-lab": "lab", "on-az": "az"}
    waited = ftops(project, "wait")
    assert waited.exit_code == 0, waited.output
    assert sorted(line.split(":")[0] for line in waited.stdout.splitlines()
                  if ": succeeded " in line) == ["on-az", "on-lab"]
    for result in (applied, waited, ftops(project, "status")):
        assert LAB_KEY not in result.output and AZ_KEY not in result.output


def test_plan_reads_each_provider_once(tmp_path: Path, lab: Emulator, azure: Emulator,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_KEY", LAB_KEY)
    monkeypatch.setenv("AZ_KEY", AZ_KEY)
    project = write_project(tmp_path / "repo", two_providers(lab, azure), MODELS)
    plan_actions(project)
    for server in (lab, azure):
        reads = sorted(r["path"].rsplit("/", 1)[-1] for r in server.requests())
        assert reads == ["files", "jobs", "models"]


def test_missing_key_names_provider_and_variable(
        tmp_path: Path, lab: Emulator, azure: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_KEY", LAB_KEY)
    project = write_project(tmp_path / "repo", two_providers(lab, azure), MODELS)
    result = ftops(project, "plan")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert "no API key for provider az: AZ_KEY is not set" in lines[0]
    assert lines[0].startswith(f"Error: {project.specs / 'datasets.yaml'}:")
    assert LAB_KEY not in result.output
    assert lab.requests() == [] and azure.requests() == []


def test_emulator_flag_runs_one_emulator_per_provider(
        tmp_path: Path, lab: Emulator, azure: Emulator) -> None:
    project = write_project(tmp_path / "repo", two_providers(lab, azure), MODELS)
    applied = ftops(project, "apply", "--emulator", "--auto-approve")  # no key needed
    assert applied.exit_code == 0, applied.output
    assert "2 uploaded, 2 started" in applied.stdout
    state = project.root / ".ftops" / "emulator"
    assert sorted(p.name for p in state.glob("state-*.json")) == ["state-az.json",
                                                                  "state-lab.json"]
    assert lab.requests() == [] and azure.requests() == []  # the spec's endpoints untouched


# --- an endpoint without the metadata filter ----------------------------------------------------


def test_provider_without_metadata_filter_falls_back_to_client_side_filtering(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("LAB_KEY", LAB_KEY)
    with Emulator(job_seconds=0, metadata_filter=False) as bare:
        with sdk_client(bare.base_url) as sdk:  # someone else's job in the same account
            other = sdk.files.create(file=("x.jsonl", make_chat_jsonl(10, tag="x")),
                                     purpose="fine-tune")
            foreign = sdk.fine_tuning.jobs.create(model=BASE, training_file=other.id,
                                                  metadata={"ftops_repo": "elsewhere"})
            with pytest.raises(openai.BadRequestError):
                sdk.fine_tuning.jobs.list(metadata={"team": "a"})
        providers = {"lab": {"base_url": bare.base_url, "api_key_env": "LAB_KEY"}}
        models = {"on-lab": MODELS["on-lab"]}
        project = write_project(tmp_path / "repo", providers, models)
        with caplog.at_level(logging.WARNING, logger="ftops.providers"):
            assert ftops(project, "apply", "--auto-approve").exit_code == 0
        notices = [r.getMessage() for r in caplog.records]
        assert notices and all(
            n == "notice: provider lab answered 400 to the metadata filter on job listing; "
                 "listing all jobs and filtering them here (slower)" for n in notices)
        # Correct, not just tolerated: ours is found, the foreign job is neither ours nor pruned.
        prune = ftops(project, "plan", "--json", "--prune")
        assert {a["address"]: a["action"] for a in json.loads(prune.stdout)["actions"]} == {
            "model.on-lab[lab]": "ok"}
        assert foreign.id not in prune.stdout
        lists = [r for r in bare.requests() if r["path"] == "/v1/fine_tuning/jobs"
                 and r["method"] == "GET"]
        assert {r["status"] for r in lists if "metadata" in r["query"]} == {400}
        assert any(r["status"] == 200 and "metadata" not in r["query"] for r in lists)


def test_fallback_notice_is_one_line_on_stderr(tmp_path: Path) -> None:
    with Emulator(job_seconds=0, metadata_filter=False) as bare:
        providers = {"lab": {"base_url": bare.base_url, "api_key_env": "LAB_KEY"}}
        project = write_project(tmp_path / "repo", providers, {"on-lab": MODELS["on-lab"]})
        env = {**os.environ, "LAB_KEY": LAB_KEY}
        done = subprocess.run([str(FTOPS), "plan", "--specs", str(project.specs)], env=env,
                              capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "notice: provider lab answered 400 to the metadata filter on job listing; listing all "
        "jobs and filtering them here (slower)"]


def test_documented_feature_errors_are_real_errors_and_unknown_ones_fall_back(
        lab: Emulator) -> None:
    with sdk_client(lab.base_url) as sdk:
        def missing() -> str:  # an endpoint this server does not have: 404
            sdk.post("/no-such-feature", cast_to=object)
            return "fast"

        probing = Features("lab", CAPABILITIES["compatible"])
        assert probing.attempt("uploads", missing, lambda: "slow") == "slow"
        assert probing.attempt("uploads", missing, lambda: "again") == "again"
        documented = Features("openai", CAPABILITIES["openai"])
        with pytest.raises(openai.NotFoundError):
            documented.attempt("uploads", missing, lambda: "slow")
    assert [r["path"] for r in lab.requests()] == ["/v1/no-such-feature"] * 2  # probed once


# --- lifecycle warnings with a fixed clock ------------------------------------------------------


def test_status_warns_of_shutdown_and_provider_cutoff_with_a_fixed_clock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Emulator(job_seconds=0) as server:
        monkeypatch.setenv("OPENAI_API_KEY", LAB_KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        models = {"bot": {"base": "mini", "training": "train-a", "suffix": "bot"}}
        project = write_project(tmp_path / "repo", {}, models)
        soon = status.run(status.StatusOptions(project.specs, today=dt.date(2026, 12, 1)))
        calm = status.run(status.StatusOptions(project.specs, today=dt.date(2026, 1, 1)))
        late = plan.run(plan.PlanOptions(project.specs, today=dt.date(2027, 1, 10))).plan
    assert [str(w) for w in soon.warnings] == [
        "provider.openai: 1 model on gpt-4o-mini-2024-07-18 stop answering on 2027-01-14 "
        "(in 44 days): bot — see `ftops migrate`"
        "; suggested successors: azure gpt-4o-mini-2024-07-18 (new jobs until 2027-03-31), "
        "nebius meta-llama/Llama-3.1-8B-Instruct, together Qwen/Qwen3-8B, "
        "fireworks accounts/fireworks/models/qwen3-8b",
        "provider.openai: stops accepting new fine-tuning jobs on 2027-01-06 (in 36 days)"]
    assert calm.warnings == ()
    assert late is not None
    assert [(e.code, e.subject) for e in late.errors] == [("provider_closed", "provider.openai")]


def test_status_command_prints_warnings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Emulator(job_seconds=0) as server:
        monkeypatch.setenv("OPENAI_API_KEY", LAB_KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        models = {"bot": {"base": "mini", "training": "train-a"}}
        project = write_project(tmp_path / "repo", {}, models)
        text = ftops(project, "status")
        as_json = json.loads(ftops(project, "status", "--json").stdout)
    # The one clock decides whether a warning is due; both views must agree with the plan's.
    due = clock.today() >= dt.date(2026, 10, 8)  # 90 days before OpenAI's last day
    assert ("! provider.openai: stops accepting" in text.stdout
            or "! provider.openai: stopped accepting" in text.stdout) == due
    assert ("provider_closing" in {w["code"] for w in as_json["warnings"]}) == due


# --- the client factory and the spec ------------------------------------------------------------


def test_client_per_provider_type_takes_its_settings_from_the_spec() -> None:
    env = {"LAB_KEY": LAB_KEY, "AZ_KEY": AZ_KEY}
    plain = Provider("lab", "openai", "http://127.0.0.1:9/v1", None, None, "LAB_KEY", "s.yaml", 3,
                     organization="org-x", project="proj-y")
    client = make_client(plain, env=env)
    assert (client.organization, client.project, client.api_key) == ("org-x", "proj-y", LAB_KEY)
    assert str(client.base_url) == "http://127.0.0.1:9/v1/"
    az = Provider("az", "azure", None, "https://example.openai.azure.com", API_VERSION, "AZ_KEY",
                  "s.yaml", 9)
    azure_client = make_client(az, env=env)
    assert isinstance(azure_client, openai.AzureOpenAI)
    assert str(azure_client.base_url) == "https://example.openai.azure.com/openai/"
    with pytest.raises(FtopsError) as caught:
        make_client(az, env={"LAB_KEY": LAB_KEY})
    assert str(caught.value) == ("s.yaml:9: no API key for provider az: AZ_KEY is not set "
                                 "(export AZ_KEY, or try ftops with --emulator)")


def test_openai_only_settings_on_an_azure_provider_are_errors(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "p.yaml").write_text(
        "providers:\n  az:\n    type: azure\n    endpoint: https://x.openai.azure.com\n"
        "    api_version: v1\n    organization: org-x\n")
    result = CliRunner().invoke(main, ["validate", "--specs", str(specs)])
    assert result.exit_code == 1
    assert ("p.yaml:6: providers.az.organization: not used by providers of type azure"
            in result.output)
