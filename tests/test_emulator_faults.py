"""Fault injection: each mode on demand, seeded reproducibility, and what the SDK makes of it."""

from __future__ import annotations

import time

import openai
import pytest
from conftest import make_chat_jsonl, raw_request, sdk_client

from ftops.emulator import FAULT_MODES, Emulator
from ftops.emulator.faults import FaultInjector, parse_modes, retry_headers
from ftops.errors import FtopsError

AUTH = {"Authorization": "Bearer sk-test"}


@pytest.mark.parametrize(
    ("mode", "kind", "exc"),
    [
        ("429", "requests", openai.RateLimitError),
        ("500", "server_error", openai.InternalServerError),
        ("503", "server_error", openai.InternalServerError),
    ],
)
def test_status_faults(mode: str, kind: str, exc: type[openai.APIStatusError]) -> None:
    with Emulator(fault_rate=1.0, faults=[mode]) as emu:
        raw = raw_request(emu.base_url + "/models", headers=AUTH)
        assert raw.status == int(mode)
        assert raw.json()["error"]["type"] == kind
        assert ("retry-after" in raw.headers) == (mode in ("429", "503"))
        with pytest.raises(exc) as err:
            sdk_client(emu.base_url).files.create(file=("a.jsonl", b"{}\n"), purpose="fine-tune")
        assert err.value.status_code == int(mode)
        # Nothing was created, and the control endpoint is never faulted.
        control = raw_request(emu.url + "/_emulator/requests")
        assert control.status == 200
        assert [(e["status"], e["fault"]) for e in control.json()] == [(int(mode), mode)] * 2
    assert raw.headers.get("retry-after") in (None, "1")


def test_retry_after_is_honoured_and_the_sdk_recovers() -> None:
    # The one test that waits: it proves the SDK honours the default advice (the others send 0).
    with Emulator(fault_rate=0.5, faults=["429"], seed=3) as emu:
        client = sdk_client(emu.base_url, max_retries=10)
        started = time.monotonic()
        ids = [
            client.files.create(file=("a.jsonl", b"{}\n"), purpose="fine-tune").id for _ in range(3)
        ]
        elapsed = time.monotonic() - started
        statuses = [e["status"] for e in emu.requests()]
    limited = statuses.count(429)
    assert limited >= 1 and statuses.count(200) == 3
    assert elapsed >= 0.2 * limited  # retry-after-ms: 200 was waited for each time
    assert len(set(ids)) == 3


def test_retry_after_zero_lets_the_sdk_retry_at_once() -> None:
    with Emulator(fault_rate=1.0, faults=["503"], retry_after=0) as emu:
        raw = raw_request(emu.base_url + "/models", headers=AUTH)
    assert (raw.headers["retry-after"], raw.headers["retry-after-ms"]) == ("0", "1")
    with Emulator(fault_rate=0.5, faults=["429", "503"], seed=3, retry_after=0) as emu:
        client = sdk_client(emu.base_url, max_retries=10)
        started = time.monotonic()
        for _ in range(4):
            client.files.create(file=("a.jsonl", b"{}\n"), purpose="fine-tune")
        elapsed = time.monotonic() - started
        statuses = [e["status"] for e in emu.requests()]
    retried = len(statuses) - statuses.count(200)
    assert retried >= 3 and statuses.count(200) == 4
    # Under the SDK's own backoff (what a literal retry-after-ms: 0 gets) each retry waits at
    # least 0.375 s; 1 ms per retry stays far below that even on a loaded machine.
    assert elapsed < 0.375 * retried


def test_retry_headers_round_up_and_never_ask_the_sdk_for_zero() -> None:
    assert retry_headers(1) == {"Retry-After": "1", "retry-after-ms": "200"}  # as always
    assert retry_headers(0) == {"Retry-After": "0", "retry-after-ms": "1"}
    assert retry_headers(2.5) == {"Retry-After": "3", "retry-after-ms": "500"}
    with pytest.raises(FtopsError, match="non-negative"):
        Emulator(retry_after=-1)


