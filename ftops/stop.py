"""When work may start: the request budget of a run, and the stop a signal asks for.

``RequestBudget`` is ``--parallel N``: a slot is held for each request while it is in flight, and
whatever a request sends (an upload part) is read only once its slot is held, so N bounds both
the requests at once and the bytes buffered for them. No thread holds a slot while it waits for
another, so the budget cannot deadlock.

A stop is asked by the first SIGINT or SIGTERM while ``handling()`` is in force (the CLI installs
it for apply, wait and eval). Code that has work in flight runs inside ``cooperating()``: the
signal then only sets the stop, which every slot request, poll sleep and round checks, so what
is in flight returns before ``Interrupted`` is raised. Elsewhere (reading the account, a prompt)
``Interrupted`` is raised at once in the main thread. A second signal ends the process at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TypeVar

T = TypeVar("T")
SIGNALS = (signal.SIGINT, signal.SIGTERM)
SETTLE_SECONDS = 5.0  # the most the one look after a stop may take
# How to go on after a stopped apply, once ftops.lock lists what it started.
APPLY_NEXT = "`ftops wait` follows the jobs started; `ftops apply` starts the rest"
_WAKE_SECONDS = 0.05  # how often a request waiting for a slot looks whether a stop was asked


class Interrupted(KeyboardInterrupt):
    """The run stopped because a signal asked it to; exits 128 + the signal (130, 143).

    A KeyboardInterrupt, so that no ``except Exception`` takes it for a failure to settle.
    ``hint`` is what the command that stopped tells the user: what it kept and how to go on.
    """

    def __init__(self, signum: int = signal.SIGINT, hint: str | None = None) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.hint = hint

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name


class _State:
    def __init__(self) -> None:
        self.asked = threading.Event()
        self.signum: int = signal.SIGINT
        self.cooperating = 0  # sections now running with work in flight
        # Reentrant: the handler takes it in the main thread, which may hold it already.
        self.lock = threading.RLock()


_state = _State()


def requested() -> bool:
    return _state.asked.is_set()


def interrupted() -> Interrupted:
    return Interrupted(_state.signum)


def check() -> None:
    """Raises ``Interrupted`` once a stop was asked: call it before starting work."""
    if _state.asked.is_set():
        raise interrupted()


def sleep(seconds: float) -> None:
    """Sleeps, waking (and raising ``Interrupted``) as soon as a stop is asked."""
    if _state.asked.wait(seconds):
        raise interrupted()


def ask(signum: int = signal.SIGINT) -> None:
    """Asks the stop as the signal ``signum`` does (its first time)."""
    _state.signum = signum
    _state.asked.set()


@contextlib.contextmanager
def cooperating(hint: str | None = None) -> Iterator[None]:
    """A section with work in flight: a signal only asks the stop, which the work checks.
    A stop asked while it ran is raised when it ends (with ``hint``), if nothing else is."""
    with _state.lock:
        _state.cooperating += 1
    try:
        yield
    finally:
        with _state.lock:
            _state.cooperating -= 1
    if _state.asked.is_set():
        raise Interrupted(_state.signum, hint)


def _say(text: str) -> None:
    # os.write, not print: a signal handler may run while the main thread is printing.
    with contextlib.suppress(OSError):
        os.write(2, text.encode())


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    name = signal.Signals(signum).name
    if _state.asked.is_set():
        _say(f"{name} again: stopped at once; what was in flight may be missing from "
             "ftops.lock (`ftops apply` finds it and starts nothing twice)\n")
        os._exit(128 + signum)
    ask(signum)
    again = "Ctrl+C again" if signum == signal.SIGINT else "another signal"
    _say(f"{name}: stopping; nothing new is started and what is in flight is settled "
         f"({again} stops at once)\n")
    with _state.lock:
        in_flight = _state.cooperating > 0
    if not in_flight:
        raise Interrupted(signum)


@contextlib.contextmanager
def handling() -> Iterator[None]:
    """SIGINT and SIGTERM ask a stop while the block runs (in the main thread only: Python
    delivers signals there); the handlers before are restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _state.asked.clear()
    _state.signum = signal.SIGINT
    previous = {signum: signal.signal(signum, _on_signal) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        _state.asked.clear()


def within(seconds: float, call: Callable[[], T]) -> T:
    """``call()`` on a thread of its own, given ``seconds`` to answer (else TimeoutError).
    The thread is a daemon: one that does not answer does not hold the process open."""
    box: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            box.append(call())
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=run, name="ftops-settle", daemon=True)
    worker.start()
    worker.join(seconds)
    if failure:
        raise failure[0]
    if not box:
        raise TimeoutError(f"no answer within {seconds:g} s")
    return box[0]


def settle(stopped: Interrupted, look: Callable[[], object], *, then: str) -> None:
    """After a stop: ``look`` (one read of the account that writes ftops.lock) within
    SETTLE_SECONDS; ``stopped.hint`` then says what was kept and ``then``, how to go on."""
    try:
        within(SETTLE_SECONDS, look)
    except TimeoutError:
        stopped.hint = (f"the account did not answer within {SETTLE_SECONDS:g} s, so ftops.lock "
                        f"was not updated; {then}")
    except Exception as exc:  # the stop is what is reported; this only changes the hint
        stopped.hint = f"ftops.lock was not updated ({exc}); {then}"
    else:
        stopped.hint = f"ftops.lock lists everything started so far; {then}"


class RequestBudget:
    """``size`` slots, one per request in flight (see the module's docstring).

    A slot is refused with ``Interrupted`` once a stop was asked, unless it is for ``cleanup``
    (cancelling an upload left half-way), which must still go out.
    """

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._free = self.size
        self._cond = threading.Condition()

    def acquire(self, *, cleanup: bool = False) -> None:
        with self._cond:
            while True:
                if not cleanup:
                    check()
                if self._free:
                    self._free -= 1
                    return
                # Timed: a stop is asked from a signal handler, which cannot notify here.
                self._cond.wait(_WAKE_SECONDS)

    def release(self) -> None:
        with self._cond:
            self._free += 1
            self._cond.notify()

    @contextlib.contextmanager
    def slot(self, *, cleanup: bool = False) -> Iterator[None]:
        """One request's slot, held while the block runs."""
        self.acquire(cleanup=cleanup)
        try:
            yield
        finally:
            self.release()

    def call(self, request: Callable[[], T]) -> T:
        """``request()`` in a slot of its own."""
        with self.slot():
            return request()
