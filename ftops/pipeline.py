"""Look, create, look again, in rounds: how apply creates what is missing, never twice."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from typing import Generic, TypeVar

from ftops import stop
from ftops.plan import Action

S = TypeVar("S")  # what a look returns


@dataclass(eq=False)
class Create:
    """One create in a pipeline: ``action`` plus what its create left to settle. Only the
    thread running the pipeline changes it, with what the create's worker returned."""

    action: Action
    result: object = None  # what the create returned
    # Any failed create is settled by the next look before it is reported: a 5xx sent after the
    # create, or a reply lost on the way back, may hide one that happened.
    failure: Exception | None = None


class Pipeline(Generic[S]):
    """Creates what a look shows missing, within ``budget`` (one slot per request).

    Each round sends one look together with up to ``budget.size - 1`` creates (one at a time
    when the budget has one slot). Every create is checked by a look begun after it was chosen
    and settled by a look begun after it returned, the same rule as look / create / look per
    item, but one look serves every create of a round, so N slots send more than N times the
    creates of one. ``check`` and ``settle`` run on the pipeline's own thread; ``create``
    runs on a worker of ``pool`` and returns what it made, taking slots for its requests.

    Actions of one ``key`` (two models of one fingerprint) make one thing: while one of them is
    being created, the others wait, to be checked by a look begun after it was settled.

    Between rounds nothing is in flight: a stop asked by then (``ftops.stop``) raises
    ``Interrupted`` there, and the creates of the last round are left to the caller's look.

    Two looks need not be sent: ``run(actions, first=...)`` takes a read the caller made just
    now (the confirmed plan's, which already served as apply's re-check) as the first round's
    look; and ``last``, when given, is the look of the round that only settles (nothing is left
    to check or create, so nothing else is in flight): it takes its own slots, so it may read
    at once what the caller reads next (the account the mend and the lock are made from).
    """

    def __init__(self, pool: ThreadPoolExecutor, budget: stop.RequestBudget, *,
                 look: Callable[[], S],
                 check: Callable[[Create, S], bool],
                 create: Callable[[Create], object],
                 settle: Callable[[Create, S], None],
                 key: Callable[[Action], str] = lambda action: action.address,
                 last: Callable[[], S] | None = None) -> None:
        self.pool, self.budget, self.key, self.last = pool, budget, key, last
        self.look, self.check, self.create, self.settle = look, check, create, settle

    def run(self, actions: list[Action], first: S | None = None) -> None:
        waiting = [Create(a) for a in actions]
        per_round = max(1, self.budget.size - 1)
        to_create: list[Create] = []
        settling: list[Create] = []
        errors: list[Exception] = []
        if first is not None:  # the first round's look, made by the caller
            checking, waiting = waiting[:per_round], waiting[per_round:]
            to_create, twins = self._choose(checking, first, busy=[])
            waiting = twins + waiting
        while waiting or to_create or settling:
            stop.check()
            checking, waiting = waiting[:per_round], waiting[per_round:]
            creating, to_create = to_create, []
            if self.budget.size == 1:  # nothing to overlap: the creates, then the look
                self._create_all(creating, [])
                settling += creating
                creating = []
            sent = [self.pool.submit(self._create, item) for item in creating]
            final = self.last is not None and not (checking or waiting or creating)
            # The look holds a slot; ``last`` takes its own, one per request it sends.
            looked = self.pool.submit(self.last if final and self.last is not None
                                      else partial(self.budget.call, self.look))
            self._create_all(creating, sent)  # whatever the look does, no create is unobserved
            snapshot = looked.result()
            for item in settling:
                try:
                    self.settle(item, snapshot)
                except Exception as exc:  # reported once the pipeline has drained
                    errors.append(exc)
            settling = creating
            to_create, twins = self._choose(checking, snapshot, busy=settling)
            waiting = twins + waiting
            if errors:  # start nothing new once something failed
                waiting, to_create = [], []
        if errors:
            raise errors[0]

    def _choose(self, checking: list[Create], snapshot: S, *,
                busy: list[Create]) -> tuple[list[Create], list[Create]]:
        """What to create of ``checking``, and the twins of a create not yet settled."""
        making = {self.key(item.action) for item in busy}
        chosen: list[Create] = []
        twins: list[Create] = []
        for item in checking:
            if self.key(item.action) in making:
                twins.append(item)
            elif not self.check(item, snapshot):
                making.add(self.key(item.action))
                chosen.append(item)
        return chosen, twins

    def _create_all(self, items: list[Create],
                    sent: list[Future[tuple[object, Exception | None]]]) -> None:
        """Waits for every create (sent now unless ``sent``), then records what each left."""
        futures = sent or [self.pool.submit(self._create, item) for item in items]
        wait(futures)  # all return before a stop is raised: none is left unobserved
        for item, future in zip(items, futures, strict=True):
            item.result, item.failure = future.result()

    def _create(self, item: Create) -> tuple[object, Exception | None]:
        try:
            return self.create(item), None
        except Exception as exc:  # settled by the next look: it may have happened after all
            return None, exc
