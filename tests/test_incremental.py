"""Incremental validation: a changed file re-analyses only its changed blocks of lines, and the
report is exactly that of a full analysis, whatever the edit, the settings or the cache's state
(evicted, damaged, shared by concurrent runs)."""

from __future__ import annotations

import itertools
import json
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ftops import datacache
from ftops.datasets import analyze, find_overlap, incremental
from ftops.datasets.blocks import Cutter, Rule, content_hash
from ftops.datasets.lines import join, make_settings, new_counter, scan_lines

# Small blocks, so files of a few hundred lines have tens of them.
RULE = Rule(min_bytes=512, spread_bytes=1536, max_bytes=4096)
OPTIONS: dict[str, Any] = {"block_rule": RULE, "workers": 1}
WORDS = ["the", "order", "refund", "shipping", "account", "password", "invoice", "tracking",
         "delivery", "cancel"]


def _example(rng: random.Random) -> dict[str, Any]:
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 40)))
    return {"messages": [{"role": "user", "content": f"q{rng.randrange(10**6)} {text}"},
                         {"role": "assistant", "content": text}]}


def _line(rng: random.Random, earlier: list[bytes]) -> bytes:
    """One line: mostly valid, sometimes a repeat of an earlier one or one of several errors."""
    kind = rng.random()
    if kind < 0.08 and earlier:
        return rng.choice(earlier)  # a duplicate
    if kind < 0.11:
        return b""  # blank
    if kind < 0.14:
        return b'{"messages": [}'  # invalid JSON
    if kind < 0.16:
        return b"[1, 2]"  # not an object
    if kind < 0.18:
        return b'{"messages": [{"role": "user", "content": "caf\xe9"}]}'  # not UTF-8
    if kind < 0.21:
        return json.dumps({"messages": [{"role": "user", "content": "no reply"}]}).encode()
    return json.dumps(_example(rng), ensure_ascii=False).encode()


def _lines(rng: random.Random, n: int, earlier: list[bytes] | None = None) -> list[bytes]:
    out: list[bytes] = []
    for _ in range(n):
        out.append(_line(rng, (earlier or []) + out))
    return out


def _write(path: Path, lines: list[bytes], newline_at_end: bool = True) -> None:
    path.write_bytes(b"\n".join(lines) + (b"\n" if newline_at_end and lines else b""))


def _edit(rng: random.Random, lines: list[bytes]) -> tuple[str, list[bytes]]:
    """A random edit of the kinds users make: appends, inserts, deletions, rewrites."""
    kind = rng.choice(["append", "insert", "delete", "replace", "move", "prepend"])
    at = rng.randrange(len(lines) + 1)
    if kind == "append":
        return kind, lines + _lines(rng, rng.randint(1, 30), lines)
    if kind == "insert":
        return kind, lines[:at] + _lines(rng, rng.randint(1, 5), lines) + lines[at:]
    if kind == "delete":
        return kind, lines[:at] + lines[at + rng.randint(1, 8):]
    if kind == "replace" and at < len(lines):
        return kind, lines[:at] + _lines(rng, 1, lines) + lines[at + 1:]
    if kind == "move" and at < len(lines):  # a line moved later: duplicates' "earlier" lines move
        rest = lines[:at] + lines[at + 1:]
        to = rng.randrange(len(rest) + 1)
        return kind, [*rest[:to], lines[at], *rest[to:]]
    return "prepend", _lines(rng, 2, lines) + lines


