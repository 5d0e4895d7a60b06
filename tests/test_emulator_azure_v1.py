"""Azure's v1 API, its job rules, the management plane's deployments and Entra tokens, through
the real ``openai.OpenAI``, ``CognitiveServicesManagementClient`` and azure-identity."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from conftest import loopback_http_client, make_chat_jsonl, raw_request

from ftops.emulator import Emulator
from ftops.modelid import parse_fine_tuned
from tests.conftest import Clock

BASE = "gpt-4.1-2025-04-14"
SUB, RG, ACCOUNT = "00000000-0000-0000-0000-000000000001", "rg-ftops", "acct"


def v1_client(emu: Emulator, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=emu.azure_v1_url, api_key=kwargs.pop("api_key", "az-key"),
                         max_retries=0, http_client=loopback_http_client(),
                         **kwargs)



@pytest.fixture
def clock() -> Clock:
    return Clock(1_800_000_000.0)


@pytest.fixture
def azure(clock: Clock) -> Iterator[Emulator]:
    with Emulator(flavor="azure", job_seconds=100, clock=clock) as emu:
        yield emu


def _training(client: openai.OpenAI) -> str:
    return client.files.create(file=("t.jsonl", make_chat_jsonl()), purpose="fine-tune").id


def _create(client: openai.OpenAI, training: str, **body: Any) -> Any:
    extra = {"trainingType": body.pop("trainingType", "GlobalStandard")}
    return client.fine_tuning.jobs.create(model=body.pop("model", BASE), training_file=training,
                                          extra_body=extra, **body)


def test_v1_job_lifecycle_pending_ids_and_nulls(azure: Emulator, clock: Clock) -> None:
    client = v1_client(azure)
    training = _training(client)
    job = _create(client, training, suffix="sb_1-x")
    assert re.fullmatch(r"ftjob-[0-9a-f]{32}", job.id)
    assert (job.status, job.organization_id, job.result_files) == ("pending", None, None)
    clock.now += 15
    assert client.fine_tuning.jobs.retrieve(job.id).status == "pending"  # OpenAI: queued
    clock.now += 10
    assert client.fine_tuning.jobs.retrieve(job.id).status == "running"
    clock.now += 100
    done = client.fine_tuning.jobs.retrieve(job.id)
    assert done.status == "succeeded"
    assert done.fine_tuned_model == f"{BASE}.ft-{job.id.removeprefix('ftjob-')}-sb_1-x"
    parsed = parse_fine_tuned(done.fine_tuned_model)
    assert parsed is not None and parsed.azure and parsed.suffix == "sb_1-x"
    assert parsed.base == BASE
    assert done.result_files is not None and len(done.result_files) == 1
    assert done.organization_id is None
    assert [j.status for j in client.fine_tuning.jobs.list()] == ["succeeded"]
    ckpt = client.fine_tuning.jobs.checkpoints.list(job.id).data[0]
    assert ckpt.fine_tuned_model_checkpoint.startswith(done.fine_tuned_model + ":ckpt-step-")
    assert any("succeeded" in e.message or "completed" in e.message
               for e in client.fine_tuning.jobs.list_events(job.id))
    # A fine-tune of the fine-tune is accepted; its model names the root base.
    again = _create(client, training, model=done.fine_tuned_model, trainingType="standard")
    assert again.model == done.fine_tuned_model
    assert client.fine_tuning.jobs.cancel(again.id).status == "cancelled"
    paths = {e["path"] for e in azure.requests()}
    assert "/openai/v1/fine_tuning/jobs" in paths
    assert all(e["query"] == "" for e in azure.requests())  # no api-version on v1


def test_v1_training_type_is_required_with_azures_misleading_error(azure: Emulator) -> None:
    client = v1_client(azure)
    training = _training(client)
    with pytest.raises(openai.BadRequestError) as caught:
        client.fine_tuning.jobs.create(model=BASE, training_file=training)
    assert caught.value.body == {"code": "invalidPayload",
                                 "message": "The specified base model does not support "
                                            "fine-tuning."}
    with pytest.raises(openai.BadRequestError, match="trainingType"):
        _create(client, training, trainingType="Premium")
    for value in ("Standard", "globalstandard", "DEVELOPER", 1):
        assert _create(client, training, trainingType=value).status == "pending"


def test_v1_refuses_aliases_and_bad_suffixes(azure: Emulator) -> None:
    client = v1_client(azure)
    training = _training(client)
    with pytest.raises(openai.BadRequestError) as caught:
        _create(client, training, model="gpt-4.1")
    assert caught.value.code == "invalidPayload"
    for suffix in ("x" * 41, "has.dot", "has space", ""):
        with pytest.raises(openai.BadRequestError, match="40 characters"):
            _create(client, training, suffix=suffix)
    assert _create(client, training, suffix="y" * 40).user_provided_suffix == "y" * 40


def test_v1_auth_takes_api_key_or_bearer_and_no_api_version(azure: Emulator) -> None:
    url = azure.azure_v1_url + "files"
    assert raw_request(url, headers={"api-key": "k"}).status == 200
    assert raw_request(url, headers={"Authorization": "Bearer entra-or-key"}).status == 200
    refused = raw_request(url)
    assert refused.status == 401
    assert refused.json()["error"]["code"] == "401"
    assert v1_client(azure, api_key="any").models.list().data


def test_api_version_surface_keeps_its_ways_unless_azure_rules(clock: Clock) -> None:
    query = "?api-version=2025-04-01-preview"
    body = (b'{"model": "gpt-4o-mini", "training_file": "file-x"}')
    with Emulator(flavor="azure", azure_rules=True) as emu:
        raw = raw_request(emu.url + "/openai/fine_tuning/jobs" + query, "POST", body=body,
                          headers={"api-key": "k", "Content-Type": "application/json"})
        assert (raw.status, raw.json()["error"]["code"]) == (400, "invalidPayload")
    with Emulator(flavor="azure") as emu:
        raw = raw_request(emu.url + "/openai/fine_tuning/jobs" + query, "POST", body=body,
                          headers={"api-key": "k", "Content-Type": "application/json"})
        assert raw.json()["error"]["message"] == "invalid training_file: no such file file-x"


def test_drop_metadata_accepts_and_forgets(clock: Clock) -> None:
    with Emulator(job_seconds=0, drop_metadata=True, clock=clock) as emu:
        client = openai.OpenAI(base_url=emu.base_url, api_key="k", max_retries=0,
                               http_client=loopback_http_client())
        training = _training(client)
        labels = {"ftops_model": "bot"}
        job = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18",
                                             training_file=training, metadata=labels)
        assert job.metadata is None
        assert client.fine_tuning.jobs.retrieve(job.id).metadata is None
        assert client.fine_tuning.jobs.list(metadata=labels).data == []
        assert [j.id for j in client.fine_tuning.jobs.list()] == [job.id]


def test_cli_emulator_serves_v1_and_drops_metadata() -> None:
    from conftest import cli_emulator

    pattern = r"v1 API at (http://127\.0\.0\.1:\d+/openai/v1/),"
    with cli_emulator("--flavor", "azure", "--drop-metadata", "--job-seconds", "0",
                      url=pattern) as url:
        client = openai.OpenAI(base_url=url, api_key="k", max_retries=0,
                               http_client=loopback_http_client())
        job = _create(client, _training(client), metadata={"a": "b"})
        assert job.metadata is None
