"""The real ``fireworks-ai`` SDK against the emulator's Fireworks dialect, end to end."""
# The SDK types every field of its objects Optional; the tests read the ones the dialect fills.
# mypy: disable-error-code="union-attr"

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ftops.emulator.server import Emulator
from ftops.errors import FtopsError
from tests.conftest import Clock

fireworks = pytest.importorskip("fireworks")
from fireworks import Fireworks  # noqa: E402

ACCOUNT = "acme"
BASE = "accounts/fireworks/models/qwen3-8b"


def _lines(count: int = 12) -> bytes:
    rows = [json.dumps({"messages": [{"role": "user", "content": f"what is item {i}"},
                                     {"role": "assistant", "content": f"item {i} is blue"}]})
            for i in range(count)]
    return ("\n".join(rows) + "\n").encode()



@pytest.fixture
def clock() -> Clock:
    return Clock(1_796_000_000.0)


@pytest.fixture
def emu(clock: Clock) -> Iterator[Emulator]:
    with Emulator(flavor="fireworks", job_seconds=100, clock=clock) as emulator:
        yield emulator


def _client(emu: Emulator, **options: Any) -> Fireworks:
    """No retries unless asked: the SDK retries a 409 (with back-off), which tests provoke."""
    return Fireworks(api_key="fw-test", account_id=ACCOUNT, base_url=emu.url,
                     http_client=httpx.Client(trust_env=False), **{"max_retries": 0, **options})


def _dataset(client: Fireworks, dataset_id: str, data: bytes | None = None) -> str:
    client.datasets.create(dataset={"format": "CHAT"}, dataset_id=dataset_id)
    client.datasets.upload(dataset_id, file=(f"{dataset_id}.jsonl", data or _lines()))
    return f"accounts/{ACCOUNT}/datasets/{dataset_id}"


def test_dataset_created_then_uploaded(emu: Emulator) -> None:
    client = _client(emu)
    made = client.datasets.create(dataset={"display_name": "train", "format": "CHAT"},
                                  dataset_id="ftops-" + "a" * 40)
    assert made.name == f"accounts/{ACCOUNT}/datasets/ftops-{'a' * 40}"
    assert made.state == "UPLOADING"
    sent = client.datasets.upload(made.name.rsplit("/", 1)[-1], file=("x.jsonl", _lines()))
    assert sent.bytes == len(_lines())
    got = client.datasets.get("ftops-" + "a" * 40)
    assert got.state == "READY" and got.format == "CHAT"
    with pytest.raises(fireworks.ConflictError) as conflict:
        client.datasets.create(dataset={}, dataset_id="ftops-" + "a" * 40)
    assert conflict.value.body == {"code": 6, "message": conflict.value.body["message"],
                                   "details": []}
    with pytest.raises(fireworks.BadRequestError):  # uploaded once, for good
        client.datasets.upload("ftops-" + "a" * 40, file=("x.jsonl", _lines()))
    client.datasets.delete("ftops-" + "a" * 40)
    with pytest.raises(fireworks.NotFoundError):
        client.datasets.get("ftops-" + "a" * 40)


def test_dataset_ids_and_files_checked(emu: Emulator) -> None:
    client = _client(emu)
    for bad in ("Upper", "1digit", "x" * 64, "trailing-"):
        with pytest.raises(fireworks.BadRequestError):
            client.datasets.create(dataset={}, dataset_id=bad)
    client.datasets.create(dataset={}, dataset_id="d1")
    with pytest.raises(fireworks.BadRequestError, match="jsonl"):
        client.datasets.upload("d1", file=("d1.txt", _lines()))
    with pytest.raises(fireworks.BadRequestError):
        client.datasets.upload("d1", file=("d1.jsonl", b"not json\n"))
    with pytest.raises(fireworks.BadRequestError, match="unknown field"):
        client.datasets.create(dataset={}, dataset_id="d2", extra_body={"colour": "red"})
    assert client.datasets.get("d1").state == "UPLOADING"  # refused uploads change nothing


