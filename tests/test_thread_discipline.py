"""Only the thread that owns an apply changes its shared results: workers (creates, followers)
return values that the owner folds in; ``Features`` is shared and locks itself."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from ftops.apply import Executor
from ftops.commands import session
from ftops.emulator import Emulator
from ftops.project import load_project
from ftops.providers import CAPABILITIES, Features, Remote
from tests.conftest import sdk_client
from tests.test_engine import Project, model


class Watched(dict[Any, Any]):
    """A dict that records every thread that changes it."""

    def __init__(self, writers: set[str], name: str) -> None:
        super().__init__()
        self.writers, self.name = writers, name

    def __setitem__(self, key: Any, value: Any) -> None:
        self.writers.add(f"{self.name} from {threading.current_thread().name}")
        super().__setitem__(key, value)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value


class WatchedList(list[Any]):
    def __init__(self, writers: set[str], name: str) -> None:
        super().__init__()
        self.writers, self.name = writers, name

    def append(self, item: Any) -> None:
        self.writers.add(f"{self.name} from {threading.current_thread().name}")
        super().append(item)


def test_only_the_owning_thread_changes_the_results(tmp_path: Path) -> None:
    proj = Project(tmp_path / "repo")
    proj.write({"parent": model("train-a", suffix="parent"),
                "child": model("train-b", base="parent", suffix="child"),
                "other": model("train-b", suffix="other", epochs=2)})
    proj.commit()
    project = load_project(proj.specs)
    with Emulator(job_seconds=0) as emu, sdk_client(emu.base_url) as sdk:
        remote = Remote(sdk, repo=project.desired.repo)
        remotes = {"openai": remote}
        plan = session.plan_for(project, remotes, remote.read(), prune=False,
                                allow_delete_models=False, today=None)
        executor = Executor(plan, remotes, root=project.root, parallel=4, wait_for_jobs=True)
        writers: set[str] = set()
        executor.file_ids = Watched(writers, "file_ids")
        executor.model_ids = Watched(writers, "model_ids")
        for name in ("started", "deferred", "failed"):
            setattr(executor.outcome, name, Watched(writers, name))
        for name in ("uploaded", "reused", "deduplicated", "pruned"):
            setattr(executor.outcome, name, WatchedList(writers, name))
        outcome = executor.run()
    assert outcome.ok, outcome.failed
    assert set(outcome.started) == {"parent", "child", "other"}
    assert set(executor.model_ids) == {"parent", "child", "other"}
    owner = threading.current_thread().name
    assert {w for w in writers if not w.endswith(f" from {owner}")} == set()


def test_a_refused_feature_is_dropped_and_told_once_whatever_the_threads(
        caplog: pytest.LogCaptureFixture) -> None:
    threads = 8
    features = Features("lab", CAPABILITIES["compatible"])  # probed: dropped on a 400
    together = threading.Barrier(threads)
    with Emulator(metadata_filter=False) as emu, sdk_client(emu.base_url) as sdk:
        def filtered() -> list[Any]:
            together.wait()  # every thread tries the feature before any is refused
            return list(sdk.fine_tuning.jobs.list(metadata={"ftops_repo": "r"}))

        def attempt() -> None:
            assert features.attempt("metadata_filter", filtered,
                                    lambda: list(sdk.fine_tuning.jobs.list())) == []

        with caplog.at_level(logging.WARNING, logger="ftops.providers.features"):
            workers = [threading.Thread(target=attempt) for _ in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
    assert features.dropped == {"metadata_filter"}
    notices = [r for r in caplog.records if "metadata filter" in r.getMessage()]
    assert len(notices) == 1, [r.getMessage() for r in notices]
