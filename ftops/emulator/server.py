"""The HTTP side of the emulator: auth, faults, latency, request log, lifecycle. The routing
table of each flavour is in ``routes``."""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import wrap_file

from ftops import clock as ftops_clock  # the calendar day; the `clock` argument is wall time
from ftops.emulator import jobs
from ftops.emulator.common import ApiError, Ctx
from ftops.emulator.faults import (
    FAULT_ERRORS,
    FAULT_MODES,
    RETRY_STATUSES,
    FaultInjector,
    retry_headers,
)
from ftops.emulator.multipart import FormParser
from ftops.emulator.routes import FLAVORS, Route
from ftops.emulator.store import Store
from ftops.errors import FtopsError

_log = logging.getLogger(__name__)


class _Request(Request):
    form_data_parser_class = FormParser


class _Dropped(ConnectionAbortedError):
    """Raised after closing the socket; werkzeug treats it as a dropped connection."""


class _QuietHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: Any) -> None:
        if type != "info":  # per-request lines are noise; keep real errors
            super().log(type, message, *args)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body), status=status, mimetype="application/json", headers=headers or {}
    )


class Emulator:
    """An OpenAI-compatible fine-tuning API on a local port, in-process or blocking (the CLI).

    >>> with Emulator(job_seconds=0) as emu:
    ...     client = openai.OpenAI(base_url=emu.base_url, api_key="any")
    >>> with Emulator(flavor="azure") as emu:
    ...     client = openai.AzureOpenAI(
    ...         azure_endpoint=emu.azure_endpoint, api_version="2025-04-01-preview", api_key="any"
    ...     )

    ``retry_after`` is the wait, in seconds, advised with injected 429 and 503 answers (see
    ``faults.retry_headers``); 0 lets SDK clients in tests retry at once. The flavour also picks
    the provider whose calendar applies (``retirement``), on the day ``ftops.clock`` says it is.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state_path: str | os.PathLike[str] | None = None,
        job_seconds: float = 5.0,
        fault_rate: float = 0.0,
        faults: Iterable[str] = FAULT_MODES,
        latency_ms: float = 0,
        seed: int = 0,
        clock: Callable[[], float] = time.time,
        flavor: str = "openai",
        metadata_filter: bool = True,
        retry_after: float = 1.0,
    ) -> None:
        if job_seconds < 0 or latency_ms < 0:
            raise FtopsError("job seconds and latency must not be negative")
        if flavor not in FLAVORS:
            raise FtopsError(f"unknown emulator flavor '{flavor}'", hint="use openai or azure")
        # The calendar reads FTOPS_TODAY on every request; a malformed value is refused here,
        # at start-up, rather than as a 500 on the first request that consults the day.
        ftops_clock.today()
        self._retry_headers = retry_headers(retry_after)
        self.host = host
        self.job_seconds = float(job_seconds)
        self.latency = latency_ms / 1000
        self._clock = clock
        self._faults = FaultInjector(rate=fault_rate, modes=faults, seed=seed)
        self._store = Store(Path(state_path) if state_path else None, seed=seed)
        for job in self._store.jobs.values():
            jobs.schedule(self._store, job)
        self.flavor = flavor
        self._flavour = FLAVORS[flavor]
        self.metadata_filter = metadata_filter
        self._rules = Map(
            [
                Rule(self._flavour.prefix + r.path, methods=[r.method], endpoint=i)
                for i, r in enumerate(self._flavour.routes)
            ]
        )
        self._lock = threading.Lock()
        self._log: list[dict[str, Any]] = []
        self._requested_port = port
        self._server: ThreadedWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -------------------------------------------------------------------------------
    def listen(self) -> Emulator:
        """Binds the port (idempotent); raises FtopsError when it is taken."""
        if self._server is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        try:
            sock = socket.create_server((self.host, self._requested_port), family=family)
        except OSError as exc:
            raise FtopsError(
                f"cannot listen on {self.host}:{self._requested_port}: {exc.strerror}",
                hint="choose another --port, or stop the program using it",
            ) from exc
        # Handing werkzeug a bound socket keeps its own bind error path (print + exit) away.
        try:
            self._server = ThreadedWSGIServer(
                self.host, 0, self._app, _QuietHandler, fd=sock.fileno()
            )
        finally:
            sock.close()
        return self

    def start(self) -> Emulator:
        """Serves in a background thread; returns once the port accepts connections."""
        server = self.listen()._server
        assert server is not None
        if self._thread is None:
            self._thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serves in this thread until Ctrl+C (werkzeug's loop then returns normally)."""
        server = self.listen()._server
        assert server is not None
        try:
            server.serve_forever(poll_interval=0.2)
        finally:
            self._close()

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._close()

    def _close(self) -> None:
        if self._server is not None:
            self._server.server_close()
            self._server = None
        self._thread = None
        self._store.close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not listening; call start() first")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + self._flavour.prefix

    @property
    def azure_endpoint(self) -> str:
        """What ``openai.AzureOpenAI(azure_endpoint=...)`` takes; only for ``flavor="azure"``."""
        if self.flavor != "azure":
            raise RuntimeError("azure_endpoint needs an emulator started with flavor='azure'")
        return self.url

    def requests(self) -> list[dict[str, Any]]:
        """Every API request served so far, oldest first (``/_emulator/*`` excluded)."""
        with self._lock:
            return [dict(entry) for entry in self._log]

    # requests --------------------------------------------------------------------------------
    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = _Request(environ)
        # werkzeug's documented hook: uploaded files are parsed straight into the blob directory.
        request._get_file_stream = self._store.spool  # type: ignore[method-assign]
        if request.path.startswith("/_emulator/"):
            response = self._control(request)
        else:
            response = self._serve(request, environ)
        # The one place every answer passes, errors and the control endpoint included: a client
        # can tell it talks to the emulator, and whose calendar (``retirement``) it follows.
        response.headers["X-Ftops-Emulator"] = self.flavor
        return response(environ, start_response)

    def _control(self, request: Request) -> Response:
        if request.method == "GET" and request.path == "/_emulator/requests":
            return _json(self.requests())
        error = ApiError(404, f"Invalid URL ({request.method} {request.path})")
        return _json(error.body(), 404)

    def _serve(self, request: Request, environ: dict[str, Any]) -> Response:
        fault: str | None = None
        try:
            if self.latency:
                time.sleep(self.latency)
            self._flavour.admit(request)
            route, args = self._match(request)
            fault = self._faults.draw(creates=route.creates)
            if fault == "drop":
                self._record(request, None, fault)
                environ["werkzeug.socket"].shutdown(socket.SHUT_RDWR)
                raise _Dropped("emulated dropped connection")
            if fault in ("429", "500", "503"):
                raise FAULT_ERRORS[fault]
            # Parse the body before taking the lock: large uploads must not block other clients.
            if request.mimetype == "multipart/form-data":
                request.files  # noqa: B018
            else:
                request.get_data()
            response = self._handle(route, request, args)
            if fault == "500-after-create":
                raise FAULT_ERRORS[fault]
        except ApiError as exc:
            headers = self._retry_headers if exc.status in RETRY_STATUSES else None
            response = _json(exc.body(), exc.status, headers)
        response.headers["x-request-id"] = f"req_{secrets.token_hex(16)}"
        self._record(request, response.status_code, fault)
        return response

    def _match(self, request: Request) -> tuple[Route, dict[str, str]]:
        try:
            index, args = self._rules.bind_to_environ(request.environ).match()
        except HTTPException:
            raise self._flavour.unknown_url(request) from None
        return self._flavour.routes[index], args

    def _handle(self, route: Route, request: Request, args: dict[str, str]) -> Response:
        with self._lock:
            ctx = Ctx(self._store, self._clock(), self.job_seconds,
                      metadata_filter=self.metadata_filter, flavor=self.flavor)
            try:
                jobs.settle(ctx)
                reply = route.handler(ctx, request, **args)
            except ApiError:
                raise
            except FtopsError as exc:  # FTOPS_TODAY made malformed while serving: say so
                raise ApiError(500, f"The emulator cannot serve: {exc}", kind="server_error"
                               ) from None
            except Exception:
                _log.exception("emulator bug while serving %s %s", request.method, request.path)
                raise ApiError(
                    500, "The emulator failed on this request (see its log).", kind="server_error"
                ) from None
            finally:
                self._store.commit()
        if hasattr(reply.body, "read"):
            size = reply.body.seek(0, os.SEEK_END)
            reply.body.seek(0)
            response = Response(
                wrap_file(request.environ, reply.body),
                mimetype="application/octet-stream",
                direct_passthrough=True,
            )
            response.content_length = size
            return response
        return _json(reply.body, reply.status)

    def _record(self, request: Request, status: int | None, fault: str | None) -> None:
        entry = {
            "method": request.method,
            "path": request.path,
            "query": request.query_string.decode("latin-1"),
            "status": status,
            "fault": fault,
        }
        with self._lock:
            self._log.append(entry)
