"""A fake GitHub REST API for tests: real HTTP on 127.0.0.1, one thread per request.

It serves what ftops uses: issue comments (list with ``per_page``/``page`` and ``Link`` headers,
create, update), the pull requests of a commit and check runs (create, update, list a commit's
by ``check_name``). Bearer tokens map to logins; a read-only token (what pull requests from forks
get) is refused writes with 403 as on github.com, and so is a token without ``checks: write``
on the Checks API. Every request is
recorded so tests can count calls and look for secrets in what was sent.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

BOT = "github-actions[bot]"


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


class FakeGitHub:
    def __init__(
        self,
        tokens: Mapping[str, str],
        *,
        read_only_tokens: frozenset[str] = frozenset(),
        max_per_page: int = 100,
        no_checks_tokens: frozenset[str] = frozenset(),
    ) -> None:
        self.tokens = dict(tokens)  # token -> login
        self.read_only_tokens = read_only_tokens
        self.no_checks_tokens = no_checks_tokens  # tokens without `checks: write`
        self.check_runs: dict[int, dict[str, Any]] = {}  # id -> check run (with "repo")
        self.max_per_page = max_per_page
        self.link_base: str | None = None  # set to put another host in Link headers
        self.requests: list[Recorded] = []
        self._comments: dict[int, dict[str, Any]] = {}
        self._issue_of: dict[int, tuple[str, int]] = {}
        self._commit_pulls: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._next_id = 1000
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeGitHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add_comment(self, repo: str, number: int, body: str, login: str = BOT) -> dict[str, Any]:
        with self._lock:
            return self._create(repo, number, body, login)

    def comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        with self._lock:
            return [
                dict(c)
                for cid, c in self._comments.items()
                if self._issue_of[cid] == (repo, number)
            ]

    def set_commit_pulls(self, repo: str, sha: str, pulls: list[dict[str, Any]]) -> None:
        with self._lock:
            self._commit_pulls[(repo, sha)] = pulls

    def mutations(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.requests if r.method != "GET"]

    def _check_runs(
        self, method: str, path: str, query: dict[str, str], body: Any
    ) -> tuple[int, Any, dict[str, str]] | None:
        """The Checks API, or None when ``path`` is none of its endpoints."""
        if (match := re.fullmatch(r"/repos/([^/]+/[^/]+)/check-runs", path)) and method == "POST":
            self._next_id += 1
            run = {**body, "id": self._next_id, "repo": match.group(1),
                   "html_url": f"https://github.com/{match.group(1)}/runs/{self._next_id}"}
            self.check_runs[self._next_id] = run
            return 201, dict(run), {}
        if (match := re.fullmatch(r"/repos/[^/]+/[^/]+/check-runs/(\d+)", path)) and (
            method == "PATCH"
        ):
            run = self.check_runs.get(int(match.group(1)))
            if run is None:
                return 404, {"message": "Not Found"}, {}
            run.update(body)
            return 200, dict(run), {}
        commit_runs = r"/repos/([^/]+/[^/]+)/commits/([0-9a-f]+)/check-runs"
        if (match := re.fullmatch(commit_runs, path)) and method == "GET":
            runs = [dict(r) for r in self.check_runs.values()
                    if (r["repo"], r["head_sha"]) == match.groups()
                    and r["name"] == query.get("check_name", r["name"])]
            return 200, {"total_count": len(runs), "check_runs": runs}, {}
        return None

    def _on_issue(self, repo: str, number: int) -> list[dict[str, Any]]:
        return [c for cid, c in self._comments.items() if self._issue_of[cid] == (repo, number)]

    def _create(self, repo: str, number: int, body: str, login: str) -> dict[str, Any]:
        self._next_id += 1
        cid = self._next_id
        comment = {
            "id": cid,
            "body": body,
            "user": {"login": login, "type": "Bot" if login.endswith("[bot]") else "User"},
            "html_url": f"https://github.com/{repo}/pull/{number}#issuecomment-{cid}",
        }
        self._comments[cid] = comment
        self._issue_of[cid] = (repo, number)
        return dict(comment)

    def handle(
        self, method: str, path: str, query: dict[str, str], login: str, body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            checks = self._check_runs(method, path, query, body)
            if checks is not None:
                return checks
            if match := re.fullmatch(r"/repos/([^/]+/[^/]+)/issues/(\d+)/comments", path):
                repo, number = match.group(1), int(match.group(2))
                if method == "POST":
                    return 201, self._create(repo, number, body["body"], login), {}
                if method == "GET":
                    items = [
                        c
                        for cid, c in self._comments.items()
                        if self._issue_of[cid] == (repo, number)
                    ]
                    return self._page(path, query, items)
            if (match := re.fullmatch(r"/repos/[^/]+/[^/]+/issues/comments/(\d+)", path)) and (
                method == "PATCH"
            ):
                comment = self._comments.get(int(match.group(1)))
                if comment is None:
                    return 404, {"message": "Not Found"}, {}
                comment["body"] = body["body"]
                return 200, dict(comment), {}
            if (
                match := re.fullmatch(r"/repos/([^/]+/[^/]+)/commits/([0-9a-f]+)/pulls", path)
            ) and (method == "GET"):
                pulls = self._commit_pulls.get((match.group(1), match.group(2)), [])
                return self._page(path, query, pulls)
            return 404, {"message": "Not Found"}, {}

    def _page(
        self, path: str, query: dict[str, str], items: list[dict[str, Any]]
    ) -> tuple[int, Any, dict[str, str]]:
        size = min(int(query.get("per_page", "30")), self.max_per_page)
        page = int(query.get("page", "1"))
        chunk = [dict(i) for i in items[(page - 1) * size : page * size]]
        headers = {}
        if page * size < len(items):
            base = self.link_base or self.url
            nxt = urlencode({"per_page": size, "page": page + 1})
            headers["Link"] = f'<{base}{path}?{nxt}>; rel="next"'
        return 200, chunk, headers


def _handler(fake: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PATCH(self) -> None:
            self._serve("PATCH")

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            fake.requests.append(
                Recorded(
                    method, parts.path, query, {k.lower(): v for k, v in self.headers.items()}, body
                )
            )
            auth = self.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
            login = fake.tokens.get(token or "")
            if login is None:
                self._reply(401, {"message": "Bad credentials"}, {})
            elif method != "GET" and (
                token in fake.read_only_tokens
                or (token in fake.no_checks_tokens and "/check-runs" in parts.path)
            ):
                self._reply(403, {"message": "Resource not accessible by integration"}, {})
            else:
                self._reply(*fake.handle(method, parts.path, query, login, body))

        def _reply(self, status: int, payload: Any, headers: dict[str, str]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
