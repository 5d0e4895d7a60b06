"""The Azure OpenAI flavour, end to end through the real ``openai.AzureOpenAI`` (strict)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from conftest import cli_emulator, loopback_http_client, make_chat_jsonl, raw_request, sdk_client

from ftops.emulator import Emulator
from ftops.errors import FtopsError

API_VERSION = "2025-04-01-preview"


def azure_client(endpoint: str, *, strict: bool = True) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(
        azure_endpoint=endpoint,
        api_version=API_VERSION,
        api_key="az-test-key",
        max_retries=0,
        _strict_response_validation=strict,
        http_client=loopback_http_client(),
    )


@pytest.fixture
def azure() -> Iterator[Emulator]:
    with Emulator(flavor="azure", job_seconds=0) as emu:
        yield emu


def test_fine_tuning_lifecycle_through_the_azure_client(azure: Emulator) -> None:
    client = azure_client(azure.azure_endpoint)
    training = client.files.create(file=("t.jsonl", make_chat_jsonl()), purpose="fine-tune")
    assert client.files.retrieve(training.id).bytes == len(make_chat_jsonl())
    labels = {"ftops_model": "support-bot"}
    job = client.fine_tuning.jobs.create(
        model="gpt-4o-mini-2024-07-18", training_file=training.id, metadata=labels, suffix="sb"
    )
    client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=training.id)

    found = client.fine_tuning.jobs.list(metadata=labels)
    assert [j.id for j in found.data] == [job.id]
    done = client.fine_tuning.jobs.retrieve(job.id)
    assert done.status == "succeeded"
    assert done.fine_tuned_model is not None
    assert done.fine_tuned_model.startswith("ft:gpt-4o-mini-2024-07-18:emulator:sb:")
    assert next(e.message for e in client.fine_tuning.jobs.list_events(job.id)) == (
        "The job has successfully completed"
    )
    assert len(client.fine_tuning.jobs.checkpoints.list(job.id).data) >= 1
    models = {m.id for m in client.models.list()}
    assert {done.fine_tuned_model, "gpt-4o-mini-2024-07-18"} <= models

    paths = [(e["method"], e["path"]) for e in azure.requests()]
    assert paths[:4] == [
        ("POST", "/openai/files"),
        ("GET", f"/openai/files/{training.id}"),
        ("POST", "/openai/fine_tuning/jobs"),
        ("POST", "/openai/fine_tuning/jobs"),
    ]
    assert all(e["query"].startswith(f"api-version={API_VERSION}") for e in azure.requests())
    assert {e["status"] for e in azure.requests()} == {200}


def test_uploads_pause_resume_cancel_through_the_azure_client(tmp_path: Path) -> None:
    data = make_chat_jsonl(12)
    source = tmp_path / "train.jsonl"
    source.write_bytes(data)
    now = [1_800_000_000.0]
    with Emulator(flavor="azure", job_seconds=3600, clock=lambda: now[0]) as emu:
        client = azure_client(emu.azure_endpoint)
        upload = client.uploads.upload_file_chunked(
            file=source, mime_type="application/jsonl", purpose="fine-tune", part_size=100
        )
        assert upload.status == "completed"
        assert upload.file is not None
        assert client.files.content(upload.file.id).read() == data
        job = client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=upload.file.id)
        now[0] += 1800
        lax = azure_client(emu.azure_endpoint, strict=False)  # the SDK's status lacks "paused"
        assert lax.fine_tuning.jobs.pause(job.id).status == "paused"
        assert client.fine_tuning.jobs.resume(job.id).status == "running"
        assert client.fine_tuning.jobs.cancel(job.id).status == "cancelled"
        paths = {e["path"] for e in emu.requests()}
        assert f"/openai/fine_tuning/jobs/{job.id}/pause" in paths
        assert f"/openai/uploads/{upload.id}/complete" in paths


def test_missing_api_version_is_400_with_azure_body(azure: Emulator) -> None:
    raw = raw_request(azure.url + "/openai/files", headers={"api-key": "k"})
    assert raw.status == 400
    assert raw.json() == {
        "error": {
            "code": "MissingApiVersionParameter",
            "message": "The api-version query parameter (?api-version=) is required for all "
            "requests.",
        }
    }
    empty = raw_request(azure.url + "/openai/files?api-version=", headers={"api-key": "k"})
    assert empty.status == 400


def test_missing_key_is_401_with_azure_body_and_the_key_is_never_echoed(azure: Emulator) -> None:
    url = f"{azure.url}/openai/files?api-version={API_VERSION}"
    for headers in ({}, {"api-key": " "}, {"Authorization": "Bearer sk-openai-style"}):
        raw = raw_request(url, headers=headers)
        assert raw.status == 401
        assert set(raw.json()["error"]) == {"code", "message"}
        assert raw.json()["error"]["code"] == "401"
        assert raw.json()["error"]["message"].startswith("Access denied due to invalid")
    # The OpenAI client sends Bearer auth and no api-version: Azure refuses it.
    with pytest.raises(openai.AuthenticationError) as caught:
        sdk_client(azure.url + "/openai").files.list()
    assert caught.value.code == "401"

    secret = "az-very-secret-value"
    raw = raw_request(
        f"{azure.url}/openai/files/file-x?api-version={API_VERSION}", headers={"api-key": secret}
    )
    assert raw.status == 404
    assert secret not in raw.body.decode()
    assert "sk-openai-style" not in str(azure.requests())


def test_unknown_url_is_azure_resource_not_found(azure: Emulator) -> None:
    headers = {"api-key": "k"}
    for path in ("/v1/files", "/openai/nothing", "/openai/chat/completions"):
        raw = raw_request(f"{azure.url}{path}?api-version={API_VERSION}", headers=headers)
        assert (raw.status, raw.json()) == (
            404,
            {"error": {"code": "404", "message": "Resource not found"}},
        )


def test_flavor_is_checked_and_azure_endpoint_needs_the_azure_flavor() -> None:
    with pytest.raises(FtopsError, match="unknown emulator flavor 'gcp'"):
        Emulator(flavor="gcp")
    with Emulator() as emu, pytest.raises(RuntimeError, match="flavor='azure'"):
        emu.azure_endpoint  # noqa: B018


def test_cli_emulator_azure_flavor() -> None:
    with cli_emulator("--flavor", "azure", url=r"azure_endpoint (http://127\.0\.0\.1:\d+) ") as url:
        assert azure_client(url).files.list().data == []
