"""The emulator's request log: the last requests in full, and running totals since start.

An emulator serving a long load test or a CI job of many hours must not grow without bound, so
the log keeps only the newest ``size`` entries (and clips what one entry holds), while the
totals count every request ever served. The requests being served at once are counted too, with
their peak since start, so a test can see how many requests a client had in flight.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ftops.errors import FtopsError

DEFAULT_SIZE = 10_000
# The emulator's own limit on what one entry keeps of a path or query: http.server lets a
# request line reach 64 KiB, and 10,000 such lines would hold over a gigabyte.
MAX_TEXT = 2_048


def clip(text: str) -> str:
    """``text``, shortened to MAX_TEXT characters with a visible mark when it is longer."""
    if len(text) <= MAX_TEXT:
        return text
    return text[: MAX_TEXT - 14] + "...[truncated]"


class RequestLog:
    """Thread-safe: requests are served, and recorded, from many threads at once."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise FtopsError(f"the request log size must be a whole number >= 0, got {size!r}")
        self.size = size
        self._entries: deque[dict[str, Any]] = deque(maxlen=size)
        self._total = 0
        self._methods: Counter[str] = Counter()
        self._statuses: Counter[str] = Counter()
        self._faults: Counter[str] = Counter()
        self._in_flight = 0
        self._in_flight_peak = 0
        self._lock = threading.Lock()

    @contextmanager
    def serving(self) -> Iterator[None]:
        """Counts one API request as in flight while the block runs, answer or not."""
        with self._lock:
            self._in_flight += 1
            self._in_flight_peak = max(self._in_flight_peak, self._in_flight)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def add(self, entry: dict[str, Any]) -> None:
        """Records one request: ``method``, ``status`` (None: no answer) and ``fault`` count."""
        status = entry["status"]
        with self._lock:
            self._entries.append(entry)
            self._total += 1
            self._methods[entry["method"]] += 1
            self._statuses["dropped" if status is None else str(status)] += 1
            if entry["fault"] is not None:
                self._faults[entry["fault"]] += 1

    def entries(self) -> list[dict[str, Any]]:
        """The entries kept, oldest first (copies: the caller may change them)."""
        with self._lock:
            return [dict(entry) for entry in self._entries]

    def stats(self) -> dict[str, Any]:
        """Counts since start: requests by method, by status ("dropped": no answer), by fault;
        the requests being served now and the most ever served at once."""
        with self._lock:
            return {
                "object": "emulator.stats",
                "requests": self._total,
                "logged": len(self._entries),
                "log_size": self.size,
                "by_method": dict(sorted(self._methods.items())),
                "by_status": dict(sorted(self._statuses.items())),
                "by_fault": dict(sorted(self._faults.items())),
                "in_flight": self._in_flight,
                "in_flight_peak": self._in_flight_peak,
            }
