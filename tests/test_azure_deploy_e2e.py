"""Issue "Azure OpenAI as it really is", done when: a spec with ``type: azure``, ``training_type``
and ``deploy`` runs validate -> plan -> ``apply --wait`` on the emulator: trains, deploys, writes
the lock, evals through the deployment, re-plans clean; a second apply under faults changes
nothing; ``--prune`` removes an undeclared deployment. Real SDKs all the way: openai.OpenAI on
the v1 API, CognitiveServicesManagementClient with a real azure-identity credential."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ftops.emulator import Emulator
from tests.conftest import make_chat_jsonl, run_cli
from tests.test_engine import Project

pytest.importorskip("azure.mgmt.cognitiveservices")
pytest.importorskip("azure.identity")

AZ_KEY = "az-SECRET-77aa88bb99cc"
SUB, GROUP, ACCOUNT = "0000-sub", "rg-ml", "acct-ml"


@pytest.fixture(autouse=True)
def entra_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "AZURE_OPENAI_API_KEY", "IMDS_ENDPOINT", "IDENTITY_SERVER_THUMBPRINT",
                 "MSI_ENDPOINT", "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET",
                 "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZ_KEY", AZ_KEY)


def _entra(server: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """DefaultAzureCredential finds the emulator's managed identity endpoint."""
    for name, value in server.entra_environment().items():
        monkeypatch.setenv(name, value)


def write(root: Path, server: Emulator, *, deploy: dict[str, Any] | None = None) -> Project:
    project = Project(root)
    specs = project.specs
    (specs / "data").mkdir(parents=True, exist_ok=True)
    (specs / "data" / "train.jsonl").write_bytes(make_chat_jsonl(12, tag="t"))
    (specs / "data" / "eval.jsonl").write_bytes(make_chat_jsonl(10, tag="e"))
    spec = {
        "datasets": {"train": {"path": "data/train.jsonl"}, "held": {"path": "data/eval.jsonl"}},
        "providers": {"az": {"type": "azure", "endpoint": server.azure_endpoint,
                             "api_key_env": "AZ_KEY", "training_type": "standard",
                             "subscription": SUB, "resource_group": GROUP, "account": ACCOUNT,
                             "management_url": server.management_url}},
        "evals": {"held-out": {"dataset": "held", "checks": ["exact_match"],
                               "compare_with": "none", "min_score": 0}},
        "models": {"bot": {"base": "gpt-4.1-mini-2025-04-14", "training": "train",
                           "suffix": "bot", "provider": "az", "training_type": "developer",
                           "eval": "held-out", "promote": "support",
                           "deploy": deploy or {"name": "bot-prod", "sku": "standard",
                                                "capacity": 2}}},
    }
    (specs / "ftops.yaml").write_text(yaml.safe_dump(spec, sort_keys=True))
    project.commit()
    return project


def plan(project: Project, *args: str) -> dict[str, Any]:
    result = run_cli(project.specs, "plan", "--json", *args)
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def actions(project: Project, *args: str) -> dict[str, str]:
    return {a["address"]: a["action"] for a in plan(project, *args)["actions"]}


def mutations(server: Emulator) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in server.requests()
            if r["method"] in ("POST", "PUT", "DELETE") and r["status"] and r["status"] < 300]


@pytest.fixture
def az(tmp_path: Path) -> Iterator[Emulator]:
    with Emulator(job_seconds=0, flavor="azure", state_path=tmp_path / "az.json") as server:
        yield server


