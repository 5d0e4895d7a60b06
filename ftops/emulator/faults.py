"""Seeded, reproducible fault injection: the failures a client of the real API must survive."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable

from ftops.errors import FtopsError

# "500-after-create" performs the create and then answers 500: the SDK retries the POST (it sends
# no Idempotency-Key) and a careless client ends up with a duplicate file or job.
FAULT_MODES: tuple[str, ...] = ("429", "500", "503", "drop", "500-after-create")


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
