"""Seeded, reproducible fault injection: the failures a client of the real API must survive."""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Iterable

from ftops.emulator.common import ApiError
from ftops.errors import FtopsError

# "500-after-create" performs the create and then answers 500: the SDK retries the POST (it sends
# no Idempotency-Key) and a careless client ends up with a duplicate file or job.
FAULT_MODES: tuple[str, ...] = ("429", "500", "503", "drop", "500-after-create")
# The error each status fault answers with ("drop" has no answer).
FAULT_ERRORS: dict[str, ApiError] = {
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
FAULT_ERRORS["500-after-create"] = FAULT_ERRORS["500"]
RETRY_STATUSES = frozenset({429, 503})  # the answers that advise a wait


def retry_headers(seconds: float) -> dict[str, str]:
    """The wait advised with a 429 or 503 that asks for ``seconds``.

    ``Retry-After`` is whole seconds (HTTP allows no fraction), rounded up so a client that
    honours it never comes back early. ``retry-after-ms``, which the OpenAI SDK reads first,
    asks for a fifth of that: SDK clients under test recover quickly while plain HTTP clients
    see whole seconds (1 s and 200 ms at the default, the pair the emulator always sent). It is
    never 0: the SDK takes 0 as no advice and falls back to its own exponential backoff (0.5 s,
    then 1 s, ...), so a request for no wait is sent as 1 ms, which the SDK does honour.
    """
    if seconds < 0 or not math.isfinite(seconds):
        raise FtopsError(f"retry-after must be a non-negative number of seconds, got {seconds}")
    return {
        "Retry-After": str(math.ceil(seconds)),
        "retry-after-ms": str(max(1, round(seconds * 200))),
    }


def parse_modes(text: str | Iterable[str]) -> tuple[str, ...]:
    """``"429,drop"`` or an iterable of names -> validated modes in canonical order."""
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else list(text)
    names = [n for n in names if n]
    unknown = sorted(set(names) - set(FAULT_MODES))
    if unknown:
        raise FtopsError(
            f"unknown fault mode(s): {', '.join(unknown)}",
            hint=f"choose from {','.join(FAULT_MODES)}",
        )
    return tuple(m for m in FAULT_MODES if m in names)


class FaultInjector:
    """Decides, request by request, whether to fail it and how.

    One seeded random stream shared by all requests: the same sequence of requests sees the
    same faults on every run.
    """

    def __init__(self, *, rate: float, modes: Iterable[str], seed: int) -> None:
        if not 0.0 <= rate <= 1.0:
            raise FtopsError(f"fault rate must be between 0 and 1, got {rate}")
        self.rate = rate
        self.modes = parse_modes(modes)
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def draw(self, *, creates: bool) -> str | None:
        """The fault for the next request, or None; ``creates`` marks requests that create."""
        if self.rate <= 0.0 or not self.modes:
            return None
        with self._lock:
            if self._random.random() >= self.rate:
                return None
            eligible = [m for m in self.modes if creates or m != "500-after-create"]
            return self._random.choice(eligible) if eligible else None
