"""Nebius Token Factory's dialect (``flavor="nebius"``) through the real ``openai`` SDK."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import openai
import pytest
from conftest import make_chat_jsonl, raw_request, sdk_client
from openai.types.fine_tuning import FineTuningJob

from ftops.emulator import Emulator
from tests.conftest import Clock

BASE = "meta-llama/Llama-3.1-8B-Instruct"



@pytest.fixture
def clock() -> Clock:
    return Clock(1_800_000_000.0)


@pytest.fixture
def emu(clock: Clock) -> Iterator[Emulator]:
    with Emulator(flavor="nebius", job_seconds=100, clock=clock) as running:
        yield running


@pytest.fixture
def client(emu: Emulator) -> Iterator[openai.OpenAI]:
    with sdk_client(emu.base_url) as sdk:
        yield sdk


def _upload(client: openai.OpenAI, tag: str = "") -> str:
    data = make_chat_jsonl(12, tag=tag)
    return client.files.create(file=("train.jsonl", io.BytesIO(data)), purpose="fine-tune").id


def _create(client: openai.OpenAI, file_id: str, **extra: object) -> FineTuningJob:
    return client.fine_tuning.jobs.create(
        model=BASE, training_file=file_id, suffix="demo", seed=7,
        extra_body={"hyperparameters": {"n_epochs": 2, "batch_size": 8, "learning_rate": 2e-5,
                                        "lora": True, "lora_r": 16}, **extra})


def test_job_runs_to_completion_with_nebius_fields(client: openai.OpenAI, clock: Clock) -> None:
    file_id = _upload(client)
    job = _create(client, file_id, tags="ftops", from_checkpoint={"repo": "me/ckpt"})
    assert job.status == "validating_files"
    extra = job.model_extra or {}
    assert job.hyperparameters.model_extra["learning_rate"] == 2e-5  # type: ignore[index]
    assert extra["suffix"] == "demo" and extra["total_steps"] == 4 and extra["trained_steps"] == 0
    assert job.metadata is None and job.organization_id == ""
    seen = set()
    for _ in range(12):
        clock.now += 10
        seen.add(client.fine_tuning.jobs.retrieve(job.id).status)
    done = client.fine_tuning.jobs.retrieve(job.id)
    assert {"queued", "running", "succeeded"} <= seen
    assert done.status == "succeeded" and (done.model_extra or {})["trained_steps"] == 4
    assert done.fine_tuned_model and done.fine_tuned_model.startswith(f"{BASE}-LoRa:demo-")
    events = list(client.fine_tuning.jobs.list_events(job.id, limit=100))
    assert any("successfully completed" in e.message for e in events)
    checkpoints = list(client.fine_tuning.jobs.checkpoints.list(job.id))
    assert checkpoints and checkpoints[0].fine_tuning_job_id == job.id
    reply = client.chat.completions.create(
        model=done.fine_tuned_model, messages=[{"role": "user", "content": "Question 3?"}])
    assert reply.choices[0].message.content == "Answer 3."
    assert done.fine_tuned_model in {m.id for m in client.models.list()}
    client.models.delete(done.fine_tuned_model)
    with pytest.raises(openai.NotFoundError):
        client.models.delete(done.fine_tuned_model)


def test_method_block_hyperparameters_and_defaults(client: openai.OpenAI) -> None:
    job = client.fine_tuning.jobs.create(
        model=BASE, training_file=_upload(client),
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1}}})
    shown = job.hyperparameters.model_dump()
    assert shown["n_epochs"] == 1 and shown["batch_size"] == 8
    assert shown["context_length"] == 8192 and shown["lora"] is False


@pytest.mark.parametrize(("body", "loc"), [
    ({"metadata": {"ftops_repo": "x"}}, ["body", "metadata"]),
    ({"hyperparameters": {"learning_rate_multiplier": 2}},
     ["body", "hyperparameters", "learning_rate_multiplier"]),
    ({"hyperparameters": {"lora_r": "8"}}, ["body", "hyperparameters", "lora_r"]),
    ({"hyperparameters": {"n_epochs": 0}}, ["body", "hyperparameters", "n_epochs"]),
    ({"from_checkpoint": {"repo": "x", "type": "s3"}}, ["body", "from_checkpoint", "type"]),
])
def test_refused_with_fastapi_422(client: openai.OpenAI, body: dict[str, object],
                                  loc: list[str]) -> None:
    file_id = _upload(client)
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        client.fine_tuning.jobs.create(model=BASE, training_file=file_id, extra_body=body)
    detail = caught.value.body["detail"]  # type: ignore[index]
    assert detail[0]["loc"] == loc
    assert client.fine_tuning.jobs.list().data == []  # nothing was created


def test_errors_are_in_nebius_shape(emu: Emulator, client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as unknown_model:
        client.fine_tuning.jobs.create(model="gpt-4.1-2025-04-14", training_file=_upload(client))
    assert "not available" in unknown_model.value.body["detail"]  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as full:
        client.fine_tuning.jobs.create(model="meta-llama/Llama-3.3-70B-Instruct",
                                       training_file=_upload(client, "b"))
    assert "only LoRA" in full.value.body["detail"]  # type: ignore[index]
    with pytest.raises(openai.NotFoundError) as missing:
        client.fine_tuning.jobs.retrieve("ftjob-nope")
    assert isinstance(missing.value.body["detail"], str)  # type: ignore[index]
    anonymous = raw_request(emu.base_url + "/files")
    assert anonymous.status == 401 and anonymous.json() == {"detail": "Not authenticated"}
    nowhere = raw_request(emu.base_url + "/uploads", "POST",
                          headers={"Authorization": "Bearer k"})
    assert nowhere.status == 404 and nowhere.json() == {"detail": "Not Found"}


def test_listing_pages_and_ignores_metadata_query(emu: Emulator, client: openai.OpenAI) -> None:
    file_id = _upload(client)
    made = [client.fine_tuning.jobs.create(model=BASE, training_file=file_id).id
            for _ in range(5)]
    first = client.fine_tuning.jobs.list(limit=2)
    assert [j.id for j in first.data] == made[::-1][:2] and first.has_more
    assert [j.id for j in client.fine_tuning.jobs.list(limit=2)] == made[::-1]
    filtered = client.fine_tuning.jobs.list(metadata={"ftops_repo": "x"})
    assert len(filtered.data) == 5
    raw = raw_request(emu.base_url + "/fine_tuning/jobs?limit=1",
                      headers={"Authorization": "Bearer k"}).json()
    assert "metadata" not in raw["data"][0] and "trained_steps" in raw["data"][0]


def test_cancel_and_cancel_again(client: openai.OpenAI) -> None:
    job = client.fine_tuning.jobs.create(model=BASE, training_file=_upload(client))
    assert client.fine_tuning.jobs.cancel(job.id).status == "cancelled"
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.cancel(job.id)


def test_faults_are_retried_by_the_sdk(clock: Clock) -> None:
    with Emulator(flavor="nebius", job_seconds=0, clock=clock, fault_rate=0.5, seed=3,
                  retry_after=0) as emu, sdk_client(emu.base_url, max_retries=8) as sdk:
        file_id = _upload(sdk)
        sdk.fine_tuning.jobs.create(model=BASE, training_file=file_id)
        assert sdk.fine_tuning.jobs.list().data
        assert any(r["fault"] for r in emu.requests())


def test_state_persists(tmp_path: object, clock: Clock) -> None:
    state = f"{tmp_path}/state"
    with Emulator(flavor="nebius", state_path=state, clock=clock) as emu, \
            sdk_client(emu.base_url) as sdk:
        job_id = sdk.fine_tuning.jobs.create(model=BASE, training_file=_upload(sdk)).id
    with Emulator(flavor="nebius", state_path=state, clock=clock) as emu:
        body = raw_request(emu.base_url + f"/fine_tuning/jobs/{job_id}",
                           headers={"Authorization": "Bearer k"}).json()
    assert body["hyperparameters"]["learning_rate"] == 0.00001
    assert json.dumps(body)  # the job reloads with its Nebius fields
