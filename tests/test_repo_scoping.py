"""Issue "Open-weight fine-tuning providers", item 2, scoped to the repository: where jobs keep
no metadata (Nebius, Together, Fireworks; Azure when it drops it), two repositories with the same
data and spec on one account each train their own model, each plans clean after its own apply,
and neither's ``--prune`` touches the other's jobs or datasets."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from ftops.emulator import Emulator
from ftops.identity import (
    dataset_filename,
    repo_tag,
    scoped_filename,
    sha256_from_filename,
    tagged_filename,
    tagged_sha256,
)
from ftops.providers.base import JobRequest
from ftops.providers.together import TogetherAccount, TogetherError, make_client
from tests.conftest import run_cli
from tests.test_open_weight import BASES, write
from tests.test_open_weight_faults import account_state, spec_provider

pytest.importorskip("together")
pytest.importorskip("fireworks")

TYPES = ("nebius", "together", "fireworks", "azure")


def entry(kind: str, server: Emulator) -> dict[str, Any]:
    if kind == "azure":
        return {"type": "azure", "endpoint": server.azure_endpoint, "api_key_env": "OW_KEY"}
    return spec_provider(kind, server)


def models(kind: str, training: str = "train") -> dict[str, Any]:
    return {"bot": {"base": BASES[kind], "training": training, "provider": "ow",
                    "suffix": "bot", "hyperparameters": {"n_epochs": 2}}}


def planned(project: Any) -> dict[str, str]:
    result = run_cli(project.specs, "plan", "--json")
    assert result.exit_code == 0, result.output
    return {a["address"]: a["action"] for a in json.loads(result.stdout)["actions"]}


def retrain_on_held(project: Any, kind: str) -> None:
    """The repository's model moved to other data: its job and dataset are no longer needed."""
    path = project.specs / "ftops.yaml"
    spec = yaml.safe_load(path.read_text())
    spec["models"] = models(kind, "held")
    path.write_text(yaml.safe_dump(spec, sort_keys=True))
    project.commit("train on held")


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OW_KEY", "ow-key")


@pytest.mark.parametrize("kind", TYPES)
def test_two_repositories_on_one_account_keep_to_their_own(tmp_path: Path, kind: str) -> None:
    with Emulator(flavor=kind, job_seconds=3600, retry_after=0,
                  drop_metadata=kind == "azure") as server:
        a, b = (write(tmp_path / name, models(kind), {"ow": entry(kind, server)})
                for name in ("a", "b"))
        for project in (a, b):
            result = run_cli(project.specs, "apply", "--auto-approve")
            assert result.exit_code == 0, result.output
            assert "1 started" in result.output, result.output
        for project in (a, b):
            assert planned(project) == {"model.bot[ow]": "pending"}
        ids = {}
        for project in (a, b):
            files, jobs = account_state(project)
            assert [j.metadata["ftops_model"] for j in jobs if j.live] == ["bot"]
            ids[project.root.name] = {j.id for j in jobs}
        assert not ids["a"] & ids["b"], ids
        a_files = {f.id for f in account_state(a)[0] if sha256_from_filename(f.filename)}
        assert a_files

        retrain_on_held(b, kind)
        result = run_cli(b.specs, "apply", "--auto-approve", "--prune")
        assert result.exit_code == 0, result.output
        assert planned(a) == {"model.bot[ow]": "pending"}  # a's job and dataset are all there
        files, jobs = account_state(a)
        assert {j.id for j in jobs if j.live} == ids["a"]
        assert a_files <= {f.id for f in files}
        assert planned(b) == {"model.bot[ow]": "pending"}


def test_a_together_suffix_leaves_room_for_the_tag() -> None:
    account = TogetherAccount(make_client("http://127.0.0.1:9", "key"), repo="github.com/a/b")
    request = JobRequest(model=BASES["together"], training_file="file-1", validation_file=None,
                         method="supervised", hyperparameters={}, suffix="s" * 31, seed=None,
                         metadata={})
    assert account._arguments(request)["suffix"] == f"{'s' * 31}-{account.tag}"
    with pytest.raises(TogetherError, match=r"too long: .* so at most 31"):
        account._arguments(replace(request, suffix="s" * 32))


def test_names_carry_the_repository_tag() -> None:
    sha, tag = "a" * 64, repo_tag("github.com/acme/tuning")
    other = repo_tag("github.com/acme/other")
    assert len(tag) == 8 and tag != other
    assert tagged_filename(sha, tag) == f"ftops-{tag}-{sha}.jsonl"
    assert scoped_filename(tagged_filename(sha, tag), tag) == dataset_filename(sha)
    assert scoped_filename(tagged_filename(sha, other), tag) is None  # another repository's
    assert scoped_filename(dataset_filename(sha), tag) is None  # named before the tag
    assert scoped_filename(dataset_filename(sha), tag, untagged=True) == dataset_filename(sha)
    assert scoped_filename("notes.jsonl", tag) == "notes.jsonl"
    assert tagged_sha256(tagged_filename(sha, other)) == (other, sha)