def test_drop_closes_the_connection_without_a_response() -> None:
    with Emulator(fault_rate=1.0, faults=["drop"]) as emu:
        with pytest.raises(openai.APIConnectionError):
            sdk_client(emu.base_url).files.create(file=("a.jsonl", b"{}\n"), purpose="fine-tune")
        expected = [
            {"method": "POST", "path": "/v1/files", "query": "", "status": None, "fault": "drop"}
        ]
        assert emu.requests() == expected
        # The control endpoint answers even when every API request is dropped.
        assert raw_request(emu.url + "/_emulator/requests").json() == expected


def test_500_after_create_makes_sdk_retries_duplicate() -> None:
    with Emulator(fault_rate=1.0, faults=["500-after-create"]) as emu:
        client = sdk_client(emu.base_url, max_retries=1)
        with pytest.raises(openai.InternalServerError):
            client.files.create(file=("a.jsonl", make_chat_jsonl()), purpose="fine-tune")
        # Reads are not creates, so they pass: the "failed" create happened twice.
        files = client.files.list().data
        assert len(files) == 2 and files[0].bytes == files[1].bytes
        with pytest.raises(openai.InternalServerError):
            client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=files[0].id)
        assert len(client.fine_tuning.jobs.list().data) == 2
        assert [(e["method"], e["status"], e["fault"]) for e in emu.requests()] == [
            ("POST", 500, "500-after-create"),
            ("POST", 500, "500-after-create"),
            ("GET", 200, None),
            ("POST", 500, "500-after-create"),
            ("POST", 500, "500-after-create"),
            ("GET", 200, None),
        ]


def _statuses(seed: int) -> list[int]:
    with Emulator(fault_rate=0.5, faults=["429", "500", "503"], seed=seed, retry_after=0) as emu:
        return [raw_request(emu.base_url + "/models", headers=AUTH).status for _ in range(30)]


def test_faults_are_seeded_and_reproducible() -> None:
    first, again, other = _statuses(1), _statuses(1), _statuses(2)
    assert first == again
    assert first != other
    assert set(first) == {200, 429, 500, 503}


def test_injector_draws() -> None:
    injector = FaultInjector(rate=1.0, modes=["500-after-create"], seed=0)
    assert injector.draw(creates=False) is None
    assert injector.draw(creates=True) == "500-after-create"
    assert FaultInjector(rate=0.0, modes=FAULT_MODES, seed=0).draw(creates=True) is None
    everything = FaultInjector(rate=1.0, modes=FAULT_MODES, seed=5)
    assert {everything.draw(creates=True) for _ in range(200)} == set(FAULT_MODES)


def test_bad_fault_settings_are_user_errors() -> None:
    assert parse_modes("drop, 429") == ("429", "drop")
    with pytest.raises(FtopsError, match="unknown fault mode"):
        parse_modes("429,boom")
    with pytest.raises(FtopsError, match="between 0 and 1"):
        Emulator(fault_rate=1.5)


def test_latency_delays_api_requests_only() -> None:
    with Emulator(latency_ms=150) as emu:
        started = time.monotonic()
        raw_request(emu.base_url + "/models", headers=AUTH)
        assert time.monotonic() - started >= 0.15
        started = time.monotonic()
        raw_request(emu.url + "/_emulator/requests")
        assert time.monotonic() - started < 0.15


def test_retry_after_zero_is_advised_with_injected_500s_too() -> None:
    """At the default, a 500 advises nothing (as the real service); asked for no wait, the
    emulator advises 1 ms with injected 500s too, so SDKs retry them without their back-off."""
    with Emulator(fault_rate=1.0, faults=["500"], retry_after=0) as emu:
        raw = raw_request(emu.base_url + "/models", headers=AUTH)
    assert raw.status == 500 and raw.headers["retry-after-ms"] == "1"
    with Emulator(fault_rate=0.5, faults=["500"], seed=3, retry_after=0) as emu:
        client = sdk_client(emu.base_url, max_retries=10)
        started = time.monotonic()
        for _ in range(4):
            client.models.list()
        elapsed = time.monotonic() - started
        retried = sum(1 for e in emu.requests() if e["status"] == 500)
    assert retried >= 3
    assert elapsed < 0.375 * retried  # the SDK's own back-off waits at least 0.375 s a retry
