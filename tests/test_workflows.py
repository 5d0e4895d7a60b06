"""action.yml and the example workflows: structure, injection safety, and the flags the action's
script builds (run for real with bash, with a stand-in ``ftops`` that records its arguments)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ACTION = ROOT / "action.yml"
WORKFLOWS = ROOT / "examples" / "workflows"
# Not among the examples `ftops init` copies (they are examples/workflows/*.yml): an alternative
# to ftops-apply.yml for Azure OpenAI specs signed in with Entra ID.
AZURE_APPLY = ROOT / "examples" / "azure" / "workflows" / "ftops-azure-apply.yml"
BASH = shutil.which("bash")
needs_bash = pytest.mark.skipif(BASH is None, reason="bash not installed")


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert isinstance(on, dict)
    return on


def steps(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if "runs" in document:
        yield from document["runs"]["steps"]
    for job in document.get("jobs", {}).values():
        yield from job["steps"]


def workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


def every_workflow() -> list[Path]:
    return [*workflow_files(), AZURE_APPLY]


def by_trigger(name: str) -> dict[str, Any]:
    [workflow] = [w for w in map(load, workflow_files()) if name in triggers(w)]
    return workflow


def ftops_step(workflow: dict[str, Any]) -> dict[str, Any]:
    [step] = [s for s in steps(workflow) if "ftops" in str(s.get("uses", ""))]
    return step


# --- action.yml ----------------------------------------------------------------------------


def test_action_declares_inputs_and_outputs() -> None:
    action = load(ACTION)
    assert action["runs"]["using"] == "composite"
    inputs = action["inputs"]
    for name in (
        "command",
        "specs",
        "openai-api-key",
        "github-token",
        "working-directory",
        "wait",
        "prune",
        "comment",
        "python-version",
    ):
        assert name in inputs, name
    assert inputs["command"]["default"] == "plan"
    assert inputs["comment"]["default"] == "auto"
    assert inputs["github-token"]["default"] == "${{ github.token }}"
    outputs = action["outputs"]
    for name in ("has-changes", "plan-json", "models", "estimated-cost"):
        assert outputs[name]["value"] == f"${{{{ steps.ftops.outputs.{name} }}}}"


def test_action_installs_itself_with_setup_python() -> None:
    setup, install, run = load(ACTION)["runs"]["steps"]
    assert setup["uses"].startswith("actions/setup-python@")
    assert setup["with"]["python-version"] == "${{ inputs.python-version }}"
    assert install["env"]["FTOPS_ACTION_PATH"] == "${{ github.action_path }}"
    assert install["env"]["FTOPS_EXTRAS"] == "${{ inputs.extras }}"
    assert run["id"] == "ftops"
    assert run["env"]["OPENAI_API_KEY"] == "${{ inputs.openai-api-key }}"
    assert run["env"]["GITHUB_TOKEN"] == "${{ inputs.github-token }}"


def test_every_input_reaches_the_script_through_env_only() -> None:
    action = load(ACTION)
    used = set()
    for step in action["runs"]["steps"]:
        if "run" in step:
            assert step["shell"] == "bash"
            assert "${{" not in step["run"], step["run"]
        for value in {**step.get("env", {}), **step.get("with", {})}.values():
            used.update(re.findall(r"\$\{\{ inputs\.([\w-]+) \}\}", str(value)))
    assert used == set(action["inputs"])


@pytest.mark.parametrize("path", [ACTION, *every_workflow()], ids=lambda p: p.name)
def test_no_expression_inside_run_scripts(path: Path) -> None:
    for step in steps(load(path)):
        if "run" in step:
            assert "${{ inputs." not in step["run"] and "${{ secrets." not in step["run"]
            assert "${{" not in step["run"]


@needs_bash
@pytest.mark.parametrize("path", [ACTION, *every_workflow()], ids=lambda p: p.name)
def test_run_scripts_are_valid_bash(path: Path) -> None:
    for step in steps(load(path)):
        if "run" in step:
            subprocess.run([BASH or "bash", "-n", "-c", step["run"]], check=True)


# --- the action's script, executed ---------------------------------------------------------


def run_action(tmp_path: Path, event: str = "pull_request", **inputs: str) -> tuple[int, str, str]:
    """Run the action's main script as the runner would; return exit code, ftops argv, stdout."""
    action = load(ACTION)
    step = action["runs"]["steps"][-1]
    values = {name: spec.get("default", "") for name, spec in action["inputs"].items()}
    values["github-token"] = "ghs_token"
    values.update({k.replace("_", "-"): v for k, v in inputs.items()})
    env = {
        name: re.sub(r"\$\{\{ inputs\.([\w-]+) \}\}", lambda m: values[m.group(1)], value)
        for name, value in step["env"].items()
    }
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    record = tmp_path / "argv.txt"
    fake = bin_dir / "ftops"
    fake.write_text(
        "#!/usr/bin/env bash\n"
        f'printf "%s\\n" "$PWD" "${{OPENAI_API_KEY-<unset>}}" "$@" > "{record}"\n'
        'exit "${FAKE_EXIT:-0}"\n'
    )
    fake.chmod(0o755)
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        GITHUB_EVENT_NAME=event,
        RUNNER_TEMP="/runner/tmp",
        FAKE_EXIT=inputs.get("fake_exit", "0"),
    )
    (tmp_path / "work").mkdir(exist_ok=True)
    done = subprocess.run(
        [BASH or "bash", "-c", step["run"]],
        cwd=tmp_path / "work",
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    argv = record.read_text() if record.exists() else ""
    record.unlink(missing_ok=True)
    return done.returncode, argv, done.stdout


@needs_bash
def test_plan_on_a_pull_request_comments(tmp_path: Path) -> None:
    code, argv, _ = run_action(tmp_path, openai_api_key="sk-x")
    assert code == 0
    assert argv.split("\n")[1:-1] == [
        "sk-x",
        "plan",
        "--specs",
        "specs",
        "--out",
        "/runner/tmp/ftops-plan.json",
        "--comment",
        "--check",
    ]


@needs_bash
def test_plan_on_push_does_not_comment_and_drift_uses_exit_code(tmp_path: Path) -> None:
    code, argv, _ = run_action(tmp_path, event="schedule", detailed_exitcode="true", fake_exit="2")
    assert code == 2  # drift fails the step
    assert argv.split("\n")[2:-1] == [
        "plan",
        "--specs",
        "specs",
        "--out",
        "/runner/tmp/ftops-plan.json",
        "--detailed-exitcode",
    ]


@needs_bash
def test_apply_flags(tmp_path: Path) -> None:
    code, argv, _ = run_action(
        tmp_path, event="push", command="apply", wait="true", prune="true", specs="team a/specs"
    )
    assert code == 0
    assert argv.split("\n")[2:-1] == [
        "apply",
        "--specs",
        "team a/specs",
        "--auto-approve",
        "--wait",
        "--prune",
        "--commit-lock",
    ]
    _, argv, _ = run_action(
        tmp_path, event="push", command="apply", commit_lock="false", allow_plan_changed="true"
    )
    assert argv.split("\n")[2:-1] == [
        "apply",
        "--specs",
        "specs",
        "--auto-approve",
        "--allow-plan-changed",
    ]


@needs_bash
def test_validate_in_a_working_directory_without_key(tmp_path: Path) -> None:
    (tmp_path / "work" / "sub dir").mkdir(parents=True)
    code, argv, _ = run_action(tmp_path, command="validate", working_directory="sub dir")
    assert code == 0
    cwd, key, *rest = argv.split("\n")[:-1]
    assert cwd == str(tmp_path / "work" / "sub dir")
    assert key == "<unset>"  # an empty secret (fork) is no key at all
    assert rest == ["validate", "--specs", "specs"]


@needs_bash
@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"command": "destroy; rm -rf /"}, "the 'command' input must be validate, plan or apply"),
        ({"wait": "yes"}, "the 'wait' input must be true or false"),
        ({"comment": "$(touch pwned)"}, "the 'comment' input must be true or false"),
    ],
)
def test_bad_inputs_fail_without_running_ftops(
    tmp_path: Path, inputs: dict[str, str], message: str
) -> None:
    code, argv, stdout = run_action(tmp_path, **inputs)
    assert code == 1 and argv == ""
    assert stdout == f"::error title=ftops::{message}\n"
    assert not (tmp_path / "work" / "pwned").exists()


