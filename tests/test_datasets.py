from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from test_tokens import COOKBOOK_MESSAGES

from ftops import datacache
from ftops.datasets import (
    DatasetReport,
    analyze,
    billed_tokens,
    default_epochs,
    estimate_cost_usd,
    find_overlap,
)
from ftops.errors import Diagnostic, FtopsError
from ftops.tokens import get_encoding

FIXTURES = Path(__file__).parent / "fixtures" / "datasets"


def codes(findings: tuple[Diagnostic, ...]) -> list[tuple[int | None, str]]:
    return [(f.line, f.code) for f in findings]


def analyze_data(data: bytes, **options: Any) -> DatasetReport:
    """``analyze`` of ``data`` written to a file of its own (the one way ftops reads data)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.jsonl"
        path.write_bytes(data)
        return analyze(path, **options)


def warning(line: int, code: str, message: str) -> Diagnostic:
    """A dataset finding in a report's warnings (duplicates, overlaps, long examples)."""
    return Diagnostic("warning", code, message, line=line)


def n(text: str, encoding: str = "o200k_base") -> int:
    return len(get_encoding(encoding).encode(text))


def cookbook_tokens(messages: list[dict[str, str]], encoding: str = "o200k_base") -> int:
    """The cookbook's num_tokens_from_messages, written out independently of ftops.tokens."""
    total = 3
    for message in messages:
        total += 3
        for key, value in message.items():
            total += n(value, encoding)
            if key == "name":
                total += 1
    return total


def qa(question: str, answer: str) -> dict[str, list[dict[str, str]]]:
    return {"messages": [{"role": "user", "content": question},
                         {"role": "assistant", "content": answer}]}


def write_jsonl(path: Path, examples: list[object]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in examples), encoding="utf-8")
    return path


# --- validation ----------------------------------------------------------------------------------


def test_every_chat_error_code_on_its_exact_line() -> None:
    report = analyze(FIXTURES / "chat_errors.jsonl")
    assert codes(report.errors) == [
        (2, "invalid_json"),
        (3, "not_an_object"),
        (4, "empty_line"),
        (5, "non_utf8"),
        (6, "missing_messages"),
        (7, "messages_not_list"),
        (8, "message_not_dict"),
        (9, "missing_role"),
        (10, "unrecognized_role"),
        (11, "missing_content"),
        (12, "content_not_string"),
        (13, "unrecognized_key_in_message"),
        (14, "no_assistant_message"),
        (15, "invalid_weight"),
        (16, "invalid_tool_call"),
        (17, "tool_reply_without_call"),
        (18, "invalid_weight"),  # one line, several codes
        (18, "missing_content"),
    ]
    assert report.error_count == 18
    assert not report.ok
    assert report.examples == 17  # every non-blank line
    assert report.tokens.counted == 1  # only line 1 is valid
    assert report.tokens.total == cookbook_tokens(qa("hello", "hi")["messages"])


def test_error_messages_say_what_where_and_how_to_fix() -> None:
    report = analyze(FIXTURES / "chat_errors.jsonl")
    by_line = {f.line: f.message for f in report.errors}
    assert by_line[10] == (
        "message 2 has role \"assitant\" (did you mean 'assistant'?); expected one of system, "
        "developer, user, assistant, tool, function"
    )
    assert by_line[5] == "not valid UTF-8: byte 0xe9 at byte 47; save the file as UTF-8"
    assert by_line[13].startswith("message 1 (user) has unrecognized key 'contnet' "
                                  "(did you mean 'content'?)")
    assert by_line[6].endswith("(prompt/completion is the legacy format)")
    first = report.diagnostics()[0]
    assert str(first) == (
        f"{FIXTURES / 'chat_errors.jsonl'}:2: invalid_json: invalid JSON: "
        "Expecting ',' delimiter at column 48"
    )


