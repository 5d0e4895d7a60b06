"""The emulator is as strict as the service and survives anything a client sends.

Bad input never gets a 5xx: hostile JSON (deep nesting, non-finite numbers), oversized forms
and werkzeug's own HTTP errors are 4xx answers in the API's error shape, logged like any other
request. The request log is bounded, with running totals, and the CLI server cleans up its
temporary state on SIGTERM as on Ctrl+C.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import openai
import pytest
from conftest import cli_emulator, make_chat_jsonl, raw_request, sdk_client

from ftops.emulator import Emulator
from ftops.emulator.common import MAX_JSON_BODY
from ftops.errors import FtopsError

AUTH = {"Authorization": "Bearer sk-test", "Content-Type": "application/json"}
AZURE_AUTH = {"api-key": "k", "Content-Type": "application/json"}
AZURE_QUERY = "?api-version=2025-04-01-preview"
OPENAI_ERROR_KEYS = {"message", "type", "param", "code"}


def strict_loads(body: bytes) -> Any:
    """JSON as RFC 8259 defines it: no NaN or Infinity (Python's json accepts them)."""

    def refuse(constant: str) -> None:
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(body, parse_constant=refuse)


def assert_openai_error(body: bytes, *, kind: str = "invalid_request_error") -> dict[str, Any]:
    error = strict_loads(body)["error"]
    assert set(error) == OPENAI_ERROR_KEYS
    assert error["type"] == kind and error["message"]
    return dict(error)


def multipart(fields: list[tuple[str, bytes]], boundary: str = "b0undary") -> bytes:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value
        + b"\r\n"
        for name, value in fields
    ]
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


# 1. No 5xx from bad input ----------------------------------------------------------------------
@pytest.mark.parametrize("flavor", ["openai", "azure"])
def test_deeply_nested_json_is_a_400_in_openai_shape(flavor: str) -> None:
    with Emulator(flavor=flavor) as emu:
        url, headers = (
            (emu.base_url + "/fine_tuning/jobs", AUTH)
            if flavor == "openai"
            else (emu.base_url + "/fine_tuning/jobs" + AZURE_QUERY, AZURE_AUTH)
        )
        for body in (b"[" * 100_000, b'{"model": ' * 50_000, b"[" * 200 + b"]" * 200):
            raw = raw_request(url, "POST", body=body, headers=headers)
            assert raw.status == 400, raw.body[:200]
            assert raw.headers["content-type"] == "application/json"
            assert_openai_error(raw.body)
        assert [e["status"] for e in emu.requests()] == [400, 400, 400]


@pytest.mark.parametrize(
    "literal", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1" + "0" * 400]
)
def test_non_finite_or_overflowing_numbers_are_refused(emulator: Emulator, literal: str) -> None:
    training = sdk_client(emulator.base_url).files.create(
        file=("t.jsonl", make_chat_jsonl()), purpose="fine-tune"
    ).id
    job = (
        '{"model": "gpt-4o-mini", "training_file": "' + training + '", '
        '"hyperparameters": {"learning_rate_multiplier": N}}'
    )
    requests = [
        ("/fine_tuning/jobs", job),
        ("/uploads", '{"bytes": N, "filename": "a", "mime_type": "text/plain", '
                     '"purpose": "batch"}'),
        ("/chat/completions", '{"model": "gpt-4o-mini", "temperature": N, '
                              '"messages": [{"role": "user", "content": "hi"}]}'),
    ]
    for path, body in requests:
        body = body.replace(": N", f": {literal}")
        raw = raw_request(emulator.base_url + path, "POST", body=body.encode(), headers=AUTH)
        assert raw.status == 400, (path, raw.body[:300])
        assert_openai_error(raw.body)
    # Nothing was stored, so nothing can be echoed later.
    listed = raw_request(emulator.base_url + "/fine_tuning/jobs", headers=AUTH)
    assert strict_loads(listed.body)["data"] == []


def test_an_oversized_form_field_is_a_logged_413_the_sdk_does_not_retry(
    emulator: Emulator,
) -> None:
    # werkzeug refuses a text field over 500 kB (Request.max_form_memory_size).
    with sdk_client(emulator.base_url, max_retries=2) as client, \
            pytest.raises(openai.APIStatusError) as err:
        client.files.create(file=("t.jsonl", make_chat_jsonl()), purpose="x" * 600_000)  # type: ignore[arg-type]
    assert err.value.status_code == 413
    assert_openai_error(err.value.response.content)
    assert [(e["path"], e["status"]) for e in emulator.requests()] == [("/v1/files", 413)]