@pytest.fixture
def scanned(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """The byte ranges the incremental path analyses in this process (workers=1)."""
    seen: list[bytes] = []
    real = incremental.scan_lines

    def spy(data: bytes, *args: Any) -> Any:
        seen.append(data)
        return real(data, *args)

    monkeypatch.setattr(incremental, "scan_lines", spy)
    yield seen


def _same_as_full(path: Path, cache: Path, **settings: Any) -> dict[str, Any]:
    cached = analyze(path, cache_dir=cache, **OPTIONS, **settings).to_dict()
    assert cached == analyze(path, **settings).to_dict()
    return cached


# --- exactness -----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_edits_give_the_report_of_a_full_analysis(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    path, cache = tmp_path / "train.jsonl", tmp_path / "cache"
    lines = _lines(rng, 300)
    settings = {"token_limit": 40, "max_errors": 4}  # findings past the cap are counted only
    for _ in range(12):
        _write(path, lines, newline_at_end=rng.random() < 0.8)
        report = _same_as_full(path, cache, **settings)
        assert report["error_count"] > 4 and report["warning_count"] > 4  # caps are exercised
        _, lines = _edit(rng, lines)


def test_every_setting_that_changes_results_is_in_the_block_key(tmp_path: Path) -> None:
    path, cache = tmp_path / "t.jsonl", tmp_path / "cache"
    rng = random.Random(4)
    _write(path, _lines(rng, 200))
    variants: list[dict[str, Any]] = [
        {}, {"max_errors": 2}, {"token_limit": 30}, {"encoding": "cl100k_base"},
        {"fmt": "preference"}, {"max_errors": 0, "token_limit": 10},
    ]
    for variant in variants:
        _same_as_full(path, cache, **variant)
    with path.open("ab") as stream:  # the report entries miss; the blocks of each setting hit
        stream.write(b"\n".join(_lines(rng, 5)) + b"\n")
    for variant in variants:
        _same_as_full(path, cache, **variant)


def test_worker_processes_give_the_same_reports(tmp_path: Path) -> None:
    rng = random.Random(5)
    path, cache = tmp_path / "t.jsonl", tmp_path / "cache"
    lines = _lines(rng, 400)
    for edit in range(3):
        _write(path, lines)
        options = {"block_rule": RULE, "workers": 2, "token_limit": 40, "max_errors": 5}
        assert analyze(path, cache_dir=cache, **options) == analyze(path, **options)
        lines = _edit(rng, lines)[1] if edit else lines + _lines(rng, 50, lines)


def test_joined_scans_equal_one_scan() -> None:
    rng = random.Random(6)
    data = b"\n".join(_lines(rng, 80)) + b"\n"
    settings = make_settings("chat", "o200k_base", 30, 3, 10**9)
    counter = new_counter("o200k_base")
    cuts = [i + 1 for i, byte in enumerate(data) if byte == 10]
    for cut in rng.sample(cuts, 10):
        joined = join(scan_lines(data[:cut], settings, counter),
                      scan_lines(data[cut:], settings, counter), settings.max_errors)
        assert joined == scan_lines(data, settings, counter)


def test_overlap_stays_exact_after_an_edit(tmp_path: Path) -> None:
    rng = random.Random(7)
    train, held, cache = tmp_path / "train.jsonl", tmp_path / "held.jsonl", tmp_path / "cache"
    lines = _lines(rng, 200)
    _write(held, [lines[10], lines[150], *_lines(rng, 10)])
    _write(train, lines)
    analyze(train, cache_dir=cache, **OPTIONS)
    _write(train, lines[:100] + _lines(rng, 3) + lines[120:] + [lines[0]])
    analyze(train, cache_dir=cache, **OPTIONS)  # writes the digests find_overlap reads
    assert find_overlap(train, held, cache_dir=cache) == find_overlap(train, held)


# --- what is re-analysed -------------------------------------------------------------------------


def test_an_append_analyses_only_the_new_lines(tmp_path: Path, scanned: list[bytes]) -> None:
    rng = random.Random(8)
    path, cache = tmp_path / "t.jsonl", tmp_path / "cache"
    lines = _lines(rng, 400)
    _write(path, lines)
    _same_as_full(path, cache)
    assert b"".join(scanned) == path.read_bytes()  # a cold cache: every line once
    for count in (1, 7, 60):
        scanned.clear()
        new = b"\n".join(_lines(rng, count, lines)) + b"\n"
        with path.open("ab") as stream:
            stream.write(new)
        lines += new.splitlines()
        _same_as_full(path, cache)
        # The new lines, in order, but for a block that repeats one seen before (content is
        # content: a repeated line can make a block already known).
        assert all(piece in new for piece in scanned)
        assert len(new) - 2 * RULE.max_bytes < sum(map(len, scanned)) <= len(new)
        assert new.startswith(scanned[0]) and new.endswith(scanned[-1])
    scanned.clear()
    _same_as_full(path, cache)  # unchanged: the whole-file report, nothing read
    assert scanned == []


def test_an_edit_in_the_middle_analyses_only_blocks_around_it(
    tmp_path: Path, scanned: list[bytes]
) -> None:
    rng = random.Random(9)
    path, cache = tmp_path / "t.jsonl", tmp_path / "cache"
    lines = _lines(rng, 1200)
    _write(path, lines)
    _same_as_full(path, cache)
    size = path.stat().st_size
    for _ in range(10):
        kind, lines = _edit(rng, lines)
        _write(path, lines)
        scanned.clear()
        _same_as_full(path, cache)
        # Per place edited (a move edits two), the block that holds it and at most the next:
        # the cuts resynchronise.
        places = 2 if kind == "move" else 1
        assert sum(map(len, scanned)) <= places * (2 * RULE.max_bytes + 2000), kind
    assert size > 25 * RULE.max_bytes


def test_content_defined_cuts_survive_an_insertion() -> None:
    rng = random.Random(10)
    data = b"\n".join(_lines(rng, 3000)) + b"\n"

    def blocks(data: bytes, piece: int) -> list[bytes]:
        cutter = Cutter(RULE)
        cuts = [b for i in range(0, len(data), piece) for b in cutter.feed(data[i:i + piece])]
        last = cutter.finish()
        cuts += [last] if last else []
        assert [offset for offset, _, _ in cuts] == [0, *itertools.accumulate(
            length for _, length, _ in cuts[:-1])]
        out = [data[offset:offset + length] for offset, length, _ in cuts]
        assert [content_hash(block) for block in out] == [digest for _, _, digest in cuts]
        return out

    before = blocks(data, 4096)
    assert b"".join(before) == data
    # Where the pieces end does not matter, even inside a line or one byte at a time.
    assert blocks(data, 1000) == blocks(data, 10**6) == blocks(data, 333) == before
    assert blocks(data[:20_000], 1) == blocks(data[:20_000], 4096)
    assert all(RULE.min_bytes <= len(b) for b in before[:-1])
    assert all(b.endswith(b"\n") for b in before)
    middle = data.index(b"\n", len(data) // 2) + 1
    after = blocks(data[:middle] + b'{"inserted": 1}\n' + data[middle:], 4096)
    assert len(set(after) - set(before)) <= 2 and len(after) > 50
    unended = blocks(data + b'{"no": "newline"}', 4096)
    # The old last block ended at the end of the file, where the rule may or may not cut.
    assert unended[:-1] in (before, before[:-1]) and unended[-1].endswith(b'"newline"}')


# --- the cache's state ---------------------------------------------------------------------------


def _entries(cache: Path) -> list[Path]:
    return sorted((cache / "blocks").glob("*/*.bin"))


def test_damaged_entries_are_recomputed_never_trusted(tmp_path: Path) -> None:
    rng = random.Random(11)
    path, cache = tmp_path / "t.jsonl", tmp_path / "cache"
    lines = _lines(rng, 300)
    _write(path, lines)
    _same_as_full(path, cache, max_errors=3)
    entries = _entries(cache)
    assert len(entries) > 10
    entries[0].write_bytes(entries[0].read_bytes()[:-7])  # truncated
    entries[1].write_bytes(b"not json at all")
    entries[2].write_bytes(entries[3].read_bytes())  # intact, but another block's entry
    raw = bytearray(entries[4].read_bytes())
    raw[-3] ^= 0xFF  # one flipped bit in the digests
    entries[4].write_bytes(bytes(raw))
    header, _, rest = entries[5].read_bytes().partition(b"\n")[2].partition(b"\n")
    wrong = json.loads(header) | {"format": 0, "counted": 10**6}  # another version, framed
    datacache.save_block(cache, entries[5].stem, json.dumps(wrong).encode() + b"\n" + rest)
    note = next((cache / "datasets").glob("layout-*.bin"))
    note.write_bytes(note.read_bytes()[:40])
    with path.open("ab") as stream:  # so that the whole-file report is not the answer
        stream.write(lines[0] + b"\n")
    _same_as_full(path, cache, max_errors=3)
    for damaged in entries[:6]:  # rewritten whole
        assert datacache.load_block(cache, damaged.stem) is not None


@pytest.mark.parametrize("checkpoint", ["intact", "deleted", "truncated", "forged", "other"])
def test_an_append_resumes_from_a_checkpoint_only_if_it_is_intact_and_its_own(
    tmp_path: Path, scanned: list[bytes], checkpoint: str
) -> None:
    rng = random.Random(12)
    path, cache = tmp_path / "t.jsonl", tmp_path / "cache"
    lines = _lines(rng, 300)
    _write(path, lines)
    _same_as_full(path, cache, max_errors=3)
    for entry in _entries(cache)[::3]:
        entry.unlink()  # evicted by another process
    note = next((cache / "datasets").glob("totals-*.bin"))
    body = datacache.load_note(cache, note.name)
    assert body is not None
    if checkpoint == "deleted":
        note.unlink()
    elif checkpoint == "truncated":
        note.write_bytes(note.read_bytes()[:-100])
    elif checkpoint == "forged":  # intact, but for another version of the file
        header, _, rest = body.partition(b"\n")
        forged = json.loads(header) | {"sha256": "0" * 64}
        datacache.save_note(cache, note.name, json.dumps(forged).encode() + b"\n" + rest)
    elif checkpoint == "other":  # intact, but its totals are not totals
        header, _, rest = body.partition(b"\n")
        datacache.save_note(cache, note.name, header + b"\n" + b'{"lines": 1}\n')
    new = b"\n".join(_lines(rng, 20, lines)) + b"\n"
    with path.open("ab") as stream:
        stream.write(new)
    scanned.clear()
    _same_as_full(path, cache, max_errors=3)
    if checkpoint == "intact":  # evicted blocks are not needed, but for the old last one
        assert sum(map(len, scanned)) <= len(new) + RULE.max_bytes
    else:  # the totals come from the blocks: the evicted ones are analysed again
        assert len(new) < sum(map(len, scanned)) < path.stat().st_size


def test_the_cache_is_bounded_least_recently_used_first(tmp_path: Path) -> None:
    rng = random.Random(13)
    cache = tmp_path / "cache"
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    _write(first, _lines(rng, 300))
    _write(second, _lines(rng, 300))
    analyze(first, cache_dir=cache, **OPTIONS)
    one_file = sum(e.stat().st_size for e in _entries(cache))
    limit = int(one_file * 1.5)
    old = set(_entries(cache))
    _same_as_full(second, cache, cache_bytes=limit)  # both do not fit: the first's go first
    kept = set(_entries(cache))
    assert sum(e.stat().st_size for e in kept) <= limit
    assert kept - old and old - kept
    assert len(kept & old) < len(old) / 2
    # Used again (hits refresh recency, misses are written anew), the first file's blocks now
    # outlive the second's. A line put first: an append would not even look at old blocks.
    _write(first, [b"[]", *first.read_bytes().splitlines()])
    _same_as_full(first, cache, cache_bytes=limit)
    assert len(set(_entries(cache)) & old) > len(old) / 2


def test_concurrent_runs_share_a_small_cache_safely(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    failures: list[str] = []

    def run(seed: int) -> None:
        rng = random.Random(seed)
        path = tmp_path / f"f{seed}.jsonl"
        lines = _lines(random.Random(0), 300)  # the same blocks, written and evicted by both
        try:
            for _ in range(6):
                _write(path, lines)
                cached = analyze(path, cache_dir=cache, cache_bytes=20_000, **OPTIONS)
                if cached != analyze(path):
                    failures.append(f"seed {seed}")
                lines = _edit(rng, lines)[1]
        except Exception as exc:  # pragma: no cover - reported below
            failures.append(repr(exc))

    threads = [threading.Thread(target=run, args=(seed,)) for seed in (1, 2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    # Concurrent runs may each miss the other's bytes in the running total, so the bound holds
    # within one run's writes until the next listing counts exactly.
    assert sum(e.stat().st_size for e in _entries(cache)) <= 20_000 * 2


def test_eviction_removes_temporary_files_of_dead_writers(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    datacache.save_block(cache, "ab" + "0" * 30, b"x" * 100)
    stale = cache / "blocks" / "ab" / ".abc.1234.tmp"
    stale.write_bytes(b"half")
    live = cache / "blocks" / "ab" / ".abd.1234.tmp"
    live.write_bytes(b"half")
    ten_minutes_ago = datacache.time.time_ns() - 601 * 10**9
    datacache.os.utime(stale, ns=(ten_minutes_ago, ten_minutes_ago))
    (cache / "blocks" / "usage").unlink(missing_ok=True)  # makes the next bound count
    datacache.bound_blocks(cache, 0, limit=10**6)
    assert not stale.exists() and live.exists()
    # The one entry counted: its 32-character checksum line and 100 bytes.
    assert int((cache / "blocks" / "usage").read_bytes()) == 33 + 100