def test_json_python_accepts_but_the_standard_does_not_is_invalid() -> None:
    valid = json.dumps(qa("q", "a")).encode()
    data = b"\n".join([
        b'{"score": NaN, ' + valid[1:],
        b"\xef\xbb\xbf" + valid,
        b"[" * 100_000 + b"]" * 100_000,
        valid,
    ])
    report = analyze_data(data)
    assert [(f.line, f.code, f.message) for f in report.errors if f.line] == [
        (1, "invalid_json", "invalid JSON: NaN is not valid JSON (Python writes it for a float "
         "that is not finite)"),
        (2, "invalid_json", "invalid JSON: the line starts with a byte order mark; save without "
         "BOM"),
        (3, "invalid_json", "invalid JSON: nested too deeply to read"),
    ]
    assert report.tokens.counted == 1


def test_valid_chat_covers_tools_functions_weights_names_and_images() -> None:
    report = analyze(FIXTURES / "chat_valid.jsonl")
    assert report.ok
    assert (report.examples, report.tokens.counted, report.warnings) == (12, 12, ())
    assert (report.tokens.total, report.tokens.min, report.tokens.max) == (561, 16, 117)
    assert report.tokens.mean == 561 / 12
    assert report.billable_tokens == 561  # no limit given
    assert report.sha256 == hashlib.sha256((FIXTURES / "chat_valid.jsonl").read_bytes()).hexdigest()


@pytest.mark.parametrize(("encoding", "cookbook"), [("cl100k_base", 129), ("o200k_base", 124)])
def test_token_totals_follow_the_cookbook(tmp_path: Path, encoding: str, cookbook: int) -> None:
    prompt = COOKBOOK_MESSAGES
    assert cookbook_tokens(prompt, encoding) == cookbook
    examples = [{"messages": [*prompt, {"role": "assistant", "content": f"Answer {i}."}]}
                for i in range(10)]
    report = analyze(write_jsonl(tmp_path / "c.jsonl", examples), encoding=encoding)
    expected = [cookbook_tokens(e["messages"], encoding) for e in examples]
    assert expected[0] == cookbook + 3 + n("assistant", encoding) + n("Answer 0.", encoding)
    assert (report.tokens.total, report.tokens.counted) == (sum(expected), 10)


CALL = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
TOOLS = [{"type": "function", "function": {"name": "lookup"}}]
USER = {"role": "user", "content": "hi"}
ANSWER = {"role": "assistant", "content": "ok"}


