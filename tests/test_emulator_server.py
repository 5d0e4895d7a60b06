"""The emulator as a server: auth, routing, request log, models, persistence, CLI and demo."""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path

import click
import openai
import pytest
from click.testing import CliRunner
from conftest import cli_emulator, make_chat_jsonl, raw_request, sdk_client

from ftops.cli import main
from ftops.emulator import Emulator
from ftops.errors import FtopsError


def test_missing_key_is_401_with_openai_error_body(emulator: Emulator) -> None:
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Basic abc"}):
        raw = raw_request(emulator.base_url + "/files", headers=headers)
        assert raw.status == 401
        error = raw.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["type"] == "invalid_request_error"
        assert error["message"].startswith("You didn't provide an API key.")
    assert [e["status"] for e in emulator.requests()] == [401, 401, 401]


def test_key_is_never_echoed_or_logged(emulator: Emulator) -> None:
    secret = "sk-very-secret-value"
    raw = raw_request(
        emulator.base_url + "/files/file-x", headers={"Authorization": f"Bearer {secret}"}
    )
    assert raw.status == 404
    assert secret not in raw.body.decode()
    assert secret not in json.dumps(emulator.requests())


def test_unknown_route_and_method(emulator: Emulator) -> None:
    auth = {"Authorization": "Bearer k"}
    raw = raw_request(emulator.base_url + "/chat/nothing", headers=auth)
    assert raw.status == 404
    assert raw.json()["error"]["message"] == "Invalid URL (GET /v1/chat/nothing)"
    assert raw_request(emulator.base_url + "/files", "PUT", headers=auth).status == 404
    assert raw_request(emulator.url + "/_emulator/nothing").status == 404


def test_request_log_records_method_path_query_status(
    emulator: Emulator, client: openai.OpenAI
) -> None:
    client.files.list(purpose="fine-tune", limit=5)
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.retrieve("ftjob-x")
    expected = [
        {
            "method": "GET",
            "path": "/v1/files",
            "query": "limit=5&purpose=fine-tune",
            "status": 200,
            "fault": None,
        },
        {
            "method": "GET",
            "path": "/v1/fine_tuning/jobs/ftjob-x",
            "query": "",
            "status": 404,
            "fault": None,
        },
    ]
    assert emulator.requests() == expected
    # Over HTTP too, and reading the log does not add to it.
    assert raw_request(emulator.url + "/_emulator/requests").json() == expected
    assert raw_request(emulator.url + "/_emulator/requests").json() == expected


def test_models_list_retrieve_delete(client: openai.OpenAI) -> None:
    models = {m.id: m for m in client.models.list()}
    mini = models["gpt-4o-mini-2024-07-18"]
    assert (mini.owned_by, mini.shutdown_date) == ("system", "2027-01-14")
    assert models["gpt-4o-mini"].shutdown_date == "2027-01-14"
    assert models["gpt-4.1-nano-2025-04-14"].shutdown_date is None
    assert client.models.retrieve("gpt-4o-mini-2024-07-18") == mini

    training = client.files.create(file=("t.jsonl", make_chat_jsonl()), purpose="fine-tune").id
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=training)
    tuned = client.fine_tuning.jobs.retrieve(job.id).fine_tuned_model
    assert tuned is not None
    assert tuned in {m.id for m in client.models.list()}
    assert client.models.retrieve(tuned).id == tuned

    with pytest.raises(openai.PermissionDeniedError):
        client.models.delete("gpt-4o-mini")
    deleted = client.models.delete(tuned)
    assert (deleted.id, deleted.deleted) == (tuned, True)
    with pytest.raises(openai.NotFoundError) as err:
        client.models.retrieve(tuned)
    assert err.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.models.delete(tuned)
    # The job keeps naming the model it produced.
    assert client.fine_tuning.jobs.retrieve(job.id).fine_tuned_model == tuned


def test_state_persists_across_restarts(tmp_path: Path) -> None:
    state = tmp_path / "emulator.json"
    clock = [1_800_000_000.0]
    data = make_chat_jsonl(11)
    with Emulator(state_path=state, job_seconds=100, clock=lambda: clock[0]) as emu:
        client = sdk_client(emu.base_url)
        training = client.files.create(file=("t.jsonl", data), purpose="fine-tune").id
        job = client.fine_tuning.jobs.create(
            model="gpt-4o-mini", training_file=training, metadata={"k": "v"}
        ).id
    saved = json.loads(state.read_text())
    assert [j["id"] for j in saved["jobs"]] == [job]
    assert (tmp_path / "emulator.json.blobs" / training).read_bytes() == data
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))

    clock[0] += 150  # the job finishes while the emulator is down
    with Emulator(state_path=state, job_seconds=0, clock=lambda: clock[0]) as emu:
        client = sdk_client(emu.base_url)
        done = client.fine_tuning.jobs.retrieve(job)
        assert done.status == "succeeded"
        assert done.finished_at == (1_800_000_000 + 100)
        assert client.files.content(training).read() == data
        assert [j.id for j in client.fine_tuning.jobs.list(metadata={"k": "v"})] == [job]
        newer = client.files.create(file=("u.jsonl", b"x"), purpose="batch").id
    assert newer != training

    with Emulator(state_path=state) as emu:
        client = sdk_client(emu.base_url)
        assert {f.id for f in client.files.list()} == {training, newer, *done.result_files}
        assert done.fine_tuned_model in {m.id for m in client.models.list()}


