"""``ftops.providers.nebius.Account`` against the emulator's Nebius dialect (the real SDK)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_chat_jsonl

from ftops.emulator import Emulator
from ftops.errors import FtopsError, RemoteError
from ftops.identity import dataset_filename
from ftops.providers.base import JobRequest
from ftops.providers.nebius import Account, make_client, wire_hyperparameters
from ftops.recognise import Expected
from ftops.state import Job
from tests.conftest import Clock

BASE = "meta-llama/Llama-3.1-8B-Instruct"
REPO = "acme/models"


@pytest.fixture
def clock() -> Clock:
    return Clock(1_800_000_000.0)


@pytest.fixture
def emu(clock: Clock) -> Iterator[Emulator]:
    with Emulator(flavor="nebius", job_seconds=100, clock=clock) as running:
        yield running


def _dataset(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "train.jsonl"
    path.write_bytes(make_chat_jsonl(12))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def _expected(sha: str, **changes: object) -> Expected:
    fields: dict[str, object] = dict(
        name="support-bot", fingerprint="fp-1", base=BASE, parent=None, training=sha,
        validation=None, method="supervised",
        hyperparameters={"n_epochs": 2, "learning_rate": 2e-5, "lora": True},
        suffix="support", seed=7)
    fields.update(changes)
    return Expected(**fields)  # type: ignore[arg-type]


def _request(file_id: str, **changes: object) -> JobRequest:
    fields: dict[str, object] = dict(
        model=BASE, training_file=file_id, validation_file=None, method="supervised",
        hyperparameters={"n_epochs": 2, "learning_rate": 2e-5, "lora": True,
                         "batch_size": "auto"},
        suffix="support", seed=7,
        metadata={"ftops_repo": REPO, "ftops_model": "support-bot",
                  "ftops_fingerprint": "fp-1"})
    fields.update(changes)
    return JobRequest(**fields)  # type: ignore[arg-type]


def _account(emu: Emulator, sha: str | None = None) -> Account:
    client = make_client(emu.base_url, "nb-key", max_retries=0)
    return Account(client, repo=REPO, expected=(_expected(sha),) if sha else ())


def test_upload_create_and_recognise_without_metadata(emu: Emulator, tmp_path: Path,
                                                      clock: Clock) -> None:
    path, sha = _dataset(tmp_path)
    account = _account(emu, sha)
    uploaded = account.upload(path, sha)
    assert uploaded.filename == dataset_filename(sha)
    created = account.create_job(_request(uploaded.id))
    assert created.metadata["ftops_fingerprint"] == "fp-1"  # what ftops sent, merged in
    sent = [r for r in emu.requests() if r["path"].endswith("/fine_tuning/jobs")]
    assert sent and sent[-1]["status"] == 200  # metadata was never sent (it is refused)
    state = account.read()
    assert [f.filename for f in state.files] == [dataset_filename(sha)]
    (job,) = state.jobs
    assert job.id == created.id and job.metadata["ftops_model"] == "support-bot"
    assert job.hyperparameters["learning_rate"] == 2e-5 and job.suffix == "support"
    # A job of another repository's model (other data) is not taken for ours.
    assert _account(emu, "0" * 64).jobs() == ()
    clock.now += 200
    done = account.job(created.id)
    assert done.status == "succeeded" and done.fine_tuned_model
    assert account.recent_jobs(int(clock.now) - 1000)[0].id == created.id
    events = account.events(created.id)
    assert events[0].message.startswith("Created fine-tuning job")
    assert account.result_files(created.id)
    reply = account.chat(done.fine_tuned_model, [{"role": "user", "content": "Question 2?"}],
                         seed=1)
    assert reply.text == "Answer 2." and reply.completion_tokens > 0
    assert account.calendar() == "nebius"
    account.delete_model(done.fine_tuned_model)
    account.delete_model(done.fine_tuned_model)  # gone already: done


def test_cancel_and_delete_twice(emu: Emulator, tmp_path: Path) -> None:
    path, sha = _dataset(tmp_path)
    account = _account(emu, sha).with_retries(2)
    file_id = account.upload(path, sha).id
    job = account.create_job(_request(file_id))
    account.cancel_job(job.id)
    assert account.job(job.id).status == "cancelled"
    account.cancel_job("ftjob-gone")  # not found: nothing to cancel
    account.delete_file(file_id)
    account.delete_file(file_id)
    assert account.files() == ()


def test_errors_are_one_line_remote_errors(emu: Emulator, tmp_path: Path) -> None:
    path, sha = _dataset(tmp_path)
    account = _account(emu)
    file_id = account.upload(path, sha).id
    with pytest.raises(RemoteError, match=r"answered 400: Model gpt-x is not available"):
        account.create_job(_request(file_id, model="gpt-x"))
    with pytest.raises(RemoteError, match=r"422: method.supervised.hyperparameters.n_epochs"):
        account.create_job(_request(file_id, hyperparameters={"n_epochs": 99}))
    with pytest.raises(RemoteError, match="answered 404") as caught:
        account.job("ftjob-missing")
    assert "nb-key" not in str(caught.value) and "\n" not in str(caught.value)


def test_hyperparameter_table() -> None:
    assert wire_hyperparameters("supervised", {"n_epochs": 3, "lora_r": 16}, "nb") == {
        "n_epochs": 3, "lora_r": 16}
    with pytest.raises(FtopsError, match="no hyperparameter learning_rate_multiplier"):
        wire_hyperparameters("supervised", {"learning_rate_multiplier": 2}, "nb")
    with pytest.raises(FtopsError, match="no dpo fine-tuning"):
        wire_hyperparameters("dpo", {}, "nb")


def test_job_type_is_ftops_own(emu: Emulator, tmp_path: Path) -> None:
    path, sha = _dataset(tmp_path)
    account = _account(emu, sha)
    job = account.create_job(_request(account.upload(path, sha).id))
    assert type(job) is Job and all(type(f).__module__ == "ftops.state" for f in account.files())
