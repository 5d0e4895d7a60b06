from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ftops.errors import FtopsError
from ftops.identity import fingerprints
from ftops.lock import Lock, LockedModel, dump_lock, read_lock, update_lock, write_lock
from ftops.state import Actual, Desired, DesiredDataset, Job, ResolvedModel

REPO = "github.com/acme/assistants"
SHA = hashlib.sha256(b"train").hexdigest()
NANO = "gpt-4.1-nano-2025-04-14"


def _desired(*names: str) -> Desired:
    return Desired(
        datasets=(DesiredDataset("t", "t.jsonl", SHA, 10),),
        models=tuple(ResolvedModel(n, training="t", base_model=NANO, suffix=n) for n in names),
        repo=REPO,
    )


def _job(job_id: str, status: str, name: str, fingerprint: str, created: int = 1,
         **kw: object) -> Job:
    meta = {"ftops_model": name, "ftops_fingerprint": fingerprint, "ftops_repo": REPO}
    return Job(job_id, status, NANO, "file-1", created, metadata=meta, **kw)  # type: ignore[arg-type]


def test_dump_is_deterministic_and_diff_friendly() -> None:
    lock = Lock(models={
        "zeta": LockedModel("f" * 64, "ftjob-2", "running"),
        "alpha": LockedModel("e" * 64, "ftjob-1", "succeeded",
                             fine_tuned_model="ft:gpt-4.1-nano-2025-04-14:acme:alpha:AbC123",
                             trained_tokens=12345),
        "lab": LockedModel("d" * 64, "ftjob-3", "queued", provider="lab"),
    })
    assert dump_lock(lock) == f"""\
# ftops.lock: the fine-tuning job behind each declared model, written by `ftops apply`
# and `ftops status`. Commit it; applications read fine_tuned_model ids from here.
# Do not edit by hand: it is rebuilt from the account on every apply.
version: 1
models:
  alpha:
    fine_tuned_model: ft:gpt-4.1-nano-2025-04-14:acme:alpha:AbC123
    fingerprint: {"e" * 64}
    job_id: ftjob-1
    status: succeeded
    trained_tokens: 12345
  lab:
    fine_tuned_model: null
    fingerprint: {"d" * 64}
    job_id: ftjob-3
    provider: lab
    status: queued
    trained_tokens: null
  zeta:
    fine_tuned_model: null
    fingerprint: {"f" * 64}
    job_id: ftjob-2
    status: running
    trained_tokens: null
"""
    reordered = Lock(models=dict(reversed(list(lock.models.items()))))
    assert dump_lock(reordered) == dump_lock(lock)


def test_write_then_read_round_trips_atomically(tmp_path: Path) -> None:
    path = tmp_path / "ftops.lock"
    assert read_lock(path) == Lock()
    lock = Lock(models={"bot": LockedModel("a" * 64, "ftjob-1", "succeeded", "ft:x:y:z:1", 7)},
                aliases={"production": {"model": "bot", "fine_tuned_model": "ft:x:y:z:1"}})
    write_lock(path, lock)
    assert read_lock(path) == lock
    first = path.read_bytes()
    write_lock(path, read_lock(path))
    assert path.read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ftops.lock"]  # no temp files left


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "ftops.lock"
    write_lock(path, Lock())
    before = path.read_text()
    bad = Lock(models={"bot": LockedModel("a" * 64, "ftjob-1", "ok", trained_tokens=object())})  # type: ignore[arg-type]
    with pytest.raises(Exception, match="cannot represent"):
        write_lock(path, bad)
    assert path.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ftops.lock"]


@pytest.mark.parametrize(("text", "message"), [
    ("version: 1\nmodels: [\n", "ftops.lock:3: not valid YAML"),
    ("- 1\n", "ftops.lock:1: not an ftops lock file"),
    ("version: 2\nmodels: {}\n", "ftops.lock:1: lock version 2 is not supported"),
    ("version: 1\nmodels: {}\nextra: 1\n", "ftops.lock:3: unknown key 'extra'"),
    ("version: 1\nmodels:\n  bot:\n    job_id: ftjob-1\n    status: queued\n",
     "ftops.lock:3: model 'bot': missing 'fingerprint'"),
    ("version: 1\nmodels:\n  a: {fingerprint: f, job_id: j, status: s}\n"
     "  bot: {fingerprint: f, job_id: j, status: s, colour: red}\n",
     "ftops.lock:4: model 'bot': unknown key 'colour'"),
])
def test_read_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "ftops.lock"
    path.write_text(text)
    with pytest.raises(FtopsError) as err:
        read_lock(path)
    assert str(err.value).startswith(str(tmp_path / message))
    assert str(err.value).endswith("(restore it from git or delete it; apply rebuilds it)")


def test_update_lock_follows_the_declared_fingerprint() -> None:
    d = _desired("bot", "new", "stale")
    fps = fingerprints(d)
    actual = Actual(jobs=(
        _job("ftjob-1", "succeeded", "bot", fps["bot"], 1, fine_tuned_model="ft:bot",
             trained_tokens=900),
        _job("ftjob-2", "cancelled", "bot", fps["bot"], 2),
        _job("ftjob-3", "running", "new", fps["new"], 3),
        _job("ftjob-4", "succeeded", "stale", "0" * 64, 4, fine_tuned_model="ft:old"),
        Job("ftjob-5", "succeeded", NANO, "file-1", 5, fine_tuned_model="ft:someone-else"),
    ))
    kept = LockedModel("0" * 64, "ftjob-4", "succeeded", "ft:old")
    previous = Lock(models={"stale": kept, "removed": LockedModel("9" * 64, "ftjob-0", "x")},
                    aliases={"prod": {"model": "bot"}})
    lock = update_lock(previous, d, actual)
    assert lock == Lock(
        models={
            "bot": LockedModel(fps["bot"], "ftjob-1", "succeeded", "ft:bot", 900),
            "new": LockedModel(fps["new"], "ftjob-3", "running"),
            "stale": kept,  # no job for its new fingerprint yet: the old record stays
        },
        aliases={"prod": {"model": "bot"}},
    )
    assert update_lock(lock, d, actual) == lock