def test_pending_upload_and_paused_job_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "emulator.json"
    clock = [1_800_000_000.0]
    with Emulator(state_path=state, job_seconds=100, clock=lambda: clock[0]) as emu:
        client = sdk_client(emu.base_url)
        upload = client.uploads.create(
            bytes=6, filename="u.jsonl", mime_type="text/jsonl", purpose="batch"
        )
        first = client.uploads.parts.create(upload.id, data=b"abc")
        training = client.files.create(file=("t.jsonl", make_chat_jsonl()), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=training.id)
        clock[0] += 30
        assert sdk_client(emu.base_url, strict=False).fine_tuning.jobs.pause(job.id).status == (
            "paused"
        )

    clock[0] += 1000
    with Emulator(state_path=state, job_seconds=100, clock=lambda: clock[0]) as emu:
        client = sdk_client(emu.base_url)
        second = client.uploads.parts.create(upload.id, data=b"def")
        done = client.uploads.complete(upload.id, part_ids=[first.id, second.id])
        assert done.file is not None
        assert client.files.content(done.file.id).read() == b"abcdef"
        lax = sdk_client(emu.base_url, strict=False)
        assert lax.fine_tuning.jobs.retrieve(job.id).status == "paused"
        resumed = client.fine_tuning.jobs.resume(job.id)
        assert resumed.estimated_finish == int(clock[0] + 70)  # 30 of 100 s were done


def test_seed_fixes_the_ids() -> None:
    def first_ids(seed: int) -> tuple[str, str]:
        with Emulator(seed=seed, job_seconds=0) as emu:
            client = sdk_client(emu.base_url)
            training = client.files.create(file=("t.jsonl", make_chat_jsonl()), purpose="fine-tune")
            job = client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=training.id)
            return training.id, job.id

    assert first_ids(7) == first_ids(7)
    assert first_ids(7)[0] != first_ids(8)[0]


def test_a_failure_inside_the_emulator_is_a_500_and_it_keeps_serving(tmp_path: Path) -> None:
    state = tmp_path / "emulator.json"
    with Emulator(state_path=state) as emu:
        client = sdk_client(emu.base_url)
        training = client.files.create(file=("t.jsonl", make_chat_jsonl()), purpose="fine-tune")
        (tmp_path / "emulator.json.blobs" / training.id).unlink()  # its bytes vanish from disk
        with pytest.raises(openai.InternalServerError) as err:
            client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=training.id)
        assert err.value.body == {
            "message": "The emulator failed on this request (see its log).",
            "type": "server_error",
            "param": None,
            "code": None,
        }
        assert client.fine_tuning.jobs.list().data == []
        assert [e["status"] for e in emu.requests()] == [200, 500, 200]


def test_corrupt_state_is_a_user_error(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("{not json")
    with pytest.raises(FtopsError) as err:
        Emulator(state_path=state)
    assert str(err.value).startswith(f"{state}: cannot read emulator state")


def test_port_in_use_is_a_user_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(FtopsError, match=f"cannot listen on 127.0.0.1:{port}"):
            Emulator(port=port).start()


def test_stop_releases_the_port() -> None:
    emu = Emulator().start()
    port = emu.port
    emu.stop()
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))
    with pytest.raises(RuntimeError):
        emu.base_url  # noqa: B018


def test_cli_emulator_serves_until_interrupted_and_keeps_state(tmp_path: Path) -> None:
    state = tmp_path / "s.json"
    with cli_emulator("--state", str(state), "--job-seconds", "0") as url:
        created = sdk_client(url).files.create(file=("t.jsonl", b"{}\n"), purpose="fine-tune")
    assert len(json.loads(state.read_text())["files"]) == 1
    with cli_emulator("--state", str(state)) as url:
        assert [f.id for f in sdk_client(url).files.list()] == [created.id]


