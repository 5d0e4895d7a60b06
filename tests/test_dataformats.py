"""What each open-weight provider takes as datasets (``ftops.dataformats``): the table agrees
with the methods each provider offers and with the spec's formats; a dataset a provider would
refuse is a spec error at file:line, exit 1, before any request; and since no provider needs
another layout than the one a spec declares, a Fireworks DPO job trains on the preference file's
own bytes, uploaded once under their own sha256, and re-plans clean."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ftops import dataformats, methods
from ftops.spec.schema import METHOD_FORMAT
from tests.conftest import make_chat_jsonl, run_cli
from tests.test_engine import Project

pytest.importorskip("fireworks")

FIREWORKS_BASE = "accounts/fireworks/models/qwen3-8b"


def _preferences(count: int, tag: str = "") -> bytes:
    return b"".join(json.dumps(
        {"input": {"messages": [{"role": "user", "content": f"what is {tag}item {i}"}]},
         "preferred_output": [{"role": "assistant", "content": f"item {i} is blue"}],
         "non_preferred_output": [{"role": "assistant", "content": "no idea"}]}
    ).encode() + b"\n" for i in range(count))


PREFERENCES = _preferences(12)


def test_the_table_covers_every_method_each_provider_offers() -> None:
    assert dataformats.METHOD_FORMAT == METHOD_FORMAT
    assert {k: set(m) for k, m in dataformats.ACCEPTED.items()} == {
        k: set(m) for k, m in methods.KEYS.items()}
    for kind, table in dataformats.ACCEPTED.items():
        for method, accepts in table.items():
            assert METHOD_FORMAT[method] in accepts.training, (kind, method)
    assert dataformats.CONVERSIONS == {}  # no provider needs another layout (module docstring)


def test_refusals_name_the_provider_the_method_and_what_it_takes() -> None:
    assert dataformats.refusals("fireworks", "provider fw (fireworks)", "dpo",
                                validation=True) == [
        (("validation",), "provider fw (fireworks) takes no validation dataset for method dpo",
         "unsupported_key")]
    assert dataformats.refusals("together", "tg", "dpo", validation=True) == []
    assert dataformats.refusals("openai", "oai", "dpo", validation=True) == []  # not in table
    assert dataformats.refusals("nebius", "nb", "dpo", validation=False) == []  # method check's


def test_the_readme_shows_the_table() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert dataformats.markdown() in readme


def _project(root: Path, bot: dict[str, Any]) -> Project:
    project = Project(root)
    specs = project.specs
    (specs / "data").mkdir(parents=True, exist_ok=True)
    (specs / "data" / "prefs.jsonl").write_bytes(PREFERENCES)
    (specs / "data" / "held.jsonl").write_bytes(_preferences(10, "held "))
    (specs / "data" / "train.jsonl").write_bytes(make_chat_jsonl(12, tag="t"))
    spec = {"datasets": {"prefs": {"path": "data/prefs.jsonl", "format": "preference"},
                         "held": {"path": "data/held.jsonl", "format": "preference"},
                         "train": {"path": "data/train.jsonl"}},
            "providers": {"fw": {"type": "fireworks", "account": "acme"}},
            "models": {"bot": {"base": FIREWORKS_BASE, "provider": "fw", "method": "dpo",
                               "training": "prefs", **bot}}}
    (specs / "ftops.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    project.commit()
    return project


def test_a_validation_file_fireworks_dpo_takes_none_of_is_refused_at_file_line(
        tmp_path: Path) -> None:
    project = _project(tmp_path / "repo", {"validation": "held"})
    for command in (("validate",), ("plan", "--emulator")):
        result = run_cli(project.specs, *command)
        assert result.exit_code == 1, result.output
        lines = [line for line in result.output.splitlines() if "models.bot" in line]
        where = f"{project.specs / 'ftops.yaml'}:{_line(project, 'validation')}: "
        assert len(lines) == 1 and lines[0].endswith(
            f"{where}models.bot.validation: provider fw (fireworks) takes no validation "
            "dataset for method dpo"), result.output


def _line(project: Project, key: str) -> int:
    text = (project.specs / "ftops.yaml").read_text().splitlines()
    return next(n for n, line in enumerate(text, 1) if line.strip().startswith(f"{key}:"))


def test_fireworks_dpo_trains_on_the_declared_bytes_uploaded_once_and_replans_clean(
        tmp_path: Path) -> None:
    project = _project(tmp_path / "repo", {"hyperparameters": {"beta": 0.2, "n_epochs": 2}})
    sha = hashlib.sha256(PREFERENCES).hexdigest()
    assert run_cli(project.specs, "validate").exit_code == 0
    planned = run_cli(project.specs, "plan", "--emulator", "--json")
    assert planned.exit_code == 0, planned.output
    rows = {a["address"]: a for a in json.loads(planned.stdout)["actions"]}
    assert rows["model.bot[fw]"]["action"] == "train"
    uploads = [a for a in rows.values() if a["action"] == "upload"]
    assert len(uploads) == 1 and sha in json.dumps(uploads[0]), uploads
    applied = run_cli(project.specs, "apply", "--emulator", "--auto-approve", "--wait")
    assert applied.exit_code == 0, applied.output
    assert applied.output.count("uploading ") == 1  # the declared bytes, under their own sha
    assert f"as ftops-{sha}.jsonl" in applied.output, applied.output
    replanned = run_cli(project.specs, "plan", "--emulator", "--json")
    assert {a["address"]: a["action"] for a in json.loads(replanned.stdout)["actions"]} == {
        "model.bot[fw]": "ok"}
    lock = yaml.safe_load((project.root / "ftops.lock").read_text())["models"]["bot"]
    assert lock["status"] == "succeeded", lock
