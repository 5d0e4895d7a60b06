"""Azure OpenAI as it is: the v1 API by default (plain ``openai.OpenAI``), ``trainingType`` sent,
Entra tokens through a real azure-identity credential, Azure's rules checked before anything is
uploaded, and jobs recognised when Azure does not give their metadata back."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from ftops.emulator import Emulator
from tests.conftest import loopback_http_client, run_cli
from tests.test_providers import write_project

AZ_KEY = "az-SECRET-5e6f7a8b9c0d"
BASE = "gpt-4o-mini-2024-07-18"
MODELS = {
    "bot": {"base": "mini", "training": "train-a", "suffix": "bot", "provider": "az"},
    "helper": {"base": "mini", "training": "train-b", "suffix": "helper", "provider": "az",
               "training_type": "developer"},
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "AZURE_OPENAI_API_KEY", "IMDS_ENDPOINT", "IDENTITY_SERVER_THUMBPRINT",
                 "MSI_ENDPOINT", "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZ_KEY", AZ_KEY)


@pytest.fixture
def az() -> Iterator[Emulator]:
    with Emulator(job_seconds=0, flavor="azure") as server:
        yield server


def provider(server: Emulator, **settings: Any) -> dict[str, Any]:
    return {"az": {"type": "azure", "endpoint": server.azure_endpoint, "api_key_env": "AZ_KEY",
                   **settings}}


def plan_json(project: Any) -> dict[str, Any]:
    result = run_cli(project.specs, "plan", "--json")
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def actions(project: Any) -> dict[str, str]:
    return {a["address"]: a["action"] for a in plan_json(project)["actions"]}


def test_v1_api_by_default_with_training_types(tmp_path: Path, az: Emulator) -> None:
    project = write_project(tmp_path / "repo", provider(az), MODELS)
    planned = {a["name"]: a["training"]["training_type"]
               for a in plan_json(project)["actions"] if a["training"]}
    assert planned == {"bot": "globalstandard", "helper": "developer"}
    applied = run_cli(project.specs, "apply", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert "0 uploaded" not in applied.stdout and "2 started" in applied.stdout
    # Every request went to the v1 surface, without an api-version (the v1 surface refuses a
    # job without trainingType, so both were sent).
    paths = [(r["path"], r["query"]) for r in az.requests() if not r["path"].startswith("/_")]
    assert paths and all(p.startswith("/openai/v1/") and "api-version" not in q
                         for p, q in paths), paths
    assert actions(project) == {"model.bot[az]": "ok", "model.helper[az]": "ok"}
    assert AZ_KEY not in applied.output


def test_changing_the_training_type_is_no_retrain(tmp_path: Path, az: Emulator) -> None:
    project = write_project(tmp_path / "repo", provider(az, training_type="standard"), MODELS)
    assert run_cli(project.specs, "apply", "--auto-approve").exit_code == 0
    changed = write_project(tmp_path / "repo", provider(az), {
        **MODELS, "helper": {**MODELS["helper"], "training_type": "globalstandard"}})
    assert actions(changed) == {"model.bot[az]": "ok", "model.helper[az]": "ok"}


def test_entra_tokens_from_a_real_azure_identity_credential(
        tmp_path: Path, az: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("azure.identity")
    monkeypatch.delenv("AZ_KEY")
    for name, value in az.entra_environment().items():
        monkeypatch.setenv(name, value)
    project = write_project(tmp_path / "repo", {"az": {
        "type": "azure", "endpoint": az.azure_endpoint, "auth": "entra"}}, MODELS)
    applied = run_cli(project.specs, "apply", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    bearer = [r for r in az.requests() if r["path"].startswith("/openai/v1/")]
    assert bearer and "2 started" in applied.stdout


def test_entra_without_the_azure_extra_is_one_line(tmp_path: Path, az: Emulator) -> None:
    project = write_project(tmp_path / "repo", {"az": {
        "type": "azure", "endpoint": az.azure_endpoint, "auth": "entra"}}, MODELS)
    # As if azure-identity were not installed: a None entry makes its import fail.
    code = ("import sys; sys.modules['azure.identity'] = None; from ftops.cli import main; "
            f"main(['plan', '--specs', {str(project.specs)!r}])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert any("pip install 'ftops[azure]'" in line for line in lines), done.stderr
    assert "Traceback" not in done.stderr and len(lines) <= 2, done.stderr
    assert az.requests() == []


@pytest.mark.parametrize(("change", "expected"), [
    ({"suffix": "x" * 41}, "suffix: Azure OpenAI takes a suffix of at most 40"),
    ({"suffix": "bad.suffix"}, "suffix: Azure OpenAI takes a suffix of at most 40"),
    ({"base": "gpt-4o-mini"}, "needs a dated model version (did you mean "
                              "'gpt-4o-mini-2024-07-18'?)"),
    ({"base": "gpt-3.5-turbo-0125"}, "Azure OpenAI does not fine-tune it"),
    ({"deploy": {"name": "bot-prod"}}, "deploying needs subscription, resource_group, account"),
])
def test_azure_rules_before_any_request(tmp_path: Path, az: Emulator, change: dict[str, Any],
                                        expected: str) -> None:
    project = write_project(tmp_path / "repo", provider(az),
                            {"bot": {**MODELS["bot"], **change}})
    for command in ("validate", "plan"):
        result = run_cli(project.specs, command)
        assert result.exit_code == 1, result.output
        assert expected in result.output, result.output
        assert "models.yaml:" in result.output
    assert az.requests() == []


def test_training_type_only_on_azure(tmp_path: Path, az: Emulator) -> None:
    project = write_project(tmp_path / "repo", {"lab": {"base_url": az.base_url}}, {
        "bot": {"base": "mini", "training": "train-a", "provider": "lab",
                "training_type": "standard"}})
    result = run_cli(project.specs, "validate")
    assert result.exit_code == 1
    assert "training_type: only for providers of type azure" in result.output


def test_jobs_without_metadata_are_recognised_under_faults(tmp_path: Path) -> None:
    """Azure may not give job metadata back: with the emulator dropping it, repeated applies
    under injected faults leave exactly one job per model, and the plan converges."""
    state = tmp_path / "azure-state.json"
    with Emulator(job_seconds=60, flavor="azure", drop_metadata=True, fault_rate=0.25,
                  seed=7, retry_after=0, state_path=state) as server:
        project = write_project(tmp_path / "repo", provider(server), MODELS)
        codes = []
        for _ in range(10):
            codes.append(run_cli(project.specs, "apply", "--auto-approve").exit_code)
            if codes[-1] == 0:
                break
        assert codes[-1] == 0 and set(codes) <= {0, 1}, codes
        assert sum(1 for r in server.requests() if r["fault"]) >= 3
    with Emulator(job_seconds=60, flavor="azure", drop_metadata=True,
                  state_path=state) as calm:
        project = write_project(tmp_path / "repo", provider(calm), MODELS)
        client = openai.OpenAI(base_url=calm.azure_v1_url, api_key="any", max_retries=0,
                               http_client=loopback_http_client())
        with client:
            jobs = list(client.fine_tuning.jobs.list(limit=100))
            files = list(client.files.list())
        assert all(not j.metadata for j in jobs)
        live = [j for j in jobs if j.status not in ("failed", "cancelled")]
        assert len(live) == 2, [(j.id, j.status, j.training_file) for j in jobs]
        assert len({f.filename for f in files}) == len(files) == 2
        assert actions(project) == {"model.bot[az]": "pending", "model.helper[az]": "pending"}


def test_the_plan_shows_the_training_type(tmp_path: Path, az: Emulator) -> None:
    project = write_project(tmp_path / "repo", provider(az), MODELS)
    shown = run_cli(project.specs, "plan", "-v")
    assert shown.exit_code == 0, shown.output
    assert "training type globalstandard" in shown.output
    assert "training type developer" in shown.output
