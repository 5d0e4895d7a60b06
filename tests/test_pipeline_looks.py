"""The pipeline's two looks that need not be sent (``ftops.pipeline``): a read the caller just
made serves as the first round's look, and the round that only settles may look through the
caller's own ``last`` (which takes its own slots); every create is still checked by a look and
settled by a look begun after it returned, and no more than the budget is ever in flight."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest

from ftops.pipeline import Create, Pipeline
from ftops.plan import Action, ActionType, Kind
from ftops.stop import RequestBudget


class Account:
    """What exists, and the order in which looks and creates began and ended."""

    def __init__(self, budget: RequestBudget, existing: set[str] | None = None) -> None:
        self.budget = budget
        self.made = set(existing or ())
        self.events: list[tuple[str, str]] = []  # ("look-begin", n) ... ("create-end", name)
        self.looks = 0
        self.in_flight = self.peak = 0
        self._lock = threading.Lock()

    def _enter(self, event: tuple[str, str]) -> None:
        with self._lock:
            self.events.append(event)
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)

    def _leave(self, event: tuple[str, str]) -> None:
        with self._lock:
            self.in_flight -= 1
            self.events.append(event)

    def look(self, hold: threading.Barrier | None = None) -> frozenset[str]:
        with self._lock:
            self.looks += 1
            n = str(self.looks)
        self._enter(("look-begin", n))
        seen = frozenset(self.made)
        if hold is not None:  # in flight until the other listing is too
            hold.wait()
        self._leave(("look-end", n))
        return seen

    def create(self, item: Create) -> object:
        with self.budget.slot():
            self._enter(("create-begin", item.action.name))
            with self._lock:
                self.made.add(item.action.name)
            self._leave(("create-end", item.action.name))
        return item.action.name

    def last(self) -> frozenset[str]:
        """A caller's last look: two listings, each in its own slot (at once, given two)."""
        hold = threading.Barrier(2, timeout=10) if self.budget.size > 1 else None
        with ThreadPoolExecutor(max_workers=2) as both:
            first, second = (both.submit(self.budget.call, partial(self.look, hold))
                             for _ in range(2))
            return first.result() | second.result()


def actions(n: int) -> list[Action]:
    return [Action(ActionType.UPLOAD, Kind.FILE, f"d{i}") for i in range(n)]


def run(account: Account, todo: list[Action], *, first: frozenset[str] | None = None,
        last: bool = False) -> list[str]:
    """Runs the pipeline; returns the names settled, in order."""
    settled: list[str] = []

    def settle(item: Create, seen: frozenset[str]) -> None:
        assert item.action.name in seen  # settled by a look that shows what it made
        settled.append(item.action.name)

    with ThreadPoolExecutor(max_workers=account.budget.size) as pool:
        Pipeline(pool, account.budget, look=account.look,
                 check=lambda item, seen: item.action.name in seen,
                 create=account.create, settle=settle,
                 last=account.last if last else None).run(todo, first)
    return settled


def assert_each_create_settled_by_a_later_look(account: Account) -> None:
    order = {event: n for n, event in enumerate(account.events)}
    looks = [order[("look-begin", str(k))] for k in range(1, account.looks + 1)]
    for (what, name), at in order.items():
        if what == "create-end":
            assert any(begun > at for begun in looks), f"{name} was never looked at after"


@pytest.mark.parametrize("size", [1, 2, 4])
def test_the_callers_read_is_the_first_rounds_look(size: int) -> None:
    own, given = Account(RequestBudget(size)), Account(RequestBudget(size))
    assert run(own, actions(7)) == run(given, actions(7), first=frozenset())
    assert given.looks == own.looks - 1  # the one look that would repeat the caller's read
    assert given.made == own.made == {f"d{i}" for i in range(7)}
    assert_each_create_settled_by_a_later_look(given)
    assert given.peak <= size


def test_what_the_callers_read_shows_is_not_created() -> None:
    account = Account(RequestBudget(4), existing={"d1"})
    run(account, actions(3), first=frozenset({"d1"}))
    assert [name for what, name in account.events if what == "create-begin"] in (
        ["d0", "d2"], ["d2", "d0"])


@pytest.mark.parametrize("size", [1, 2, 4])
def test_the_last_look_is_the_callers_and_stays_within_the_budget(size: int) -> None:
    account = Account(RequestBudget(size))
    settled = run(account, actions(5), last=True)
    assert sorted(settled) == [f"d{i}" for i in range(5)]
    assert_each_create_settled_by_a_later_look(account)
    # The caller's last look sent its two listings, and only after every create had returned.
    final = [n for n, (what, _) in enumerate(account.events) if what == "look-begin"][-2:]
    creates = [n for n, (what, _) in enumerate(account.events) if what == "create-end"]
    assert all(begun > max(creates) for begun in final)
    assert account.peak <= size
    assert size == 1 or account.peak >= 2  # the two listings went at once


def test_no_actions_no_look() -> None:
    account = Account(RequestBudget(4))
    assert run(account, [], first=frozenset(), last=True) == []
    assert account.looks == 0
