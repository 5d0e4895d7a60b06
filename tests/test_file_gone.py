"""A training file deleted between its upload and the job create (by hand, or by a concurrent
apply keeping its own copy) is one provider-neutral ``FileGone`` on every provider type, and
apply uploads the dataset again once and creates the job: each type through its own SDK against
its own emulator dialect, behind a real proxy that deletes the file as the create goes by."""

from __future__ import annotations

import hashlib
import http.client
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from ftops.emulator import Emulator
from ftops.providers import JobRequest
from ftops.providers.base import FileGone
from ftops.providers.registry import connection, make_client
from ftops.spec import Provider
from tests.conftest import make_chat_jsonl, run_cli
from tests.test_engine import Project

pytest.importorskip("together")
pytest.importorskip("fireworks")

KEY_ENV = "GONE_TEST_KEY"
BASES = {"openai": "gpt-4o-mini-2024-07-18", "azure": "gpt-4.1-mini-2025-04-14",
         "nebius": "meta-llama/Llama-3.1-8B-Instruct",
         "together": "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference",
         "fireworks": "accounts/fireworks/models/qwen3-8b"}
# The end of each dialect's job-create path, and where its files live beside it.
CREATES = {"/fine_tuning/jobs": "/files/", "/fine-tunes": "/files/",
           "/supervisedFineTuningJobs": "/datasets/"}
_HOP = {"host", "content-length", "transfer-encoding", "connection"}


class Deleter:
    """A real HTTP proxy in front of an emulator that, as the first job create goes by,
    deletes the training file it names (with the caller's own credentials), then forwards it."""

    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        self.deleted: list[str] = []
        deleter = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, method: str, path: str, body: bytes | None) -> tuple[
                    int, list[tuple[str, str]], bytes]:
                conn = http.client.HTTPConnection(target.hostname or "", target.port, timeout=10)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                conn.request(method, path, body=body, headers=headers)
                reply = conn.getresponse()
                answer = reply.status, reply.getheaders(), reply.read()
                conn.close()
                return answer

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?", 1)[0]
                end = next((e for e in CREATES if path.endswith(e)), None)
                if self.command == "POST" and end and not deleter.deleted:
                    sent = json.loads(body)
                    file_id = str(sent.get("training_file") or sent["dataset"]).rsplit("/")[-1]
                    gone = path[:-len(end)] + CREATES[end] + file_id
                    status, _, _ = self._send("DELETE", gone, None)
                    assert status == 200, status
                    deleter.deleted.append(file_id)
                status, headers, data = self._send(self.command, self.path, body or None)
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in _HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.01,),
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(KEY_ENV, "sk-gone-test")
    yield


def provider(kind: str, emu: Emulator, proxy: Deleter) -> dict[str, Any]:
    if kind == "azure":
        return {"type": "azure", "endpoint": proxy.url, "api_key_env": KEY_ENV}
    entry = {"type": kind, "base_url": proxy.url + emu.base_url[len(emu.url):],
             "api_key_env": KEY_ENV}
    return {**entry, "account": "acme"} if kind == "fireworks" else entry


@pytest.mark.parametrize("kind", list(BASES))
def test_a_file_deleted_before_the_create_is_uploaded_again_once(
        tmp_path: Path, kind: str, key: None) -> None:
    with Emulator(flavor=kind, job_seconds=0, retry_after=0) as emu:
        proxy = Deleter(emu.url)
        try:
            project = Project(tmp_path / "repo")
            (project.specs / "data").mkdir(parents=True, exist_ok=True)
            (project.specs / "data" / "train.jsonl").write_bytes(make_chat_jsonl(12, tag="g"))
            spec = {"datasets": {"train": {"path": "data/train.jsonl"}},
                    "providers": {"p": provider(kind, emu, proxy)},
                    "models": {"bot": {"base": BASES[kind], "training": "train",
                                       "provider": "p"}}}
            (project.specs / "ftops.yaml").write_text(yaml.safe_dump(spec))
            project.commit()
            applied = run_cli(project.specs, "apply", "--auto-approve")
        finally:
            proxy.close()
        assert applied.exit_code == 0, applied.output
        assert len(proxy.deleted) == 1
        assert "data/train.jsonl is gone from p: uploading it again" in applied.output
        assert "1 started" in applied.output, applied.output
        creates = [r for r in emu.requests() if r["method"] == "POST"
                   and any(r["path"].endswith(e) for e in CREATES)]
        assert [r["status"] for r in creates][-1] == 200 and len(creates) == 2, creates


@pytest.mark.parametrize("kind", list(BASES))
def test_create_job_on_a_deleted_file_is_file_gone_on_every_type(
        tmp_path: Path, kind: str, key: None) -> None:
    """What apply keys on, whatever the SDK: ``FileGone`` naming the field, one line."""
    data = tmp_path / "train.jsonl"
    data.write_bytes(make_chat_jsonl(12, tag="u"))
    sha = hashlib.sha256(data.read_bytes()).hexdigest()
    with Emulator(flavor=kind, job_seconds=0, retry_after=0) as emu:
        entry = Provider(name="p", type=kind, file="ftops.yaml", line=1, api_key_env=KEY_ENV,
                         base_url=None if kind == "azure" else emu.base_url,
                         endpoint=emu.url if kind == "azure" else None, api_version=None,
                         account="acme" if kind == "fireworks" else None)
        account = connection(entry, make_client(entry, max_retries=0)).remote("acme/models")
        uploaded = account.upload(data, sha)
        account.delete_file(uploaded.id)
        with pytest.raises(FileGone) as raised:
            account.create_job(JobRequest(
                model=BASES[kind], training_file=uploaded.id, validation_file=None,
                method="supervised", hyperparameters={}, suffix=None, seed=None,
                metadata={}, training_type="globalstandard" if kind == "azure" else None))
    assert raised.value.param == "training_file"
    assert uploaded.id in str(raised.value) and "\n" not in str(raised.value)