# --- example workflows ---------------------------------------------------------------------


def test_examples_exist_and_use_the_action() -> None:
    files = workflow_files()
    assert [f.name for f in files] == ["ftops-apply.yml", "ftops-drift.yml", "ftops-plan.yml"]
    inputs = set(load(ACTION)["inputs"])
    for path in files:
        step = ftops_step(load(path))
        assert re.fullmatch(r"\./|OWNER/ftops@v0", step["uses"]), step["uses"]
        assert set(step["with"]) <= inputs
        assert step["with"]["openai-api-key"] == "${{ secrets.OPENAI_API_KEY }}"


def test_examples_are_valid_github_workflows() -> None:
    # SchemaStore's workflow schema, vendored in schema/ (Apache-2.0, see LICENSE.schemastore).
    schema = json.loads((ROOT / "schema" / "github-workflow.schema.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    for path in every_workflow():
        workflow = load(path)
        workflow["on"] = triggers(workflow)
        workflow.pop(True, None)  # YAML 1.1 reads the bare `on` key as True
        assert list(validator.iter_errors(workflow)) == [], path
    assert list(validator.iter_errors({"on": "push", "jobs": {"x": {"runs-on": 3}}}))


def only_job(workflow: dict[str, Any]) -> dict[str, Any]:
    [job] = workflow["jobs"].values()
    assert isinstance(job, dict)
    return job


def test_pull_request_plan_workflow() -> None:
    workflow = by_trigger("pull_request")
    assert workflow["permissions"] == {}
    assert only_job(workflow)["permissions"] == {"contents": "read", "pull-requests": "write",
                                                 "checks": "write"}
    assert ftops_step(workflow)["with"]["command"] == "plan"
    checkout = next(s for s in steps(workflow) if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0


def test_apply_on_merge_workflow() -> None:
    workflow = by_trigger("push")
    assert triggers(workflow)["push"]["branches"] == ["main"]
    assert workflow["permissions"] == {}
    assert only_job(workflow)["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert only_job(workflow)["environment"] == "ftops-apply"
    concurrency = workflow["concurrency"]
    assert concurrency["group"] and concurrency["cancel-in-progress"] is False
    step = ftops_step(workflow)
    assert step["with"]["command"] == "apply"
    assert step["with"]["wait"] is True and step["with"]["commit-lock"] is True
    assert any("git push" in s.get("run", "") for s in steps(workflow))


def test_nightly_drift_workflow() -> None:
    workflow = by_trigger("schedule")
    [schedule] = triggers(workflow)["schedule"]
    assert len(schedule["cron"].split()) == 5
    step = ftops_step(workflow)
    assert step["with"]["command"] == "plan"
    assert step["with"]["detailed-exitcode"] is True and step["with"]["comment"] is False
    assert workflow["permissions"] == {}
    assert only_job(workflow)["permissions"] == {"contents": "read"}
    assert workflow["concurrency"]["group"] == "ftops-drift"


def test_azure_apply_on_merge_signs_in_with_oidc_and_stores_no_key() -> None:
    workflow = load(AZURE_APPLY)
    assert triggers(workflow)["push"] == {"branches": ["main"], "paths-ignore": ["ftops.lock"]}
    assert workflow["permissions"] == {}
    assert workflow["concurrency"] == {"group": "ftops-apply", "cancel-in-progress": False}
    job = only_job(workflow)
    assert job["environment"] == "ftops-apply"  # the federated credential's subject
    assert job["permissions"] == {"contents": "write", "pull-requests": "write",
                                  "id-token": "write"}
    assert isinstance(job["timeout-minutes"], int)
    names = [str(s.get("uses", "")).split("@")[0] for s in steps(workflow)]
    assert names[:3] == ["actions/checkout", "azure/login", "OWNER/ftops"]  # sign in, then apply
    login = next(s for s in steps(workflow) if s.get("uses", "").startswith("azure/login@"))
    assert login["with"] == {name: f"${{{{ vars.AZURE_{name.split('-')[0].upper()}_ID }}}}"
                             for name in ("client-id", "tenant-id", "subscription-id")}
    step = ftops_step(workflow)
    assert set(step["with"]) <= set(load(ACTION)["inputs"])
    assert step["with"]["command"] == "apply"
    assert step["with"]["extras"] == "azure"  # azure-identity and the deployments client
    assert step["with"]["wait"] is True and step["with"]["commit-lock"] is True
    assert step["env"] == {"AZURE_TOKEN_CREDENTIALS": "AzureCliCredential"}
    assert "secrets." not in AZURE_APPLY.read_text()  # no key, no client secret
    assert any("git push" in s.get("run", "") for s in steps(workflow))


def run_install(tmp_path: Path, extras: str) -> tuple[int, str, str]:
    """Run the action's install step with a stand-in ``python``; (exit code, argv, stdout)."""
    install = load(ACTION)["runs"]["steps"][1]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    record = tmp_path / "pip.txt"
    fake = bin_dir / "python"
    fake.write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "{record}"\n')
    fake.chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "FTOPS_ACTION_PATH": "/runner/_actions/OWNER/ftops/v0", "FTOPS_EXTRAS": extras}
    done = subprocess.run([BASH or "bash", "-c", install["run"]], env=env, capture_output=True,
                          text=True, check=False)
    argv = record.read_text() if record.exists() else ""
    record.unlink(missing_ok=True)
    return done.returncode, argv, done.stdout


@needs_bash
def test_install_adds_the_extras_input(tmp_path: Path) -> None:
    assert load(ACTION)["inputs"]["extras"]["default"] == ""
    code, argv, _ = run_install(tmp_path, "")
    assert code == 0 and argv.splitlines()[-1] == "/runner/_actions/OWNER/ftops/v0"
    code, argv, _ = run_install(tmp_path, "azure")
    assert code == 0 and argv.splitlines()[-1] == "/runner/_actions/OWNER/ftops/v0[azure]"
    code, argv, stdout = run_install(tmp_path, "azure]; touch pwned")
    assert code == 1 and argv == ""
    assert stdout.startswith("::error title=ftops::the 'extras' input must be")
