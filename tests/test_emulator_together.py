"""Together AI's dialect driven by the real ``together`` SDK (no mocks): the signed-URL upload,
jobs through every status, events, checkpoints, cancel, delete, errors, chat and faults."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import make_chat_jsonl, raw_request

from ftops.emulator import Emulator
from tests.conftest import Clock

together = pytest.importorskip("together")

BASE = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"



def make_client(emu: Emulator, *, retries: int = 0) -> together.Together:
    return together.Together(api_key="tk-test", base_url=emu.url, max_retries=retries,
                             http_client=httpx.Client(trust_env=False))


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(flavor="together", job_seconds=0) as emulator:
        yield emulator


def _dataset(tmp_path: Path, tag: str = "", n: int = 10) -> Path:
    path = tmp_path / f"train{tag}.jsonl"
    path.write_bytes(make_chat_jsonl(n, tag=tag))
    return path


def test_upload_follows_the_signed_url_flow_and_deduplicates(emu: Emulator, tmp_path: Path
                                                              ) -> None:
    client = make_client(emu)
    path = _dataset(tmp_path)
    first = client.files.upload(path, purpose="fine-tune")
    assert first.id.startswith("file-") and first.filename == "train.jsonl"
    assert first.bytes == path.stat().st_size and first.processing_status == "COMPLETED"
    assert [(r["method"], r["path"].split("/")[1], r["status"]) for r in emu.requests()] == [
        ("POST", "v1", 302), ("PUT", "storage", 200), ("POST", "v1", 200)]
    again = client.files.upload(path, purpose="fine-tune")  # same checksum: 409, the same file
    assert again.id == first.id
    assert [f.id for f in client.files.list().data] == [first.id]
    assert client.files.retrieve(first.id).file_type == "jsonl"
    assert client.files.content(first.id).read() == path.read_bytes()
    assert client.files.delete(first.id).deleted is True
    with pytest.raises(together.NotFoundError):
        client.files.delete(first.id)


def test_storage_refuses_a_put_without_a_valid_signature(emu: Emulator) -> None:
    assert raw_request(emu.url + "/storage/file-x", "PUT", body=b"x").status == 403
    assert raw_request(emu.url + "/storage/file-x?signature=bad", "PUT", body=b"x").status == 403


def test_a_job_goes_through_togethers_statuses(tmp_path: Path) -> None:
    clock = Clock(1_700_000_000.0)
    with Emulator(flavor="together", job_seconds=100, clock=clock) as emu:
        client = make_client(emu)
        file_id = client.files.upload(_dataset(tmp_path)).id
        job = client.fine_tuning.create(training_file=file_id, model=BASE, n_epochs=2,
                                        batch_size=8, learning_rate=2e-5, suffix="demo",
                                        train_on_inputs="auto")
        assert job.status == "pending" and job.id.startswith("ft-")
        assert job.output_name and job.output_name.startswith(
            "emulator/Meta-Llama-3.1-8B-Instruct-Reference-demo-")
        seen = []
        for at in (5, 15, 50, 92, 97, 101):
            clock.now = 1_700_000_000.0 + at
            seen.append(client.fine_tuning.retrieve(job.id).status)
        assert seen == ["pending", "queued", "running", "compressing", "uploading", "completed"]
        done = client.fine_tuning.retrieve(job.id)
        assert (done.n_epochs, done.batch_size, done.learning_rate) == (2, 8, 2e-5)
        assert done.training_type and done.training_type.type == "Lora"
        assert done.token_count and done.token_count > 0
        kinds = [e.type for e in client.fine_tuning.list_events(job.id).data]
        assert kinds[0] == "job_pending" and kinds[-1] == "job_complete"
        assert "checkpoint_save" in kinds
        checkpoints = client.fine_tuning.list_checkpoints(job.id).data
        assert checkpoints and checkpoints[0].checkpoint_type == "Final"


def test_list_is_newest_first_and_delete_removes_job_and_model(emu: Emulator,
                                                               tmp_path: Path) -> None:
    client = make_client(emu)
    file_id = client.files.upload(_dataset(tmp_path)).id
    ids = [client.fine_tuning.create(training_file=file_id, model=BASE, suffix=f"s{i}").id
           for i in range(3)]
    assert [j.id for j in client.fine_tuning.list().data] == ids[::-1]
    output = client.fine_tuning.retrieve(ids[0]).x_model_output_name
    client.fine_tuning.delete(ids[0])
    assert [j.id for j in client.fine_tuning.list().data] == ids[:0:-1]
    with pytest.raises(together.NotFoundError):
        client.fine_tuning.retrieve(ids[0])
    with pytest.raises(together.NotFoundError):
        client.chat.completions.create(model=output or "", messages=[
            {"role": "user", "content": "Question 3?"}])


def test_cancel_answers_cancel_requested_then_reads_cancelled(tmp_path: Path) -> None:
    with Emulator(flavor="together", job_seconds=3600) as emu:
        client = make_client(emu)
        file_id = client.files.upload(_dataset(tmp_path)).id
        job = client.fine_tuning.create(training_file=file_id, model=BASE)
        assert client.fine_tuning.cancel(job.id).status == "cancel_requested"
        assert client.fine_tuning.retrieve(job.id).status == "cancelled"
        with pytest.raises(together.BadRequestError):
            client.fine_tuning.cancel(job.id)


def test_chat_of_the_trained_model_answers_from_its_data(emu: Emulator, tmp_path: Path) -> None:
    client = make_client(emu)
    file_id = client.files.upload(_dataset(tmp_path, tag="x")).id
    job = client.fine_tuning.create(training_file=file_id, model=BASE)
    model = client.fine_tuning.retrieve(job.id).x_model_output_name
    assert model
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Question 3x?"}], temperature=0,
        seed=1)
    assert reply.choices[0].message.content == "Answer 3x."
    assert reply.usage and reply.usage.prompt_tokens > 0


def test_errors_have_togethers_shape(emu: Emulator, tmp_path: Path) -> None:
    no_key = raw_request(emu.url + "/v1/fine-tunes")
    assert no_key.status == 401
    assert json.loads(no_key.body)["error"]["code"] == "invalid_api_key"
    client = make_client(emu)
    with pytest.raises(together.NotFoundError):  # the SDK asks for the base's limits first
        client.fine_tuning.create(training_file="file-x", model="no/such-model")
    file_id = client.files.upload(_dataset(tmp_path)).id
    headers = {"Authorization": "Bearer k", "Content-Type": "application/json"}
    stray = raw_request(emu.url + "/v1/fine-tunes", "POST", headers=headers, body=json.dumps(
        {"model": BASE, "training_file": file_id, "metadata": {"a": "b"}}).encode())
    assert stray.status == 400
    assert json.loads(stray.body)["error"]["param"] == "metadata"
    bad_batch = raw_request(emu.url + "/v1/fine-tunes", "POST", headers=headers, body=json.dumps(
        {"model": BASE, "training_file": file_id, "batch_size": 1000}).encode())
    assert json.loads(bad_batch.body)["error"]["param"] == "batch_size"


def test_a_malformed_file_fails_the_job_as_user_error(emu: Emulator, tmp_path: Path) -> None:
    client = make_client(emu)
    path = tmp_path / "bad.jsonl"
    path.write_bytes(make_chat_jsonl(10, bad_line=2))
    file_id = client.files.upload(path, check=False).id
    job = client.fine_tuning.create(training_file=file_id, model=BASE)
    assert client.fine_tuning.retrieve(job.id).status == "user_error"


def test_injected_faults_are_retried_by_the_sdk(tmp_path: Path) -> None:
    with Emulator(flavor="together", job_seconds=0, fault_rate=0.3, faults=("500", "429"),
                  retry_after=0, seed=3) as emu:
        client = make_client(emu, retries=8)
        for _ in range(5):
            assert client.fine_tuning.list().data == []
        assert any(r["fault"] for r in emu.requests())


def test_state_persists_across_restarts(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with Emulator(flavor="together", job_seconds=0, state_path=state) as emu:
        client = make_client(emu)
        file_id = client.files.upload(_dataset(tmp_path)).id
        job_id = client.fine_tuning.create(training_file=file_id, model=BASE).id
        assert client.fine_tuning.retrieve(job_id).status == "completed"
    with Emulator(flavor="together", job_seconds=0, state_path=state) as emu:
        client = make_client(emu)
        assert [f.id for f in client.files.list().data] == [file_id]
        assert client.fine_tuning.retrieve(job_id).status == "completed"