def test_train_deploy_lock_eval_replan(tmp_path: Path, az: Emulator,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _entra(az, monkeypatch)
    project = write(tmp_path / "repo", az)
    assert run_cli(project.specs, "validate").exit_code == 0
    before = plan(project)
    rows = {a["address"]: a for a in before["actions"]}
    assert rows["deployment.bot-prod[az]"]["action"] == "deploy"
    assert rows["deployment.bot-prod[az]"]["depends_on"] == ["model.bot[az]"]
    assert rows["model.bot[az]"]["training"]["training_type"] == "developer"
    shown = run_cli(project.specs, "plan")
    assert "deployment.bot-prod[az]" in shown.output and "after model.bot[az] succeeds" in \
        shown.output

    applied = run_cli(project.specs, "apply", "--auto-approve", "--wait")
    assert applied.exit_code == 0, applied.output
    assert "deploy deployment.bot-prod[az]: serves gpt-4.1-mini-2025-04-14.ft-" in applied.output
    lock = yaml.safe_load((project.root / "ftops.lock").read_text())["models"]["bot"]
    assert lock["deployment"]["name"] == "bot-prod"
    assert lock["deployment"]["model_id"] == lock["fine_tuned_model"]
    assert lock["deployment"]["sku"] == "standard"
    # The promoted alias names what applications call on Azure: the deployment.
    alias = yaml.safe_load((project.root / "ftops.lock").read_text())["aliases"]["support"]
    assert alias["deployment"] == "bot-prod" and alias["model_id"] == lock["fine_tuned_model"]
    # The eval after --wait called the model through its deployment, on the v1 API.
    chats = [r for r in az.requests() if r["path"] == "/openai/v1/chat/completions"]
    assert chats and all(r["status"] == 200 for r in chats)
    assert actions(project) == {"model.bot[az]": "ok", "deployment.bot-prod[az]": "ok"}
    assert AZ_KEY not in applied.output


def test_a_second_apply_under_faults_changes_nothing(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "az.json"
    with Emulator(job_seconds=0, flavor="azure", state_path=state) as calm:
        _entra(calm, monkeypatch)
        project = write(tmp_path / "repo", calm)
        assert run_cli(project.specs, "apply", "--auto-approve", "--wait").exit_code == 0
    with Emulator(job_seconds=0, flavor="azure", state_path=state, fault_rate=0.25, seed=3,
                  retry_after=0) as rough:
        _entra(rough, monkeypatch)
        project = write(tmp_path / "repo", rough)
        codes = [run_cli(project.specs, "apply", "--auto-approve", "--wait").exit_code
                 for _ in range(3)]
        assert 0 in codes and set(codes) <= {0, 1}, codes  # one went through all the reads
        assert sum(1 for r in rough.requests() if r["fault"]) >= 1
        assert mutations(rough) == []


def test_redeploy_when_the_model_is_retrained_and_prune_removes_a_stray(
        tmp_path: Path, az: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    _entra(az, monkeypatch)
    project = write(tmp_path / "repo", az)
    assert run_cli(project.specs, "apply", "--auto-approve", "--wait").exit_code == 0
    # Renamed: the old name serves a model of this project that no spec deploys there now.
    renamed = write(tmp_path / "repo", az, deploy={"name": "bot-v2", "sku": "standard",
                                                   "capacity": 2})
    planned = plan(renamed)
    assert [a["address"] for a in planned["actions"]][-1] == "deployment.bot-v2[az]"
    assert any(w["code"] == "undeclared" and "1 deployment" in w["message"]
               for w in planned["warnings"])
    pruning = [a["address"] for a in plan(renamed, "--prune")["actions"]]
    assert pruning[0] == "deployment.bot-prod[az]"  # deletions of deployments come first
    applied = run_cli(renamed.specs, "apply", "--auto-approve", "--prune")
    assert applied.exit_code == 0, applied.output
    assert actions(renamed, "--prune") == {"model.bot[az]": "ok", "deployment.bot-v2[az]": "ok"}
    # A new capacity is a redeploy of the same name, in place.
    bigger = write(tmp_path / "repo", az, deploy={"name": "bot-v2", "sku": "standard",
                                                  "capacity": 5})
    assert actions(bigger)["deployment.bot-v2[az]"] == "redeploy"
    assert run_cli(bigger.specs, "apply", "--auto-approve").exit_code == 0
    assert actions(bigger)["deployment.bot-v2[az]"] == "ok"


def test_the_embedded_emulator_deploys_with_no_key_or_login(tmp_path: Path) -> None:
    with Emulator(job_seconds=0, flavor="azure") as unused:  # only for the spec's URLs
        project = write(tmp_path / "repo", unused)
    applied = run_cli(project.specs, "apply", "--emulator", "--auto-approve", "--wait")
    assert applied.exit_code == 0, applied.output
    assert "deploy deployment.bot-prod[az]" in applied.output
    assert actions_emulated(project) == {"model.bot[az]": "ok", "deployment.bot-prod[az]": "ok"}


def actions_emulated(project: Project) -> dict[str, str]:
    result = run_cli(project.specs, "plan", "--emulator", "--json")
    assert result.exit_code == 0, result.output
    return {a["address"]: a["action"] for a in json.loads(result.stdout)["actions"]}
