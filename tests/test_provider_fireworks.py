"""``FireworksAccount`` (the ``fireworks`` provider type) against the emulator's dialect."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ftops.emulator.server import Emulator
from ftops.errors import RemoteError, StalePlanError
from ftops.identity import dataset_filename, is_dataset_file, repo_tag
from ftops.providers.base import JobRequest
from ftops.recognise import Expected
from tests.conftest import Clock

pytest.importorskip("fireworks")
from ftops.providers.fireworks import FireworksAccount, make_client

ACCOUNT = "acme"
BASE = "accounts/fireworks/models/qwen3-8b"
REPO = "github.com/acme/tuning"


@pytest.fixture
def clock() -> Clock:
    return Clock(1_796_000_000.0)


@pytest.fixture
def emu(clock: Clock) -> Iterator[Emulator]:
    with Emulator(flavor="fireworks", job_seconds=100, clock=clock) as emulator:
        yield emulator


def _account(emu: Emulator, expected: tuple[Expected, ...] = ()) -> FireworksAccount:
    return FireworksAccount(make_client(emu.url, "fw-key", 2, account=ACCOUNT), repo=REPO,
                            provider="fw", account=ACCOUNT, expected=expected)


def _data(tmp_path: Path) -> tuple[Path, str]:
    rows = [json.dumps({"messages": [{"role": "user", "content": f"what is item {i}"},
                                     {"role": "assistant", "content": f"item {i} is blue"}]})
            for i in range(12)]
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(rows) + "\n")
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def _expected(sha: str, **hyper: int) -> Expected:
    return Expected(name="support", fingerprint="fp-1", base=BASE, parent=None, training=sha,
                    validation=None, method="supervised", hyperparameters=hyper, suffix=None,
                    seed=None)


def test_upload_is_idempotent_and_carries_the_sha(emu: Emulator, tmp_path: Path) -> None:
    path, sha = _data(tmp_path)
    account = _account(emu)
    first = account.upload(path, sha)
    assert first.id == f"ftops-{repo_tag(REPO)}-{sha[:40]}"  # the repository's tag, 55 chars
    assert is_dataset_file(first, sha, path.stat().st_size)
    again = account.upload(path, sha)  # the dataset is there: reused, nothing re-sent
    assert again == first
    assert account.files() == (first,)
    posts = [r for r in emu.requests() if r["method"] == "POST"]
    assert len([r for r in posts if r["path"].endswith(":upload")]) == 1
    path.write_text("changed\n")
    with pytest.raises(StalePlanError):
        account.upload(path, sha)


def test_upload_fills_a_dataset_left_uploading(emu: Emulator, tmp_path: Path) -> None:
    path, sha = _data(tmp_path)
    account = _account(emu)
    account.client.datasets.create(dataset={"display_name": f"ftops-{sha[40:]}-"
                                            f"{path.stat().st_size}"},
                                   dataset_id=f"ftops-{repo_tag(REPO)}-{sha[:40]}")
    assert account.files()[0].filename != dataset_filename(sha)  # not READY: not the dataset
    assert is_dataset_file(account.upload(path, sha), sha, path.stat().st_size)


def test_job_created_recognised_and_followed(emu: Emulator, tmp_path: Path,
                                             clock: Clock) -> None:
    path, sha = _data(tmp_path)
    account = _account(emu, (_expected(sha, n_epochs=2, lora_rank=16),))
    dataset = account.upload(path, sha)
    labels = {"ftops_repo": REPO, "ftops_model": "support", "ftops_fingerprint": "fp-1"}
    made = account.create_job(JobRequest(
        model=BASE, training_file=dataset.id, validation_file=None, method="supervised",
        hyperparameters={"n_epochs": 2, "lora_rank": 16, "batch_size": "auto"}, suffix=None,
        seed=None, metadata=labels))
    assert made.metadata == labels and made.live and made.status == "validating_files"
    assert made.hyperparameters["n_epochs"] == 2 and made.hyperparameters["lora_rank"] == 16
    # Read back with no metadata at all: recognised from what the job shows.
    state = account.read()
    assert [j.metadata for j in state.jobs] == [labels]
    assert [j.id for j in account.recent_jobs(int(clock.now))] == [made.id]
    assert account.recent_jobs(int(clock.now) + 10) == ()
    assert _account(emu).jobs() == ()  # nothing expected: nothing is ours
    clock.now += 101
    done = account.job(made.id)
    assert done.status == "succeeded" and done.metadata == labels
    assert done.fine_tuned_model == f"accounts/{ACCOUNT}/models/{made.id}"
    assert [m.id for m in account.models()] == [done.fine_tuned_model]
    events = account.events(made.id)
    assert [e.level for e in events] == ["info", "info"] and "succeeded" in events[-1].message
    reply = account.chat(done.fine_tuned_model, [{"role": "user", "content": "what is item 4"}],
                         seed=1)
    assert reply.text == "item 4 is blue" and reply.prompt_tokens > 0
    assert account.result_files(made.id) == ()
    account.delete_model(done.fine_tuned_model)
    account.delete_model(done.fine_tuned_model)  # already gone: fine
    assert account.models() == ()


def test_cancel_and_delete_twice(emu: Emulator, tmp_path: Path) -> None:
    path, sha = _data(tmp_path)
    account = _account(emu, (_expected(sha),))
    dataset = account.upload(path, sha)
    job = account.create_job(JobRequest(
        model=BASE, training_file=dataset.id, validation_file=None, method="supervised",
        hyperparameters={}, suffix=None, seed=None, metadata={}))
    account.cancel_job(job.id)
    assert account.job(job.id).status == "cancelled"
    account.cancel_job("never-was")  # gone: nothing to do
    with pytest.raises(RemoteError, match=r"^fireworks: 400 9: .*cannot be cancelled"):
        account.cancel_job(job.id)
    account.delete_file(dataset.id)
    account.delete_file(dataset.id)
    assert account.files() == ()


def test_requests_fireworks_cannot_take_are_refused(emu: Emulator, tmp_path: Path) -> None:
    path, sha = _data(tmp_path)
    account = _account(emu)
    dataset = account.upload(path, sha)

    def request(**changes: object) -> JobRequest:
        fields: dict[str, object] = {
            "model": BASE, "training_file": dataset.id, "validation_file": None,
            "method": "supervised", "hyperparameters": {}, "suffix": None, "seed": None,
            "metadata": {}, **changes}
        return JobRequest(**fields)  # type: ignore[arg-type]

    for bad in (request(seed=3), request(method="reinforcement"),
                request(hyperparameters={"learning_rate_multiplier": 2}),
                request(hyperparameters={"lora_rank": 128})):
        with pytest.raises(RemoteError, match=r"^fireworks: "):
            account.create_job(bad)
    with pytest.raises(RemoteError, match=r"^fireworks: 404 5: Model .* not found"):
        account.create_job(request(model="accounts/fireworks/models/nope"))
    assert emu.requests()[-1]["path"].endswith("supervisedFineTuningJobs")
    assert "fw-key" not in str(emu.requests())


def test_faults_retried(tmp_path: Path, clock: Clock) -> None:
    path, sha = _data(tmp_path)
    with Emulator(flavor="fireworks", job_seconds=0, fault_rate=0.4, retry_after=0, seed=5,
                  faults=("429", "500", "503"), clock=clock) as emu:
        account = FireworksAccount(make_client(emu.url, "k", 12, account=ACCOUNT), repo=REPO,
                                   provider="fw", account=ACCOUNT,
                                   expected=(_expected(sha),))
        dataset = account.upload(path, sha)
        account.create_job(JobRequest(
            model=BASE, training_file=dataset.id, validation_file=None, method="supervised",
            hyperparameters={}, suffix=None, seed=None, metadata={}))
        assert len(account.with_retries(12).read().jobs) == 1
        assert emu.stats()["by_fault"]


def _preferences(tmp_path: Path) -> tuple[Path, str]:
    rows = [json.dumps({"input": {"messages": [{"role": "user", "content": f"what is item {i}"}]},
                        "preferred_output": [{"role": "assistant", "content": f"item {i} is blue"}],
                        "non_preferred_output": [{"role": "assistant", "content": "no idea"}]})
            for i in range(12)]
    path = tmp_path / "prefs.jsonl"
    path.write_text("\n".join(rows) + "\n")
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_dpo_job_created_recognised_followed_and_cancelled(emu: Emulator, tmp_path: Path,
                                                           clock: Clock) -> None:
    path, sha = _preferences(tmp_path)
    want = Expected(name="prefer", fingerprint="fp-2", base=BASE, parent=None, training=sha,
                    validation=None, method="dpo", hyperparameters={"beta": 0.2, "n_epochs": 2},
                    suffix=None, seed=None)
    account = _account(emu, (want,))
    dataset = account.upload(path, sha)  # the preference file as it is: nothing converted
    assert is_dataset_file(dataset, sha, path.stat().st_size)
    labels = {"ftops_repo": REPO, "ftops_model": "prefer", "ftops_fingerprint": "fp-2"}
    made = account.create_job(JobRequest(
        model=BASE, training_file=dataset.id, validation_file=None, method="dpo",
        hyperparameters={"n_epochs": 2, "beta": 0.2, "lora_rank": 16, "batch_size": "auto"},
        suffix=None, seed=None, metadata=labels))
    assert made.method == "dpo" and made.metadata == labels
    assert (made.hyperparameters["beta"], made.hyperparameters["lora_rank"]) == (0.2, 16)
    sent = [r for r in emu.requests() if r["path"].endswith("/dpoJobs")]
    assert len(sent) == 1 and sent[0]["method"] == "POST"
    fresh = _account(emu, (want,))  # a new run: knows nothing of the job but what it shows
    assert [(j.id, j.method, j.metadata) for j in fresh.read().jobs] == [
        (made.id, "dpo", labels)]
    assert fresh.job(made.id).status == "validating_files"
    other = _account(emu, (want,))  # never listed: found in the DPO collection all the same
    other.cancel_job(made.id)
    assert other.job(made.id).status == "cancelled"
    with pytest.raises(RemoteError, match=r"^fireworks: DPO jobs take no validation dataset"):
        account.create_job(JobRequest(
            model=BASE, training_file=dataset.id, validation_file=dataset.id, method="dpo",
            hyperparameters={}, suffix=None, seed=None, metadata={}))
