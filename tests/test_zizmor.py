"""The example workflows and action.yml are safe to copy: zizmor (offline, as the regular and the
auditor persona) finds nothing of medium or high severity, and the rules behind that are checked
here one by one, so a change that breaks one says which: every action pinned by full commit SHA
with its version as a comment, checkout without persisted credentials, no permission at the
workflow level and minimal ones per job, a timeout on every job, concurrency on apply and drift,
secrets only in jobs that name an environment. ``ftops init``'s copies pass too."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ftops.commands import init

ROOT = Path(__file__).resolve().parents[1]
ACTION = ROOT / "action.yml"
WORKFLOWS = sorted((ROOT / "examples" / "workflows").glob("*.yml"))  # what `ftops init` copies
AZURE_APPLY = ROOT / "examples" / "azure" / "workflows" / "ftops-azure-apply.yml"
EXAMPLES = [*WORKFLOWS, AZURE_APPLY]
# The commit each tag points at, read from the actions' own repositories
# (`git rev-parse <tag>^{commit}` in clones of github.com/actions/checkout, setup-python and
# upload-artifact, and github.com/Azure/login's v3.0.1, its latest release as of 2026-08).
# Bump them together with the comment in the workflows.
PINS = {
    "actions/checkout": ("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "actions/setup-python": ("5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
    "actions/upload-artifact": ("bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "v7.0.0"),
    "azure/login": ("f5d393ae46f8fde4be8b75f32e3fc50e654ad0ca", "v3.0.1"),
}
# The one exemption: the ftops action itself, whose commit only the user can choose (`ftops init`
# pins it when it knows where ftops came from; see test_init_output_needs_no_exemption).
PLACEHOLDER = "uses: OWNER/ftops@v0 # zizmor: ignore[unpinned-uses]"
SEVERE = {"Medium", "High"}


def zizmor(*args: str | Path) -> list[dict[str, Any]]:
    """zizmor's findings as JSON; offline (no GitHub API), no configuration file."""
    exe = shutil.which("zizmor", path=str(Path(sys.executable).parent)) or shutil.which("zizmor")
    if exe is None:
        pytest.fail("zizmor is not installed: pip install -e '.[dev]'")
    env = {k: v for k, v in os.environ.items() if k not in ("GH_TOKEN", "GITHUB_TOKEN")}
    done = subprocess.run([exe, "--offline", "--no-config", "--format", "json",
                           "--no-exit-codes", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    findings = json.loads(done.stdout)
    assert isinstance(findings, list)
    return findings


def summary(findings: list[dict[str, Any]]) -> list[str]:
    return [f"{f['ident']} ({f['determinations']['severity']}): "
            f"{f['locations'][0]['symbolic']['key']} {f['desc']}" for f in findings]


@pytest.mark.parametrize("persona", ["regular", "auditor"])
def test_zizmor_finds_nothing_of_medium_or_high_severity(persona: str) -> None:
    findings = zizmor("--persona", persona, ACTION, *EXAMPLES)
    severe = [f for f in findings if f["determinations"]["severity"] in SEVERE]
    assert severe == [], summary(severe)


def test_the_only_exemption_is_the_ftops_placeholder() -> None:
    for path in (ACTION, *EXAMPLES):
        for line in path.read_text().splitlines():
            if "zizmor:" in line:
                assert line.strip().startswith(PLACEHOLDER), (path.name, line)
    findings = zizmor("--persona", "auditor", "--no-ignores", ACTION, *EXAMPLES)
    assert {f["ident"] for f in findings} == {"unpinned-uses"}
    assert len(findings) == len(EXAMPLES)  # one placeholder step each


def test_init_output_needs_no_exemption(tmp_path: Path) -> None:
    source = init.ActionSource("acme/ftops", "0123456789abcdef0123456789abcdef01234567", "v0.1.0")
    init.run(init.InitOptions(directory=tmp_path, action=source))
    written = sorted((tmp_path / ".github" / "workflows").glob("*.yml"))
    assert len(written) == len(WORKFLOWS)
    findings = zizmor("--persona", "auditor", "--no-ignores", *written)
    severe = [f for f in findings if f["determinations"]["severity"] in SEVERE]
    assert severe == [], summary(severe)


# --- the rules, one by one -----------------------------------------------------------------


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def jobs(path: Path) -> dict[str, dict[str, Any]]:
    found = load(path)["jobs"]
    assert isinstance(found, dict)
    return found


@pytest.mark.parametrize("path", [ACTION, *EXAMPLES], ids=lambda p: p.name)
def test_every_action_is_pinned_to_the_commit_of_its_tag(path: Path) -> None:
    for line in path.read_text().splitlines():
        found = re.match(r"\s*(?:- )?uses: ([\w.-]+/[\w.-]+)@(\S+)(?: # (\S+))?", line)
        if found is None or line.strip().startswith(PLACEHOLDER):
            continue
        name, ref, version = found.groups()
        assert (ref, version) == PINS[name], line


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_jobs_ask_for_what_they_need_and_no_more(path: Path) -> None:
    workflow = load(path)
    assert workflow["permissions"] == {}
    for name, job in jobs(path).items():
        assert "permissions" in job, name
        assert isinstance(job.get("timeout-minutes"), int), name
        assert "write-all" not in str(job["permissions"]), name
        for step in job["steps"]:
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, name
        if "secrets." in json.dumps(job):
            assert job.get("environment"), f"{name} reads a secret without an environment"


def test_only_apply_may_write_and_apply_and_drift_never_overlap() -> None:
    by_name = {path.name: path for path in EXAMPLES}
    for name, path in by_name.items():
        for job in jobs(path).values():
            writes = {k for k, v in job["permissions"].items() if v == "write"}
            if name == "ftops-apply.yml":
                assert writes == {"contents", "pull-requests"}
            elif name == "ftops-azure-apply.yml":  # and the OIDC token for azure/login
                assert writes == {"contents", "pull-requests", "id-token"}
            elif name == "ftops-plan.yml":
                assert writes == {"pull-requests", "checks"}  # the plan comment, the check run
            else:
                assert writes == set()
    for name in ("ftops-apply.yml", "ftops-azure-apply.yml", "ftops-drift.yml"):
        assert load(by_name[name])["concurrency"]["group"], name
    for name in ("ftops-apply.yml", "ftops-azure-apply.yml"):
        assert load(by_name[name])["concurrency"]["cancel-in-progress"] is False, name


@pytest.mark.skipif(shutil.which("actionlint") is None, reason="actionlint not installed")
def test_actionlint_is_clean() -> None:
    done = subprocess.run(["actionlint", *map(str, EXAMPLES)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