@pytest.mark.parametrize(
    ("example", "expected"),
    [
        ({"tools": TOOLS, "messages": [USER, {"role": "assistant", "content": None,
                                              "tool_calls": [CALL]},
                                       {"role": "tool", "tool_call_id": "c1", "content": "x"},
                                       ANSWER]}, []),
        ({"tools": [{"type": "function", "function": {"name": "other"}}],
          "messages": [USER, {"role": "assistant", "tool_calls": [CALL]}]},
         ["invalid_tool_call"]),
        ({"tools": {"lookup": {}}, "messages": [USER, ANSWER]}, ["invalid_tool_call"]),
        ({"messages": [{**USER, "tool_calls": [CALL]}, ANSWER]}, ["invalid_tool_call"]),
        ({"messages": [USER, {"role": "assistant", "tool_calls": []}]},
         ["invalid_tool_call", "missing_content"]),
        ({"messages": [USER, {"role": "function", "name": "f", "content": "1"}, ANSWER]},
         ["tool_reply_without_call"]),
        ({"messages": [USER, {**ANSWER, "weight": True}]}, ["invalid_weight"]),
        ({"messages": [{**USER, "name": 7}, ANSWER]}, ["content_not_string"]),
        ({"messages": [USER, {"role": "assistant", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]},
         ["content_not_string"]),
        ({"messages": [{"role": "user", "content": [{"type": "audio", "data": "x"}]}, ANSWER]},
         ["content_not_string"]),
        # JSON values that cannot be looked up in a set (objects, lists) are errors, not crashes.
        ({"messages": [{"role": {"a": 1}, "content": "hi"}, ANSWER]}, ["unrecognized_role"]),
        ({"messages": [USER, {"role": "function", "name": ["f"], "content": "1"}, ANSWER]},
         ["content_not_string", "tool_reply_without_call"]),
        ({"messages": [{"role": "developer", "content": "terse"}, USER, ANSWER],
          "metadata": {"free": "top-level keys are ignored"}}, []),
    ],
)
def test_chat_rules(example: dict[str, object], expected: list[str]) -> None:
    report = analyze_data(json.dumps(example).encode(), max_errors=100)
    assert [f.code for f in report.errors if f.line] == expected


def test_preference_format() -> None:
    report = analyze(FIXTURES / "preference.jsonl", fmt="preference")
    assert codes(report.errors) == [
        (0, "too_few_examples"),
        (3, "missing_input"),
        (4, "missing_preferred_output"),
        (5, "missing_non_preferred_output"),
        (6, "unrecognized_role"),
        (7, "missing_messages"),
    ]
    assert report.errors[4].message == (
        "preferred_output message 1 has role \"user\"; expected assistant"
    )
    # A preference example is read as prompt + preferred answer and prompt + rejected answer.
    prompt = [{"role": "user", "content": "Pick a color, 1."}]
    first = cookbook_tokens([*prompt, {"role": "assistant", "content": "Blue."}]) + cookbook_tokens(
        [*prompt, {"role": "assistant", "content": "I cannot pick colors."}]
    )
    assert report.tokens.counted == 2
    assert report.tokens.total == 2 * first


def test_reinforcement_format_allows_reference_fields() -> None:
    report = analyze(FIXTURES / "reinforcement.jsonl", fmt="reinforcement")
    assert codes(report.errors) == [(11, "missing_messages")]
    assert report.tokens.counted == 10
    first = json.loads((FIXTURES / "reinforcement.jsonl").read_text().splitlines()[0])
    assert report.tokens.min == cookbook_tokens(first["messages"])


def test_lfs_pointer_is_reported_instead_of_its_lines() -> None:
    report = analyze(FIXTURES / "lfs_pointer.jsonl")
    assert codes(report.errors) == [(0, "lfs_pointer")]
    assert "git lfs pull" in report.errors[0].message
    assert report.examples == 0


def test_file_too_large_uses_an_overridable_limit() -> None:
    path = FIXTURES / "chat_valid.jsonl"
    report = analyze(path, size_limit=100)
    assert codes(report.errors) == [(0, "file_too_large")]
    assert report.errors[0].message == (
        f"file is {path.stat().st_size:,} bytes, over the provider's limit of 100; split it"
    )
    assert report.examples == 12  # the rest of the analysis still runs
    assert analyze(path).ok
    few = analyze(FIXTURES / "chat_validation.jsonl", size_limit=100)
    assert codes(few.errors) == [(0, "file_too_large"), (0, "too_few_examples")]


def test_too_few_examples() -> None:
    report = analyze(FIXTURES / "chat_validation.jsonl")
    assert codes(report.errors) == [(0, "too_few_examples")]
    assert report.errors[0].message == "file has 3 example(s); fine-tuning needs at least 10"


def test_duplicates_use_canonical_json_and_name_the_earlier_line(tmp_path: Path) -> None:
    lines = [json.dumps(qa(f"q{i}", f"a{i}")) for i in range(10)]
    lines.append('{"messages":[{"content":"q2","role":"user"},{"role":"assistant","content":"a2"}]}')
    lines.append(lines[4])
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(lines) + "\n")
    report = analyze(path)
    assert report.ok
    assert report.warnings == (
        warning(11, "duplicate_example", "same example as line 3"),
        warning(12, "duplicate_example", "same example as line 5"),
    )
    assert report.warning_count == 2


