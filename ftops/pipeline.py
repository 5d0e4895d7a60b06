"""Look, create, look again, in rounds: how apply creates what is missing, never twice."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from ftops.plan import Action

S = TypeVar("S")  # what a look returns


@dataclass(eq=False)
class Create:
    """One create in a pipeline: ``action`` plus what its create left to settle."""

    action: Action
    result: object = None  # what the create returned
    # Any failed create is settled by the next look before it is reported: a 5xx sent after the
    # create, or a reply lost on the way back, may hide one that happened.
    failure: Exception | None = None


class Pipeline(Generic[S]):
    """Creates what a look shows missing, ``slots`` requests at a time.

    Each round sends one look together with up to ``slots - 1`` creates (one at a time when
    ``slots`` is 1). Every create is checked by a look begun after it was chosen and settled by a
    look begun after it returned, the same rule as look / create / look per item, but one look
    serves every create of a round, so N slots send more than N times the creates of one.
    """

    def __init__(self, pool: ThreadPoolExecutor, slots: int, *,
                 look: Callable[[], S],
                 check: Callable[[Create, S], bool],
                 create: Callable[[Create], None],
                 settle: Callable[[Create, S], None]) -> None:
        self.pool, self.slots = pool, slots
        self.look, self.check, self.create, self.settle = look, check, create, settle

    def run(self, actions: list[Action]) -> None:
        waiting = [Create(a) for a in actions]
        per_round = max(1, self.slots - 1)
        to_create: list[Create] = []
        settling: list[Create] = []
        errors: list[Exception] = []
        while waiting or to_create or settling:
            checking, waiting = waiting[:per_round], waiting[per_round:]
            creating, to_create = to_create, []
            if self.slots == 1:  # nothing to overlap: the create, then the look that settles it
                self._wait([self.pool.submit(self._create, item) for item in creating])
                settling += creating
                creating = []
            sent = [self.pool.submit(self._create, item) for item in creating]
            looked = self.pool.submit(self.look)
            self._wait(sent)  # whatever the look does, no create is left unobserved
            snapshot = looked.result()
            for item in settling:
                try:
                    self.settle(item, snapshot)
                except Exception as exc:  # reported once the pipeline has drained
                    errors.append(exc)
            settling = creating
            to_create = [item for item in checking if not self.check(item, snapshot)]
            if errors:  # start nothing new once something failed
                waiting, to_create = [], []
        if errors:
            raise errors[0]

    @staticmethod
    def _wait(futures: list[Future[None]]) -> None:
        for future in futures:
            future.result()

    def _create(self, item: Create) -> None:
        try:
            self.create(item)
        except Exception as exc:  # settled by the next look: it may have happened after all
            item.failure = exc
