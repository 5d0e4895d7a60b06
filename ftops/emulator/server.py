"""The HTTP side of the emulator: routing table, auth, faults, latency, request log, lifecycle."""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import wrap_file

from ftops.emulator import azure, chat, files, jobs, models
from ftops.emulator.common import ApiError, Ctx, Handler
from ftops.emulator.faults import FAULT_MODES, FaultInjector
from ftops.emulator.multipart import FormParser
from ftops.emulator.store import Store
from ftops.errors import FtopsError

_log = logging.getLogger(__name__)


class _Request(Request):
    form_data_parser_class = FormParser


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # werkzeug rule syntax, relative to the flavour's prefix
    handler: Handler
    creates: bool = False  # eligible for the "500-after-create" fault


@dataclass(frozen=True)
class Flavour:
    """One dialect of the API: where its paths live, what a request must carry to be served
    (``admit`` raises the error otherwise) and how an unknown URL is answered."""

    prefix: str
    routes: tuple[Route, ...]
    admit: Callable[[Request], None]
    unknown_url: Callable[[Request], ApiError]


def _bearer(request: Request) -> None:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(401, _NO_KEY)


def _invalid_url(request: Request) -> ApiError:
    return ApiError(404, f"Invalid URL ({request.method} {request.path})")


# The service's endpoints, common to both flavours.
SERVICE_ROUTES: tuple[Route, ...] = (
    Route("POST", "/files", files.create_file, creates=True),
    Route("GET", "/files", files.list_files),
    Route("GET", "/files/<file_id>", files.retrieve_file),
    Route("DELETE", "/files/<file_id>", files.delete_file),
    Route("GET", "/files/<file_id>/content", files.file_content),
    Route("POST", "/uploads", files.create_upload, creates=True),
    Route("POST", "/uploads/<upload_id>/parts", files.add_part, creates=True),
    Route("POST", "/uploads/<upload_id>/complete", files.complete_upload, creates=True),
    Route("POST", "/uploads/<upload_id>/cancel", files.cancel_upload),
    Route("POST", "/fine_tuning/jobs", jobs.create_job, creates=True),
    Route("GET", "/fine_tuning/jobs", jobs.list_jobs),
    Route("GET", "/fine_tuning/jobs/<job_id>", jobs.retrieve_job),
    Route("POST", "/fine_tuning/jobs/<job_id>/cancel", jobs.cancel_job),
    Route("POST", "/fine_tuning/jobs/<job_id>/pause", jobs.pause_job),
    Route("POST", "/fine_tuning/jobs/<job_id>/resume", jobs.resume_job),
    Route("GET", "/fine_tuning/jobs/<job_id>/events", jobs.list_events),
    Route("GET", "/fine_tuning/jobs/<job_id>/checkpoints", jobs.list_checkpoints),
    Route("GET", "/models", models.list_models),
    Route("GET", "/models/<path:model>", models.retrieve_model),
    Route("DELETE", "/models/<path:model>", models.delete_model),
)
_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)
OPENAI = Flavour(
    "/v1",
    (*SERVICE_ROUTES, Route("POST", "/chat/completions", chat.create_completion)),
    _bearer,
    _invalid_url,
)
# Paths as openai.AzureOpenAI(azure_endpoint=...) sends them: deployment-based endpoints (chat)
# under /openai/deployments/{model}, everything else under /openai.
AZURE = Flavour(
    "/openai",
    (
        *SERVICE_ROUTES,
        Route(
            "POST",
            "/deployments/<deployment>/chat/completions",
            azure.deployment_completion,
        ),
    ),
    azure.admit,
    azure.unknown_url,
)
FLAVORS: dict[str, Flavour] = {"openai": OPENAI, "azure": AZURE}
_FAULTS: dict[str, ApiError] = {
    "429": ApiError(
        429,
        "Rate limit reached for requests (emulated fault). Please try again shortly.",
        kind="requests",
        code="rate_limit_exceeded",
    ),
    "500": ApiError(
        500,
        "The server had an error while processing your request. Sorry about that! (emulated fault)",
        kind="server_error",
    ),
    "503": ApiError(
        503,
        "The server is overloaded or not ready yet. (emulated fault)",
        kind="server_error",
        code="service_unavailable",
    ),
}
_FAULTS["500-after-create"] = _FAULTS["500"]
_RETRY_HEADERS = {"Retry-After": "1", "retry-after-ms": "200"}


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
    ) -> None:
        if job_seconds < 0 or latency_ms < 0:
            raise FtopsError("job seconds and latency must not be negative")
        if flavor not in FLAVORS:
            raise FtopsError(f"unknown emulator flavor '{flavor}'", hint="use openai or azure")
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
                raise _FAULTS[fault]
            # Parse the body before taking the lock: large uploads must not block other clients.
            if request.mimetype == "multipart/form-data":
                request.files  # noqa: B018
            else:
                request.get_data()
            response = self._handle(route, request, args)
            if fault == "500-after-create":
                raise _FAULTS[fault]
        except ApiError as exc:
            headers = _RETRY_HEADERS if exc.status in (429, 503) else None
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
                      metadata_filter=self.metadata_filter)
            try:
                jobs.settle(ctx)
                reply = route.handler(ctx, request, **args)
            except ApiError:
                raise
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
