"""Clients for a loopback endpoint (the emulator, a local proxy): no proxy settings, since
local traffic must not leave the machine, and one TLS context for all of them, since building
one loads the CA bundle (about 20 ms of CPU) and a run of ftops, or a test suite, makes many."""

from __future__ import annotations

import functools
import ssl
from urllib.parse import urlsplit

import httpx


def is_loopback(url: str | None) -> bool:
    return bool(url) and urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")


@functools.cache
def tls() -> ssl.SSLContext:
    """httpx's default context (certifi's CAs), made once per process; contexts are safe to
    share between clients and threads."""
    return httpx.create_ssl_context()