def test_datasets_paginate(emu: Emulator) -> None:
    client = _client(emu)
    for index in range(7):
        client.datasets.create(dataset={}, dataset_id=f"d{index}")
    first = client.datasets.list(page_size=3)
    assert len(first.datasets) == 3 and first.next_page_token
    names = [d.name for d in client.datasets.list(page_size=3)]  # the SDK follows the tokens
    assert names == [f"accounts/{ACCOUNT}/datasets/d{i}" for i in range(7)]
    newest = client.datasets.list(page_size=2, order_by="createTime desc")
    assert newest.datasets[0].name.endswith("/d6")
    with pytest.raises(fireworks.BadRequestError):
        client.datasets.list(page_token="garbage")
    other = _client(emu).datasets.list(account_id="someone-else")
    assert other.datasets == []


def test_job_runs_to_completion_and_its_model_chats(emu: Emulator, clock: Clock) -> None:
    client = _client(emu)
    name = _dataset(client, "train")
    job = client.supervised_fine_tuning_jobs.create(
        dataset=name, base_model=BASE, output_model="tuned", epochs=2, learning_rate=2e-4,
        lora_rank=16, display_name="ftops demo")
    assert job.state == "JOB_STATE_CREATING"
    assert (job.epochs, job.learning_rate, job.lora_rank) == (2, 2e-4, 16)
    assert job.output_model == f"accounts/{ACCOUNT}/models/tuned"
    job_id = job.name.rsplit("/", 1)[-1]
    seen = []
    for at in (5, 15, 50, 97, 101):
        clock.now = job.create_time.timestamp() + at
        seen.append(client.supervised_fine_tuning_jobs.get(job_id).state)
    assert seen == ["JOB_STATE_VALIDATING", "JOB_STATE_PENDING", "JOB_STATE_RUNNING",
                    "JOB_STATE_WRITING_RESULTS", "JOB_STATE_COMPLETED"]
    done = client.supervised_fine_tuning_jobs.get(job_id)
    assert done.completed_time is not None and done.job_progress.percent == 100
    model = client.models.get("tuned")
    assert model.kind == "HF_PEFT_ADDON" and model.fine_tuning_job == job.name
    assert model.peft_details.base_model == BASE and model.peft_details.r == 16
    reply = client.chat.completions.create(
        model=str(model.name), messages=[{"role": "user", "content": "what is item 7"}])
    assert reply.choices[0].message.content == "item 7 is blue"
    base = client.chat.completions.create(model=BASE, messages=[{"role": "user", "content": "hi"}])
    assert base.choices[0].message.content != "item 7 is blue"
    with pytest.raises(fireworks.NotFoundError):
        client.chat.completions.create(model=f"accounts/{ACCOUNT}/models/nope",
                                       messages=[{"role": "user", "content": "hi"}])
    # Warm start from the tuned model: the child answers from its parent's data as well.
    child = client.supervised_fine_tuning_jobs.create(
        dataset=_dataset(client, "more"), warm_start_from=str(model.name), output_model="child")
    assert child.warm_start_from == model.name
    client.models.delete("tuned")
    with pytest.raises(fireworks.NotFoundError):
        client.models.get("tuned")


def test_jobs_paginate_and_cancel(emu: Emulator) -> None:
    client = _client(emu)
    name = _dataset(client, "train")
    made = [client.supervised_fine_tuning_jobs.create(
        dataset=name, base_model=BASE, supervised_fine_tuning_job_id=f"job-{i}")
        for i in range(5)]
    listed = [j.name for j in client.supervised_fine_tuning_jobs.list(page_size=2)]
    assert listed == [j.name for j in made]
    page = client.supervised_fine_tuning_jobs.list(page_size=2, order_by="createTime desc")
    assert page.supervised_fine_tuning_jobs[0].name == made[-1].name and page.next_page_token
    assert client.supervised_fine_tuning_jobs.cancel("job-1", body={}) == {}
    assert client.supervised_fine_tuning_jobs.get("job-1").state == "JOB_STATE_CANCELLED"
    assert client.supervised_fine_tuning_jobs.get("job-1").status.code == "CANCELLED"
    with pytest.raises(fireworks.BadRequestError) as again:
        client.supervised_fine_tuning_jobs.cancel("job-1", body={})
    assert again.value.body["code"] == 9  # FAILED_PRECONDITION
    with pytest.raises(fireworks.NotFoundError):
        client.supervised_fine_tuning_jobs.cancel("job-404", body={})
    with pytest.raises(fireworks.ConflictError):
        client.supervised_fine_tuning_jobs.create(dataset=name, base_model=BASE,
                                                  supervised_fine_tuning_job_id="job-1")