@pytest.mark.parametrize("flavor", ["openai", "azure"])
def test_too_many_form_parts_is_a_413_in_the_flavours_shape(flavor: str) -> None:
    body = multipart([("purpose", b"batch")] * 1_001)
    with Emulator(flavor=flavor) as emu:
        headers = {"Content-Type": "multipart/form-data; boundary=b0undary"}
        url = emu.base_url + "/files"
        if flavor == "azure":
            headers["api-key"] = "k"
            url += AZURE_QUERY
        else:
            headers["Authorization"] = "Bearer sk-test"
        raw = raw_request(url, "POST", body=body, headers=headers)
        assert raw.status == 413
        assert raw.headers["content-type"] == "application/json"
        assert raw.headers["x-ftops-emulator"] == flavor
        if flavor == "openai":
            assert_openai_error(raw.body)
        else:  # Azure's gateway answers what never reaches the service: {code, message}
            error = strict_loads(raw.body)["error"]
            assert set(error) == {"code", "message"} and error["code"] == "413"
        assert [e["status"] for e in emu.requests()] == [413]


def test_a_json_body_over_the_emulators_limit_is_a_413(emulator: Emulator) -> None:
    body = b'{"model": "' + b"x" * MAX_JSON_BODY + b'"}'
    raw = raw_request(emulator.base_url + "/fine_tuning/jobs", "POST", body=body, headers=AUTH)
    assert raw.status == 413
    assert_openai_error(raw.body)
    # Chunked, so no Content-Length announces the size: werkzeug would cut the body at the limit.
    conn = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=30)
    try:
        chunks = (body[i : i + (1 << 20)] for i in range(0, len(body), 1 << 20))
        conn.request("POST", "/v1/fine_tuning/jobs", body=chunks, headers=AUTH,
                     encode_chunked=True)
        response = conn.getresponse()
        assert response.status == 413
        assert_openai_error(response.read())
    finally:
        conn.close()
    assert [e["status"] for e in emulator.requests()] == [413, 413]


def test_a_deeply_nested_training_line_is_refused_not_a_crash(emulator: Emulator) -> None:
    # A training file is data, not a request body, yet its lines are parsed as JSON too: the
    # file is refused on upload or the job fails, never a 500.
    client = sdk_client(emulator.base_url)
    data = make_chat_jsonl(10) + b"[" * 100_000 + b"\n"
    try:
        training = client.files.create(file=("t.jsonl", data), purpose="fine-tune").id
        job = client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=training)
    except openai.BadRequestError:
        return
    assert client.fine_tuning.jobs.retrieve(job.id).status == "failed"


# 5. Bounded memory -----------------------------------------------------------------------------
def test_the_request_log_keeps_the_last_entries_and_totals_all() -> None:
    with Emulator(log_size=3) as emu:
        for _ in range(4):
            raw_request(emu.base_url + "/models", headers=AUTH)
        raw_request(emu.base_url + "/files/file-x", headers=AUTH)
        raw_request(emu.base_url + "/files", "POST", headers={})
        logged = raw_request(emu.url + "/_emulator/requests").json()
        assert [(e["method"], e["status"]) for e in logged] == [
            ("GET", 200), ("GET", 404), ("POST", 401)
        ]
        assert emu.requests() == logged
        stats = raw_request(emu.url + "/_emulator/stats").json()
        assert stats == emu.stats()
    assert stats == {
        "object": "emulator.stats",
        "requests": 6,
        "logged": 3,
        "log_size": 3,
        "by_method": {"GET": 5, "POST": 1},
        "by_status": {"200": 4, "401": 1, "404": 1},
        "by_fault": {},
        "in_flight": 0,
        "in_flight_peak": 1,
    }


def test_log_size_is_validated_and_the_cli_takes_it() -> None:
    with pytest.raises(FtopsError):
        Emulator(log_size=-1)
    with cli_emulator("--log-size", "1") as url:
        for path in ("/models", "/files"):
            raw_request(url + path, headers=AUTH)
        base = url.removesuffix("/v1")
        assert [e["path"] for e in raw_request(base + "/_emulator/requests").json()] == [
            "/v1/files"
        ]
        assert raw_request(base + "/_emulator/stats").json()["requests"] == 2


def test_sigterm_stops_the_cli_emulator_and_removes_its_temp_state(tmp_path: Path) -> None:
    ftops = Path(sys.executable).parent / "ftops"
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen(
        [str(ftops), "emulator", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert proc.stdout is not None
        found = re.search(r"serving (http://\S+/v1)", proc.stdout.readline())
        assert found
        # An answer means serve_forever runs, and with it the SIGTERM handler: the banner is
        # printed just before, and a SIGTERM in between would still end the process at once.
        assert raw_request(found.group(1) + "/models", headers=AUTH).status == 200
        assert [p.name[:15] for p in tmp_path.iterdir()] == ["ftops-emulator-"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert (proc.returncode, err) == (0, "")
    assert "stopped" in out
    assert list(tmp_path.iterdir()) == []