def test_example_too_long_and_billable_tokens(tmp_path: Path) -> None:
    examples = [qa(f"question {i}", "word " * (5 * i)) for i in range(1, 13)]
    path = write_jsonl(tmp_path / "long.jsonl", examples)
    counts = [cookbook_tokens(e["messages"]) for e in examples]
    limit = 40
    report = analyze(path, token_limit=limit)
    assert report.ok
    long_lines = [i + 1 for i, c in enumerate(counts) if c > limit]
    assert long_lines  # the case is exercised
    assert codes(report.warnings) == [(line, "example_too_long") for line in long_lines]
    assert report.warnings[0].message == (
        f"example has {counts[long_lines[0] - 1]} tokens, over the 40-token limit per example; "
        "the service truncates it"
    )
    assert report.tokens.total == sum(counts)
    assert report.billable_tokens == sum(min(limit, c) for c in counts)


def test_max_errors_keeps_the_first_n_and_counts_all(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("[]\n" * 60)
    report = analyze(path)
    assert (len(report.errors), report.error_count) == (50, 60)
    small = analyze(path, max_errors=5)
    assert codes(small.errors) == [(line, "not_an_object") for line in range(1, 6)]
    assert small.error_count == 60


def _mixed_dataset(path: Path) -> Path:
    """Valid examples of every shape, errors, blank lines, duplicates: 400 lines."""
    source = (FIXTURES / "chat_valid.jsonl").read_bytes().splitlines()
    broken = (FIXTURES / "chat_errors.jsonl").read_bytes().splitlines()
    lines = []
    for i in range(400):
        if i % 7 == 3:
            lines.append(broken[i % len(broken)])
        elif i % 11 == 5:
            lines.append(source[i % len(source)])  # a duplicate of an earlier example
        else:
            lines.append(json.dumps(qa(f"question {i} " * (i % 13), f"answer {i}")).encode())
    path.write_bytes(b"\n".join(lines))  # no newline after the last line
    return path


def test_parallel_and_sequential_paths_give_identical_reports(tmp_path: Path) -> None:
    path = _mixed_dataset(tmp_path / "mixed.jsonl")
    options = {"token_limit": 30, "max_errors": 1000}
    whole = analyze(path, workers=1, **options)
    assert whole.error_count > 50 and whole.warning_count > 50
    assert analyze(path, workers=1, chunk_bytes=300, **options) == whole
    assert analyze(path, workers=2, chunk_bytes=2048, **options) == whole
    assert analyze(path, workers=2, chunk_bytes=2048, max_errors=7) == analyze(
        path, workers=1, max_errors=7
    )


# --- cache ---------------------------------------------------------------------------------------


def test_cache_reuses_the_report_of_an_unchanged_file(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    shutil.copyfile(FIXTURES / "chat_valid.jsonl", path)
    cache = tmp_path / "cache"
    first = analyze(path, cache_dir=cache)
    assert first.ok
    # Same size, inode and mtime but other bytes: only a cache hit can still say "ok".
    stat = path.stat()
    with path.open("r+b") as stream:
        stream.write(b"[")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert analyze(path, cache_dir=cache) == first
    assert analyze(path).error_count == 1  # without the cache the change is seen


def test_cache_rereads_a_changed_file(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    cache = tmp_path / "cache"
    examples = [qa(f"q{i}", "yes") for i in range(12)]
    write_jsonl(path, examples)
    first = analyze(path, cache_dir=cache)
    # Rewritten at once with the same size: the mtime must still tell the versions apart.
    write_jsonl(path, [qa(f"q{i}", "no!") for i in range(12)])
    second = analyze(path, cache_dir=cache)
    assert second.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() != first.sha256
    with path.open("a") as stream:
        stream.write("\n")
    third = analyze(path, cache_dir=cache)
    assert codes(third.errors) == [(13, "empty_line")]


def test_a_fresh_file_is_cached_only_once_its_mtime_tick_has_passed(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", [qa("q", "a")])
    cache = tmp_path / "cache"
    now = time.time_ns()
    os.utime(path, ns=(now, now))
    fresh = datacache.identify(path, settle=False)
    assert not fresh.settled  # a same-size change in this tick would keep the mtime
    datacache.save(cache, "entry", {"x": 1}, fresh)
    assert datacache.load(cache, "entry", fresh) is None
    settled = datacache.identify(path, settle=True)
    assert settled.settled and time.time_ns() - settled.mtime_ns >= 20_000_000
    datacache.save(cache, "entry", {"x": 1}, settled)
    assert datacache.load(cache, "entry", settled) == {"x": 1}
    future = time.time_ns() + 10**10  # clock skew: never settles, never waited for
    os.utime(path, ns=(future, future))
    started = time.perf_counter()
    assert not datacache.identify(path, settle=True).settled
    assert time.perf_counter() - started < 0.5


def test_cache_key_covers_the_settings(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    path = FIXTURES / "chat_valid.jsonl"
    plain = analyze(path, cache_dir=cache)
    limited = analyze(path, cache_dir=cache, token_limit=20)
    assert limited.billable_tokens < plain.billable_tokens
    assert analyze(path, cache_dir=cache, encoding="cl100k_base").encoding == "cl100k_base"
    assert analyze(path, cache_dir=cache) == plain


def test_revalidating_unchanged_data_takes_a_stat_not_a_read(tmp_path: Path) -> None:
    path = _mixed_dataset(tmp_path / "mixed.jsonl")
    with path.open("ab") as stream:
        for _ in range(40):
            stream.write(b"\n" + path.read_bytes()[:100_000])
    cache = tmp_path / "cache"
    started = time.perf_counter()
    first = analyze(path, cache_dir=cache, workers=1)
    cold = time.perf_counter() - started
    started = time.perf_counter()
    assert analyze(path, cache_dir=cache, workers=1) == first
    warm = time.perf_counter() - started
    assert warm < min(cold / 5, 0.25)


def test_a_changed_file_is_reanalysed_from_its_cached_blocks(tmp_path: Path) -> None:
    path = _mixed_dataset(tmp_path / "mixed.jsonl")
    body = path.read_bytes()
    path.write_bytes(body + b"\n" + b"\n".join([body[:150_000]] * 3) + b"\n")
    cache = tmp_path / "cache"
    options = {"token_limit": 30, "max_errors": 20}
    assert analyze(path, cache_dir=cache, **options) == analyze(path, **options)
    assert list((cache / "blocks").glob("*/*.bin"))  # blocks by the default rule
    lines = path.read_bytes().splitlines(keepends=True)
    middle = len(lines) // 2
    path.write_bytes(b"".join([*lines[:middle], b"[]\n", *lines[middle + 3:], lines[5]]))
    assert analyze(path, cache_dir=cache, **options) == analyze(path, **options)


# --- overlap -------------------------------------------------------------------------------------


def test_train_validation_overlap_on_validation_lines(tmp_path: Path) -> None:
    expected = (
        warning(1, "train_validation_overlap",
                "same example as line 8 of chat_valid.jsonl; validation data should be held out"),
        warning(3, "train_validation_overlap",
                "same example as line 1 of chat_valid.jsonl; validation data should be held out"),
    )
    train, held = FIXTURES / "chat_valid.jsonl", FIXTURES / "chat_validation.jsonl"
    assert find_overlap(train, held) == expected
    cache = tmp_path / "cache"
    assert find_overlap(train, held, cache_dir=cache) == expected
    assert find_overlap(train, held, cache_dir=cache) == expected
    assert find_overlap(held, held) == (
        warning(1, "train_validation_overlap", "same example as line 1 of chat_validation.jsonl; "
                "validation data should be held out"),
        warning(2, "train_validation_overlap", "same example as line 2 of chat_validation.jsonl; "
                "validation data should be held out"),
        warning(3, "train_validation_overlap", "same example as line 3 of chat_validation.jsonl; "
                "validation data should be held out"),
    )


def test_overlap_past_the_limit_is_summarised(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [qa(f"q{i}", "a") for i in range(30)])
    findings = find_overlap(path, path, max_findings=10)
    assert codes(findings) == [(line, "train_validation_overlap") for line in (*range(1, 11), 0)]
    assert findings[-1].message == "20 more example(s) also appear in a.jsonl"


def test_overlap_reuses_digests_written_by_analyze(tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", [qa(f"q{i}", "a") for i in range(12)])
    held = write_jsonl(tmp_path / "held.jsonl", [qa("q3", "a"), qa("new", "b")])
    cache = tmp_path / "cache"
    analyze(train, cache_dir=cache)
    assert len(list((cache / "datasets").glob("digests-*.bin"))) == 1
    assert codes(find_overlap(train, held, cache_dir=cache)) == [(1, "train_validation_overlap")]


# --- API edges -----------------------------------------------------------------------------------


def test_user_mistakes_raise_ftops_errors(tmp_path: Path) -> None:
    with pytest.raises(FtopsError, match="dataset file not found"):
        analyze(tmp_path / "missing.jsonl")
    with pytest.raises(FtopsError, match="unknown dataset format 'sft'"):
        analyze(FIXTURES / "chat_valid.jsonl", fmt="sft")
    with pytest.raises(FtopsError, match="unknown encoding 'gpt2'"):
        analyze(FIXTURES / "chat_valid.jsonl", encoding="gpt2")
    with pytest.raises(FtopsError, match="not a file"):
        analyze(tmp_path)


def test_an_empty_file_has_too_few_examples() -> None:
    assert codes(analyze_data(b"").errors) == [(0, "too_few_examples")]


def test_report_round_trips_through_json() -> None:
    report = analyze(FIXTURES / "chat_errors.jsonl", token_limit=10)
    again = DatasetReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again == report


# --- epochs and cost -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("examples", "epochs"),
    [
        (0, 25), (1, 25), (4, 25),  # 100 // n, capped at 25
        (5, 20), (10, 10), (33, 3),  # n * 3 < 100: 100 // n
        (34, 3), (100, 3), (8333, 3),  # 100 <= n * 3 <= 25000: the target, 3
        (8334, 2), (12500, 2), (12501, 1), (100_000, 1),  # n * 3 > 25000: 25000 // n, at least 1
    ],
)
def test_default_epochs_follow_the_cookbook_rule(examples: int, epochs: int) -> None:
    assert default_epochs(examples) == epochs


def test_billed_tokens_and_cost_by_hand() -> None:
    assert billed_tokens(1234, 3) == 3702
    assert estimate_cost_usd(3_000_000, 25.0) == 75.0
    assert estimate_cost_usd(1_500_000, 3.0) == 4.5
    assert estimate_cost_usd(10, None) is None


def test_cost_of_a_dataset_end_to_end(tmp_path: Path) -> None:
    # 20 examples of 3 + 1 + 2 + 3 + 1 + 6 + 3 = 19 tokens: "q<i>" is 2 tokens, "a b c d e f" 6.
    examples = [qa(f"q{i}", "a b c d e f") for i in range(20)]
    assert all(cookbook_tokens(e["messages"]) == 19 for e in examples)
    report = analyze(write_jsonl(tmp_path / "t.jsonl", examples), token_limit=65536)
    assert report.billable_tokens == 20 * 19 == 380
    epochs = default_epochs(report.examples)
    assert epochs == 5  # 20 * 3 = 60 < 100, so 100 // 20
    assert billed_tokens(report.billable_tokens, epochs) == 1900
    assert estimate_cost_usd(1900, 3.0) == pytest.approx(0.0057)