def test_job_requests_checked(emu: Emulator, clock: Clock) -> None:
    client = _client(emu)
    name = _dataset(client, "train")
    client.datasets.create(dataset={}, dataset_id="empty")
    sft = client.supervised_fine_tuning_jobs
    bad: list[dict[str, Any]] = [
        {"dataset": name},  # neither base_model nor warm_start_from
        {"dataset": name, "base_model": BASE, "warm_start_from": "accounts/acme/models/x"},
        {"dataset": name, "base_model": "accounts/fireworks/models/not-a-model"},
        {"dataset": f"accounts/{ACCOUNT}/datasets/empty", "base_model": BASE},  # not READY
        {"dataset": f"accounts/{ACCOUNT}/datasets/gone", "base_model": BASE},
        {"dataset": name, "base_model": BASE, "lora_rank": 128},
        {"dataset": name, "base_model": BASE, "epochs": 0},
        {"dataset": name, "base_model": BASE, "extra_body": {"suffix": "x"}},  # unknown field
    ]
    for args in bad:
        with pytest.raises((fireworks.BadRequestError, fireworks.NotFoundError)):
            sft.create(**args)
    assert list(sft.list()) == []
    sft.create(dataset=name, base_model=BASE, output_model="once")
    with pytest.raises(fireworks.ConflictError):  # an output model is named once
        sft.create(dataset=name, base_model=BASE, output_model="once")
    few = _dataset(client, "few", _lines(3))
    failed = sft.create(dataset=few, base_model=BASE)
    clock.now += 50
    shown = sft.get(failed.name.rsplit("/", 1)[-1])
    assert shown.state == "JOB_STATE_FAILED" and shown.status.code == "INVALID_ARGUMENT"
    assert "at least 10" in (shown.status.message or "")


def test_auth_and_unknown_paths(emu: Emulator) -> None:
    with httpx.Client(trust_env=False) as http:
        bare = http.get(f"{emu.url}/v1/accounts/{ACCOUNT}/datasets")
        assert bare.status_code == 401 and bare.json()["code"] == 16
        chat = http.post(f"{emu.url}/inference/v1/chat/completions", json={})
        assert chat.status_code == 401 and chat.json()["error"]["object"] == "error"
        lost = http.get(f"{emu.url}/v1/nowhere", headers={"Authorization": "Bearer k"})
        assert lost.status_code == 404 and lost.json() == {"code": 5, "message": "Not Found",
                                                           "details": []}
        served = http.post(f"{emu.url}/inference/v1/chat/completions",
                           headers={"Authorization": "Bearer k"},
                           json={"model": BASE, "messages": [{"role": "user", "content": "x"}]})
        assert served.status_code == 200 and served.headers["x-ftops-emulator"] == "fireworks"


def test_faults_are_retried_by_the_sdk(clock: Clock) -> None:
    with Emulator(flavor="fireworks", job_seconds=0, fault_rate=0.4, retry_after=0, seed=3,
                  faults=("429", "500", "503")) as emu:
        client = _client(emu, max_retries=12)
        name = _dataset(client, "train")
        client.supervised_fine_tuning_jobs.create(dataset=name, base_model=BASE,
                                                  supervised_fine_tuning_job_id="j")
        assert client.supervised_fine_tuning_jobs.get("j").state == "JOB_STATE_COMPLETED"
        assert emu.stats()["by_fault"]


def test_state_persists(tmp_path: Path, clock: Clock) -> None:
    state = tmp_path / "state.json"
    with Emulator(flavor="fireworks", job_seconds=0, state_path=state, clock=clock) as emu:
        client = _client(emu)
        name = _dataset(client, "train")
        client.supervised_fine_tuning_jobs.create(dataset=name, base_model=BASE,
                                                  output_model="kept")
    with Emulator(flavor="fireworks", job_seconds=0, state_path=state, clock=clock) as emu:
        client = _client(emu)
        assert client.datasets.get("train").state == "READY"
        assert client.models.get("kept").state == "READY"
        assert [j.output_model for j in client.supervised_fine_tuning_jobs.list()] == [
            f"accounts/{ACCOUNT}/models/kept"]


