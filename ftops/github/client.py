"""HTTP to the GitHub REST API; the token is sent to the configured API host and nowhere else."""

from __future__ import annotations

import http.client
import json
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from ftops.errors import RemoteError, redact


@dataclass(frozen=True)
class GitHubApi:
    """A minimal REST client: JSON in and out, Bearer token, ``Link`` pagination, no redirects."""

    base_url: str
    token: str = field(repr=False)
    secrets: tuple[str, ...] = field(default=(), repr=False)
    timeout: float = 30.0

    def request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        data, _ = self._send(method, self.base_url + path, body)
        return data

    def get_all(self, path: str) -> list[Any]:
        """Every item of a list endpoint, following ``Link: <...>; rel="next"`` headers."""
        url: str | None = f"{self.base_url}{path}?{urlencode({'per_page': 100})}"
        items: list[Any] = []
        while url is not None:
            data, link = self._send("GET", url, None)
            if not isinstance(data, list):
                raise RemoteError(f"GitHub API: GET {path} did not return a list")
            items.extend(data)
            url = _next_link(link)
            if url is not None and not url.startswith(self.base_url + "/"):
                # The token goes only to the configured API host.
                raise RemoteError(f"GitHub API: GET {path} paginated to another host")
        return items

    def _send(
        self, method: str, url: str, body: Mapping[str, Any] | None
    ) -> tuple[Any, str | None]:
        request = urllib.request.Request(
            url,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "Content-Type": "application/json",
                "User-Agent": "ftops",
            },
        )
        path = url.removeprefix(self.base_url).split("?")[0]
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                payload, link = response.read(), response.headers.get("Link")
        except urllib.error.HTTPError as exc:
            raise self._status_error(method, path, exc) from None
        except (OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise RemoteError(
                self._redact(f"cannot reach the GitHub API at {self.base_url}: {reason}"),
                hint="check GITHUB_API_URL and the runner's network",
            ) from None
        try:
            return (json.loads(payload) if payload else None), link
        except ValueError:
            raise RemoteError(f"GitHub API: {method} {path} returned invalid JSON") from None

    def _status_error(self, method: str, path: str, exc: urllib.error.HTTPError) -> RemoteError:
        try:
            detail = str(json.loads(exc.read()).get("message", ""))
        except (ValueError, AttributeError, OSError):
            detail = ""
        hints = {
            401: "the github-token is missing, invalid or expired",
            403: "give the workflow `permissions: pull-requests: write` (pull requests from "
            "forks get a read-only token), or wait if this is a rate limit",
            404: "check the repository name and that the token can access it",
            429: "GitHub is rate limiting; re-run the job later",
        }
        hint = hints.get(exc.code) or (
            "GitHub is unavailable; re-run the job" if exc.code >= 500 else None
        )
        message = f"GitHub API: {method} {path} returned HTTP {exc.code}"
        if detail:
            message = f"{message}: {detail[:200]}"
        return RemoteError(self._redact(message), hint=hint)

    def _redact(self, text: str) -> str:
        return redact(text, (self.token, *self.secrets))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib would resend the Authorization header to wherever a redirect points."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _next_link(header: str | None) -> str | None:
    match = re.search(r'<([^>]+)>\s*;\s*rel="?next"?', header or "")
    return match.group(1) if match else None