def test_cli_emulator_fault_latency_and_seed_options() -> None:
    auth = {"Authorization": "Bearer k"}
    with Emulator(fault_rate=0.5, faults=["429"], seed=4) as emu:
        expected = [raw_request(emu.base_url + "/models", headers=auth).status for _ in range(12)]
    assert set(expected) == {200, 429}
    options = ("--fault-rate", "0.5", "--faults", "429", "--latency-ms", "50", "--seed", "4",
               "--retry-after", "0")
    with cli_emulator(*options) as url:
        started = time.monotonic()
        seen = [raw_request(url + "/models", headers=auth) for _ in range(12)]
        assert time.monotonic() - started >= 12 * 0.05
        log = raw_request(url.removesuffix("/v1") + "/_emulator/requests").json()
    assert [r.status for r in seen] == expected  # same seed, same faults as in-process
    assert {r.headers.get("retry-after") for r in seen if r.status == 429} == {"0"}
    assert [e["status"] for e in log] == expected


def test_cli_emulator_option_defaults() -> None:
    command = main.get_command(click.Context(main), "emulator")
    assert command is not None
    params = command.make_context("emulator", []).params
    expected = {
        "host": "127.0.0.1",
        "port": 8765,
        "state_path": None,
        "job_seconds": 5.0,
        "fault_rate": 0.0,
        "faults": "429,500,503,drop,500-after-create",
        "retry_after": 1.0,
        "latency_ms": 0.0,
        "seed": 0,
    }
    assert {key: params[key] for key in expected} == expected


def test_cli_emulator_bad_options_are_one_line_errors() -> None:
    result = CliRunner().invoke(main, ["emulator", "--faults", "429,nope"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: unknown fault mode(s): nope (choose from 429,500,503,drop,500-after-create)\n"
    )
    # A usage error exits 1: 2 means "changes pending" under --detailed-exitcode.
    assert CliRunner().invoke(main, ["emulator", "--fault-rate", "2"]).exit_code == 1


def test_cli_demo_validates_plans_and_applies_the_demo_specs(monkeypatch) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    result = CliRunner().invoke(main, ["demo", "--job-seconds", "0.3"])
    assert result.exit_code == 0, result.output
    for model in ("support-bot", "support-bot-tone"):
        assert re.search(
            rf"^  {model}: ft:gpt-4o-mini-2024-07-18:emulator:{model}:\w{{8}}$", result.output, re.M
        ), result.output
    assert "Plan: 3 to upload, 1 to train, 0 to replace, 0 to delete, 1 blocked." in result.output
    assert "No changes. The account matches the specs." in result.output


def _upload_in_parts(client: openai.OpenAI, data: bytes, part: int) -> str:
    upload = client.uploads.create(
        bytes=len(data), filename="t.jsonl", mime_type="text/jsonl", purpose="fine-tune"
    )
    part_ids = [client.uploads.parts.create(upload.id, data=data[i : i + part]).id
                for i in range(0, len(data), part)]
    done = client.uploads.complete(upload.id, part_ids=part_ids)
    assert done.file is not None
    return done.file.id


def test_file_from_parts_reads_trains_persists_and_outlives_deletion(tmp_path: Path) -> None:
    # A completed upload keeps its parts as segments: every reader must see one file.
    state = tmp_path / "emulator.json"
    data = make_chat_jsonl(12, tag=" parts")
    bad = make_chat_jsonl(12, bad_line=7)
    with Emulator(state_path=state, job_seconds=0) as emu:
        client = sdk_client(emu.base_url)
        file_id = _upload_in_parts(client, data, 333)  # lines cross part boundaries
        bad_id = _upload_in_parts(client, bad, 333)
    with Emulator(state_path=state, job_seconds=0) as emu:
        client = sdk_client(emu.base_url)
        assert client.files.content(file_id).read() == data
        bad_job = client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=bad_id)
        failed = client.fine_tuning.jobs.retrieve(bad_job.id)
        assert failed.status == "failed" and failed.error is not None
        assert "line 7" in (failed.error.message or "")
        job = client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=file_id)
        client.files.delete(file_id)
        tuned = client.fine_tuning.jobs.retrieve(job.id).fine_tuned_model
        assert tuned is not None
        reply = client.chat.completions.create(
            model=tuned, messages=[{"role": "user", "content": "Question 9 parts?"}]
        )
        assert reply.choices[0].message.content == "Answer 9 parts."


def test_cli_emulator_started_as_a_background_job_still_stops_on_ctrl_c() -> None:
    """A shell without job control starts ``ftops emulator &`` with SIGINT ignored; the
    emulator, like apply and wait, takes SIGINT itself, so Ctrl+C (here: SIGINT) still stops
    it cleanly rather than never."""
    import signal
    import subprocess
    import sys

    ftops = Path(sys.executable).parent / "ftops"
    proc = subprocess.Popen(["sh", "-c", f'trap "" INT; exec "{ftops}" emulator --port 0'],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert "serving" in proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "stopped" in out
