"""The HTTP side of the emulator: auth, faults, latency, request log, lifecycle (routes: in
``routes``).

Whatever a client sends, the answer is JSON in the flavour's error shape and is logged: errors
werkzeug raises while reading a request become 4xx answers, and only a bug of the emulator's
own (logged with its traceback) is a 5xx that no fault injected.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from typing_extensions import Unpack  # typing.Unpack is 3.11+; ftops supports 3.10
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.routing import Map, Rule
from werkzeug.serving import ThreadedWSGIServer
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import wrap_file

from ftops import clock as ftops_clock  # the calendar day; the `clock` argument is wall time
from ftops.emulator import jobs
from ftops.emulator.common import MAX_JSON_BODY, ApiError, Ctx
from ftops.emulator.entra import TOKEN_PATH, Entra
from ftops.emulator.faults import (
    FAULT_ERRORS,
    FAULT_MODES,
    RETRY_STATUSES,
    FaultInjector,
    retry_headers,
)
from ftops.emulator.requestlog import DEFAULT_SIZE, RequestLog, clip
from ftops.emulator.routes import FLAVORS, Route, Surface
from ftops.emulator.serving import (
    Dropped,
    EmulatorRequest,
    Options,
    QuietHandler,
    bug,
    interrupt,
    json_response,
)
from ftops.emulator.store import Store
from ftops.errors import FtopsError

_log = logging.getLogger(__name__)


class Emulator:
    """An OpenAI-compatible fine-tuning API on a local port, in-process or blocking (the CLI).

    >>> with Emulator(job_seconds=0) as emu:
    ...     client = openai.OpenAI(base_url=emu.base_url, api_key="any")
    >>> with Emulator(flavor="azure") as emu:
    ...     client = openai.AzureOpenAI(azure_endpoint=emu.azure_endpoint, api_key="any",
    ...                                 api_version="2025-04-01-preview")

    ``retry_after`` is the wait, in seconds, advised with injected 429 and 503 answers (see
    ``faults.retry_headers``); 0 lets SDK clients in tests retry at once, injected 500s included.
    The flavour also picks the provider whose calendar applies (``retirement``), on the day
    ``ftops.clock`` says it is.
    ``log_size`` is how many of the latest requests ``requests()`` keeps; ``stats()`` counts all.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state_path: str | os.PathLike[str] | None = None,
        job_seconds: float = 5.0,
        seed: int = 0,
        clock: Callable[[], float] = time.time,
        flavor: str = "openai",
        **options: Unpack[Options],
    ) -> None:
        unknown = sorted(set(options) - set(Options.__annotations__))
        if unknown:
            raise TypeError(f"Emulator() got an unexpected keyword argument '{unknown[0]}'")
        fault_rate = options.get("fault_rate", 0.0)
        latency_ms = options.get("latency_ms", 0.0)
        if job_seconds < 0 or latency_ms < 0:
            raise FtopsError("job seconds and latency must not be negative")
        if flavor not in FLAVORS:
            raise FtopsError(f"unknown emulator flavor '{flavor}'",
                             hint="use openai, azure, nebius, together or fireworks")
        # The calendar reads FTOPS_TODAY on every request; a malformed value is refused here,
        # at start-up, rather than as a 500 on the first request that consults the day.
        ftops_clock.today()
        self._log = RequestLog(options.get("log_size", DEFAULT_SIZE))
        self._retry_headers = retry_headers(options.get("retry_after", 1.0))
        # Real services advise a wait with 429 and 503 only; asked for none (``retry_after=0``),
        # injected 500s advise it too, or the SDKs sleep their own back-off (0.5 s, 1 s, ...).
        no_wait = not options.get("retry_after", 1.0)
        self._advised = RETRY_STATUSES | {500} if no_wait else RETRY_STATUSES
        self.host = host
        self.job_seconds = float(job_seconds)
        self.latency = latency_ms / 1000
        self._clock = clock
        self._faults = FaultInjector(rate=fault_rate, modes=options.get("faults", FAULT_MODES),
                                     seed=seed)
        self._store = Store(Path(state_path) if state_path else None, seed=seed)
        for job in self._store.jobs.values():
            jobs.schedule(self._store, job)
        self.flavor = flavor
        self._flavour = FLAVORS[flavor]
        self.metadata_filter = options.get("metadata_filter", True)
        self.drop_metadata = options.get("drop_metadata", False)
        self.azure_rules = options.get("azure_rules", False)
        self._entra = Entra()
        self._rules = _url_maps(flavor)
        self._lock = threading.Lock()
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
                self.host, 0, self._app, QuietHandler, fd=sock.fileno()
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

    def serve_forever(self, ready: Callable[[], None] = lambda: None) -> None:
        """Serves in this thread until Ctrl+C or SIGTERM; ``ready()`` (the banner) once both
        stop it, so a signal sent on seeing it is not lost."""
        server = self.listen()._server
        assert server is not None
        # SIGTERM's default skips the cleanup below; a SIGINT ignored since start (a background
        # job) would never stop it. Both stop it as Ctrl+C does; only the main thread may.
        main = threading.current_thread() is threading.main_thread()
        previous = {signum: signal.signal(signum, interrupt)
                    for signum in (signal.SIGTERM, signal.SIGINT)} if main else {}
        try:
            ready()
            server.serve_forever(poll_interval=0.2)  # werkzeug's loop returns on Ctrl+C
        except KeyboardInterrupt:
            pass  # one that came before its loop began: as asked, stopped
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, signal.SIG_DFL if handler is None else handler)
            self._close()

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            # shutdown() is seen at the loop's next poll (50 ms); a connection wakes it at once.
            stopping = threading.Thread(target=self._server.shutdown)
            stopping.start()
            while stopping.is_alive():
                with contextlib.suppress(OSError):
                    socket.create_connection((self.host, self.port), timeout=1).close()
                stopping.join(0.01)
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

    @property
    def azure_v1_url(self) -> str:
        """What ``openai.OpenAI(base_url=...)`` takes for Azure's v1 API (no api-version)."""
        return self.azure_endpoint + "/openai/v1/"

    @property
    def management_url(self) -> str:
        """ARM's root, for ``CognitiveServicesManagementClient(base_url=...)`` (see ``entra``)."""
        return self.azure_endpoint

    def entra_environment(self) -> dict[str, str]:
        """``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER``: azure-identity's
        ``ManagedIdentityCredential`` then gets its tokens from this emulator (``entra``)."""
        return self._entra.environment(self.azure_endpoint)

    def requests(self) -> list[dict[str, Any]]:
        """The latest API requests (``log_size`` of them), oldest first (``/_emulator/*``
        excluded)."""
        return self._log.entries()

    def stats(self) -> dict[str, Any]:
        """Counts of every API request since start, by method, status and fault, and the
        requests in flight now and at their peak (``in_flight``, ``in_flight_peak``)."""
        return self._log.stats()

    # requests --------------------------------------------------------------------------------
    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = EmulatorRequest(environ)
        # werkzeug's documented hook: uploaded files are parsed straight into the blob directory.
        request._get_file_stream = self._store.spool  # type: ignore[method-assign]
        if request.path.startswith("/_emulator/"):
            response = self._control(request)
        else:
            with self._log.serving():  # latency included: the client waits for it too
                response = self._serve(request, environ)
        # The one place every answer passes, errors and the control endpoint included: a client
        # can tell it talks to the emulator, and whose calendar (``retirement``) it follows.
        response.headers["X-Ftops-Emulator"] = self.flavor
        return response(environ, start_response)

    def _control(self, request: Request) -> Response:
        if request.method == "GET" and request.path == "/_emulator/requests":
            return json_response(self.requests())
        if request.method == "GET" and request.path == "/_emulator/stats":
            return json_response(self.stats())
        if request.method == "GET" and request.path == TOKEN_PATH and self.flavor == "azure":
            status, body = self._entra.issue(request)
            return json_response(body, status)
        error = ApiError(404, f"Invalid URL ({request.method} {request.path})")
        return json_response(error.body(), 404)

    def _serve(self, request: Request, environ: dict[str, Any]) -> Response:
        fault: str | None = None
        surface = self._flavour.surface(request.path)
        try:
            if self.latency:
                time.sleep(self.latency)
            surface.admit(request, self._entra.valid)
            route, args = self._match(surface, request)
            fault = self._faults.draw(creates=route.creates)
            if fault == "drop":
                self._record(request, None, fault)
                with contextlib.suppress(OSError):  # the client may have gone already
                    environ["werkzeug.socket"].shutdown(socket.SHUT_RDWR)
                raise Dropped("emulated dropped connection")
            if fault in ("429", "500", "503"):
                raise FAULT_ERRORS[fault]
            self._read_body(request)
            response = self._handle(surface, route, request, args)
            if fault == "500-after-create":
                raise FAULT_ERRORS[fault]
        except HTTPException as exc:  # raised by werkzeug while reading: a form too large...
            response = self._error(surface.http_error(exc))
        except ApiError as exc:
            response = self._error(exc, injected=fault is not None)
        except Dropped:
            raise
        except Exception:  # e.g. the disk is full: still a JSON answer, and logged
            _log.exception("emulator bug while serving %s %s", request.method, request.path)
            response = self._error(bug())
        response.headers["x-request-id"] = f"req_{secrets.token_hex(16)}"
        self._record(request, response.status_code, fault)
        return response

    @staticmethod
    def _read_body(request: Request) -> None:
        """Parses the body before the lock is taken: large uploads must not block others.
        Uploads stream to disk; what is read into memory is capped at MAX_JSON_BODY."""
        if request.mimetype == "multipart/form-data":
            request.files  # noqa: B018
            return
        # werkzeug refuses a Content-Length over the limit, but cuts a chunked body at it: one
        # byte more tells that the body went on.
        request.max_content_length = MAX_JSON_BODY + 1
        if len(request.get_data()) > MAX_JSON_BODY:
            raise RequestEntityTooLarge()

    def _error(self, exc: ApiError, *, injected: bool = False) -> Response:
        advised = self._advised if injected else RETRY_STATUSES
        headers = self._retry_headers if exc.status in advised else None
        return json_response(exc.body(), exc.status, headers)

    def _match(self, surface: Surface, request: Request) -> tuple[Route, Mapping[str, str]]:
        # werkzeug types a match as (Any, Mapping[str, Any]): the endpoint is the route's index
        # given to its Rule, and the paths have only string converters.
        index: int
        args: Mapping[str, str]
        try:
            index, args = self._rules[surface.prefix].bind_to_environ(request.environ).match()
        except HTTPException:
            raise surface.unknown_url(request) from None
        return surface.routes[index], args

    def _handle(self, surface: Surface, route: Route, request: Request,
                args: Mapping[str, str]) -> Response:
        rules = self.azure_rules if surface.azure_rules is None else surface.azure_rules
        with self._lock:
            ctx = Ctx(self._store, self._clock(), self.job_seconds,
                      metadata_filter=self.metadata_filter, flavor=self.flavor,
                      azure_rules=rules, drop_metadata=self.drop_metadata)
            try:
                jobs.settle(ctx)
                reply = route.handler(ctx, request, **args)
            except (ApiError, HTTPException):
                raise
            except FtopsError as exc:  # FTOPS_TODAY made malformed while serving: say so
                raise ApiError(500, f"The emulator cannot serve: {exc}", kind="server_error"
                               ) from None
            except Exception:
                _log.exception("emulator bug while serving %s %s", request.method, request.path)
                raise bug() from None
            finally:
                self._store.commit()
        if hasattr(reply.body, "read"):
            size = reply.body.seek(0, os.SEEK_END)
            reply.body.seek(0)
            response = Response(
                wrap_file(request.environ, reply.body),
                mimetype=reply.content_type,
                direct_passthrough=True,
            )
            response.content_length = size
            return response
        return json_response(reply.body, reply.status, reply.headers)

    def _record(self, request: Request, status: int | None, fault: str | None) -> None:
        self._log.add({
            "method": clip(request.method),
            "path": clip(request.path),
            "query": clip(request.query_string.decode("latin-1")),
            "status": status,
            "fault": fault,
        })


@functools.cache
def _url_maps(flavor: str) -> dict[str, Map]:
    """Each surface's URL map, built once per flavour and process: werkzeug compiles every rule
    (6-18 ms of CPU an emulator), and matching only reads a map."""
    return {
        surface.prefix: Map(
            [Rule(surface.prefix + r.path, methods=[r.method], endpoint=i)
             for i, r in enumerate(surface.routes)]
        )
        for surface in FLAVORS[flavor].surfaces
    }
