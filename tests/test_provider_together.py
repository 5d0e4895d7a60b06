"""``ftops.providers.together.TogetherAccount`` against the Together dialect of the emulator,
through the real ``together`` SDK: read, idempotent upload, metadata-less jobs recognised,
events, chat, cancel and deletes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_chat_jsonl

from ftops.emulator import Emulator
from ftops.errors import StalePlanError
from ftops.identity import dataset_filename
from ftops.providers.base import JobRequest
from ftops.recognise import SUPERSEDED, Expected

pytest.importorskip("together")
from ftops.providers import together as tg

BASE = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
REPO = "acme/models"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(flavor="together", job_seconds=0) as emulator:
        yield emulator


def _account(emu: Emulator, expected: tuple[Expected, ...] = ()) -> tg.TogetherAccount:
    return tg.TogetherAccount(tg.make_client(emu.url, "tk-test", max_retries=0), repo=REPO,
                              provider="tog", expected=expected)


def _dataset(tmp_path: Path, tag: str = "") -> tuple[Path, str]:
    path = tmp_path / f"data{tag}.jsonl"
    path.write_bytes(make_chat_jsonl(10, tag=tag))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def _expected(sha: str, **hyper: int) -> Expected:
    return Expected(name="support", fingerprint="f" * 64, base=BASE, parent=None, training=sha,
                    validation=None, method="supervised", hyperparameters=hyper,
                    suffix="support", seed=7)


def _request(file_id: str, **hyper: int) -> JobRequest:
    return JobRequest(model=BASE, training_file=file_id, validation_file=None,
                      method="supervised", hyperparameters=hyper, suffix="support", seed=7,
                      metadata={"ftops_repo": REPO, "ftops_model": "support",
                                "ftops_fingerprint": "f" * 64})


def test_upload_is_named_by_hash_and_idempotent(emu: Emulator, tmp_path: Path) -> None:
    account = _account(emu)
    path, sha = _dataset(tmp_path)
    first = account.upload(path, sha)
    assert first.filename == dataset_filename(sha) and first.provider == "tog"
    assert account.upload(path, sha).id == first.id
    assert [f.id for f in account.files()] == [first.id]
    assert account.file_bytes(first.id) == path.read_bytes()
    with pytest.raises(StalePlanError):  # the bytes no longer hash to what was planned
        account.upload(path, "0" * 64)


def test_created_job_is_recognised_without_metadata(emu: Emulator, tmp_path: Path) -> None:
    path, sha = _dataset(tmp_path)
    account = _account(emu, (_expected(sha, n_epochs=2, batch_size=8),))
    file_id = account.upload(path, sha).id
    created = account.create_job(_request(file_id, n_epochs=2, batch_size=8))
    assert created.metadata["ftops_model"] == "support"  # what ftops sent, merged in
    assert created.status == "validating_files"
    actual = account.read()
    [job] = actual.jobs
    assert job.id == created.id and job.status == "succeeded"
    assert job.metadata == {"ftops_repo": REPO, "ftops_model": "support",
                            "ftops_fingerprint": "f" * 64}
    assert job.hyperparameters["n_epochs"] == 2 and job.seed == 7 and job.suffix == "support"
    assert [m.id for m in actual.models] == [job.fine_tuned_model]
    assert [f.id for f in actual.files] == [file_id]
    # A job of other settings is not this model's current one: an earlier version of it.
    other = account.create_job(_request(file_id, n_epochs=3))
    assert {j.id: j.metadata["ftops_fingerprint"] for j in account.jobs()} == {
        created.id: "f" * 64, other.id: SUPERSEDED}
    assert {j.id: j.metadata["ftops_fingerprint"]
            for j in account.recent_jobs(created.created_at)} == {
        created.id: "f" * 64, other.id: SUPERSEDED}


def test_job_events_chat_and_deletes(emu: Emulator, tmp_path: Path) -> None:
    path, sha = _dataset(tmp_path, tag="q")
    account = _account(emu)
    file_id = account.upload(path, sha).id
    job = account.job(account.create_job(_request(file_id)).id)
    assert job.status == "succeeded" and job.fine_tuned_model
    events = account.events(job.id)
    assert events[0].message.startswith("Created fine-tuning job")
    assert [e.created_at for e in events] == sorted(e.created_at for e in events)
    reply = account.chat(job.fine_tuned_model, [{"role": "user", "content": "Question 2q?"}],
                         seed=1)
    assert reply.text == "Answer 2q." and reply.prompt_tokens > 0
    assert account.result_files(job.id) == ()
    account.delete_model(job.fine_tuned_model)
    account.delete_model(job.fine_tuned_model)  # gone already: success
    assert account.models() == ()
    account.delete_file(file_id)
    account.delete_file(file_id)
    assert account.files() == ()


def test_cancel_and_errors_are_one_line(tmp_path: Path) -> None:
    with Emulator(flavor="together", job_seconds=3600) as emu:
        account = _account(emu)
        path, sha = _dataset(tmp_path)
        file_id = account.upload(path, sha).id
        job = account.create_job(_request(file_id))
        account.cancel_job(job.id)
        assert account.job(job.id).status == "cancelled"
        account.cancel_job("ft-00000000-0000-0000-0000-000000000000")  # gone: success
        with pytest.raises(tg.TogetherError) as caught:
            account.cancel_job(job.id)  # finished: Together refuses
        assert caught.value.status == 400 and "\n" not in str(caught.value)
        assert "tk-test" not in str(caught.value)
        with pytest.raises(tg.TogetherError, match="does not take hyperparameter"):
            account.create_job(_request(file_id, learning_rate_multiplier=2))


def test_faults_are_retried(tmp_path: Path) -> None:
    with Emulator(flavor="together", job_seconds=0, fault_rate=0.25, faults=("500", "503"),
                  retry_after=0, seed=1) as emu:
        account = _account(emu).with_retries(10)
        path, sha = _dataset(tmp_path)
        file_id = account.upload(path, sha).id
        for _ in range(12):
            assert [f.id for f in account.files()] == [file_id]
        assert account.upload(path, sha).id == file_id
        assert any(r["fault"] for r in emu.requests())