def test_unknown_flavor_names_fireworks() -> None:
    with pytest.raises(FtopsError) as error:
        Emulator(flavor="fireworx")
    assert "fireworks" in (error.value.hint or "")


# DPO jobs (``dpoJobs``) ---------------------------------------------------------------------------
def _preferences(count: int = 12) -> bytes:
    rows = [json.dumps({"input": {"messages": [{"role": "user", "content": f"what is item {i}"}]},
                        "preferred_output": [{"role": "assistant", "content": f"item {i} is blue"}],
                        "non_preferred_output": [{"role": "assistant", "content": "no idea"}]})
            for i in range(count)]
    return ("\n".join(rows) + "\n").encode()


def test_dpo_job_runs_apart_from_supervised_ones(emu: Emulator, clock: Clock) -> None:
    client = _client(emu)
    name = _dataset(client, "prefs", _preferences())
    job = client.dpo_jobs.create(
        dataset=name, training_config={"base_model": BASE, "epochs": 2, "lora_rank": 16},
        loss_config={"method": "DPO", "dpo": {"beta": 0.2}}, dpo_job_id="dpo-one")
    assert job.name == f"accounts/{ACCOUNT}/dpoJobs/dpo-one" and job.state == "JOB_STATE_CREATING"
    assert (job.training_config.epochs, job.training_config.lora_rank) == (2, 16)
    assert job.training_config.output_model == f"accounts/{ACCOUNT}/models/dpo-one"
    assert job.loss_config.dpo.beta == 0.2 and job.dataset == name
    sft = client.supervised_fine_tuning_jobs.create(dataset=_dataset(client, "t"), base_model=BASE)
    assert [j.name for j in client.dpo_jobs.list()] == [job.name]  # each collection its own
    assert [j.name for j in client.supervised_fine_tuning_jobs.list()] == [sft.name]
    with pytest.raises(fireworks.NotFoundError):
        client.supervised_fine_tuning_jobs.get("dpo-one")
    with pytest.raises(fireworks.NotFoundError):
        client.dpo_jobs.get(sft.name.rsplit("/", 1)[-1])
    clock.now = job.create_time.timestamp() + 101
    assert client.dpo_jobs.get("dpo-one").state == "JOB_STATE_COMPLETED"
    reply = client.chat.completions.create(
        model=f"accounts/{ACCOUNT}/models/dpo-one",
        messages=[{"role": "user", "content": "what is item 3"}])
    assert reply.choices[0].message.content


def test_dpo_requests_checked(emu: Emulator, clock: Clock) -> None:
    client = _client(emu)
    name = _dataset(client, "prefs", _preferences())
    for loss in ({"dpo": {"beta": 0.5}}, {"dpo": {"beta": 0}}, {"method": "ORPO"}):
        with pytest.raises(fireworks.BadRequestError):
            client.dpo_jobs.create(dataset=name, training_config={"base_model": BASE},
                                   loss_config=loss)  # type: ignore[arg-type]
    with pytest.raises(fireworks.BadRequestError):
        client.dpo_jobs.create(dataset=name, training_config={"base_model": BASE,
                                                              "lora_rank": 128})
    with pytest.raises(fireworks.BadRequestError):
        client.dpo_jobs.create(dataset=name, extra_body={"evaluationDataset": name},
                               training_config={"base_model": BASE})
    # A chat file is not preference data: the job fails validating it, as a bad file does.
    wrong = client.dpo_jobs.create(dataset=_dataset(client, "chat"),
                                   training_config={"base_model": BASE})
    clock.now = wrong.create_time.timestamp() + 101
    failed = client.dpo_jobs.get(wrong.name.rsplit("/", 1)[-1])
    assert failed.state == "JOB_STATE_FAILED" and "input" in failed.status.message
    running = client.dpo_jobs.create(dataset=name, training_config={"base_model": BASE})
    client.dpo_jobs.cancel(running.name.rsplit("/", 1)[-1], body={})
    assert client.dpo_jobs.get(running.name.rsplit("/", 1)[-1]).state == "JOB_STATE_CANCELLED"
