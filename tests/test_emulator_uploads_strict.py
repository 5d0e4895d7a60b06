"""The emulator refuses what OpenAI refuses on Files and Uploads (and too-small training files),
with OpenAI's error body; each rule's source is cited where ftops/emulator/files.py applies it."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import openai
import pytest
from conftest import make_chat_jsonl, raw_request

from ftops.emulator import Emulator, datafile

BASE = "gpt-4o-mini-2024-07-18"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01" + bytes(range(256))
FORMAT = "Invalid file format for Fine-Tuning API. Must be .jsonl"


def _error(message: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"message": message, "type": "invalid_request_error", "param": param, "code": code}


def _content_error(line: int, what: str) -> dict[str, Any]:
    return _error(f"Invalid file format for Fine-Tuning API: line {line} {what}", "file")


def _file_ids(client: openai.OpenAI) -> list[str]:
    return [f.id for f in client.files.list()]


# a. unknown multipart fields ------------------------------------------------------------------
def test_unknown_multipart_field_on_file_create_is_a_400(client: openai.OpenAI) -> None:
    # The SDK sends extra_body as more form fields of the multipart body.
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(
            file=("train.jsonl", make_chat_jsonl(10)),
            purpose="fine-tune",
            extra_body={"colour": "red"},
        )
    assert err.value.body == _error("Unrecognized request argument supplied: colour", "colour")
    assert _file_ids(client) == []
    # The fields the SDK itself sends are all known, expires_after[...] included.
    client.files.create(
        file=("train.jsonl", make_chat_jsonl(10)),
        purpose="fine-tune",
        expires_after={"anchor": "created_at", "seconds": 3600},
    )


def test_unknown_file_part_on_file_create_is_a_400(emulator: Emulator) -> None:
    boundary = "strict-boundary"
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"{extra}\r\n\r\n'.encode()
        + value
        + b"\r\n"
        for name, extra, value in [
            ("purpose", "", b"fine-tune"),
            ("file", '; filename="a.jsonl"', make_chat_jsonl(10)),
            ("attachment", '; filename="b.jsonl"', b"{}"),
        ]
    ) + f"--{boundary}--\r\n".encode()
    raw = raw_request(
        emulator.base_url + "/files",
        "POST",
        body=body,
        headers={
            "Authorization": "Bearer k",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    assert raw.status == 400
    assert raw.json() == {
        "error": _error("Unrecognized request argument supplied: attachment", "attachment")
    }


def test_unknown_multipart_field_on_upload_part_is_a_400(client: openai.OpenAI) -> None:
    data = make_chat_jsonl(10)
    upload = client.uploads.create(
        bytes=len(data), filename="t.jsonl", mime_type="text/jsonl", purpose="fine-tune"
    )
    with pytest.raises(openai.BadRequestError) as err:
        client.uploads.parts.create(upload.id, data=data, extra_body={"part_number": "1"})
    assert err.value.body == _error(
        "Unrecognized request argument supplied: part_number", "part_number"
    )
    # The refused part was not added: the upload completes with the one part sent next.
    part = client.uploads.parts.create(upload.id, data=data)
    done = client.uploads.complete(upload.id, part_ids=[part.id])
    assert done.status == "completed"
    with pytest.raises(openai.BadRequestError):  # an unknown part id, not the refused one
        client.uploads.complete(upload.id, part_ids=["part_refused"])


# b. fine-tune files are .jsonl, UTF-8 JSON Lines ---------------------------------------------
@pytest.mark.parametrize("name", ["train.json", "train.txt", "train", "train.jsonl.gz"])
def test_fine_tune_file_must_be_named_jsonl(client: openai.OpenAI, name: str) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=(name, make_chat_jsonl(10)), purpose="fine-tune")
    assert err.value.body == _error(FORMAT, "file")
    assert _file_ids(client) == []


@pytest.mark.parametrize(
    ("data", "line", "what"),
    [
        (PNG, 1, "is not valid UTF-8"),
        (make_chat_jsonl(2) + b'{"messages": [}\n' + make_chat_jsonl(9), 3, "is not valid JSON"),
        (make_chat_jsonl(1) + b"\n  \n" + b"not json at all\n", 4, "is not valid JSON"),
        (make_chat_jsonl(1) + b'["a", "list"]\n', 2, "is not a JSON object"),
        (make_chat_jsonl(3) + b'{"a": 1} {"b": 2}\n', 4, "is not valid JSON"),
        (make_chat_jsonl(3) + "{\"messages\": \"caf\xe9\"}\n".encode("latin-1"), 4,
         "is not valid UTF-8"),
        (b"\xef\xbb\xbf" + make_chat_jsonl(10), 1, "is not valid JSON"),  # a byte order mark
        # the first bad line is named, whichever kind of bad comes later in the same read
        (make_chat_jsonl(1) + b"nope\n" + make_chat_jsonl(1) + b"\xff\n", 2, "is not valid JSON"),
        (make_chat_jsonl(10) + b'{"messages": []', 11, "is not valid JSON"),  # no last newline
    ],
)
def test_fine_tune_file_content_must_be_json_lines(
    client: openai.OpenAI, data: bytes, line: int, what: str
) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=("train.jsonl", data), purpose="fine-tune")
    assert err.value.body == _content_error(line, what)
    assert _file_ids(client) == []


def test_good_json_lines_and_other_purposes_are_accepted(client: openai.OpenAI) -> None:
    # CRLF line ends, blank lines and an empty file are JSON Lines too; the job checks the rest.
    crlf = make_chat_jsonl(10).replace(b"\n", b"\r\n") + b"\r\n\r\n"
    for data in (crlf, b"", make_chat_jsonl(10).rstrip(b"\n")):
        assert client.files.create(file=("train.JSONL", data), purpose="fine-tune").bytes == len(
            data
        )
    # The rule is the Fine-Tuning API's: other purposes take other files.
    client.files.create(file=("notes.txt", b"free text"), purpose="user_data")
    client.files.create(file=("image.png", PNG), purpose="vision")


def _upload(client: openai.OpenAI, name: str, chunks: list[bytes]) -> tuple[str, list[str]]:
    upload = client.uploads.create(
        bytes=sum(map(len, chunks)), filename=name, mime_type="text/jsonl", purpose="fine-tune"
    )
    return upload.id, [client.uploads.parts.create(upload.id, data=c).id for c in chunks]


def test_upload_complete_checks_name_and_content(client: openai.OpenAI) -> None:
    upload_id, parts = _upload(client, "train.txt", [make_chat_jsonl(10)])
    with pytest.raises(openai.BadRequestError) as err:
        client.uploads.complete(upload_id, part_ids=parts)
    assert err.value.body == _error(FORMAT)
    assert client.uploads.cancel(upload_id).status == "cancelled"  # it was left pending

    # The bad line 7 is cut across parts: the parts are checked as one file, in part order.
    data = make_chat_jsonl(6) + b'{"messages": [{"role": "user"' + b"}\n" + make_chat_jsonl(5)
    cut = data.index(b'"role": "user"') + 5
    upload_id, parts = _upload(client, "train.jsonl", [data[:cut], data[cut:]])
    with pytest.raises(openai.BadRequestError) as err:
        client.uploads.complete(upload_id, part_ids=parts)
    assert err.value.body == _error(
        "Invalid file format for Fine-Tuning API: line 7 is not valid JSON"
    )
    assert _file_ids(client) == []

    # Good lines cut anywhere, even inside a multi-byte character, make a good file.
    good = make_chat_jsonl(10).replace(b"Answer", "Réponse ✓".encode())
    cut = good.index("✓".encode()) + 1
    upload_id, parts = _upload(client, "train.jsonl", [good[:cut], good[cut:]])
    done = client.uploads.complete(upload_id, part_ids=parts)
    assert done.file is not None and client.files.content(done.file.id).read() == good


def test_upload_complete_refuses_png_bytes(client: openai.OpenAI) -> None:
    upload_id, parts = _upload(client, "image.jsonl", [PNG[:10], PNG[10:]])
    with pytest.raises(openai.BadRequestError) as err:
        client.uploads.complete(upload_id, part_ids=parts)
    assert err.value.body == _error(
        "Invalid file format for Fine-Tuning API: line 1 is not valid UTF-8"
    )


def test_content_check_reads_in_bounded_memory(tmp_path: Path) -> None:
    # 32 MiB of lines checked with a few MiB at most: the check streams, it does not load.
    line = (json.dumps({"messages": [{"role": "user", "content": "x" * 400}]}) + "\n").encode()
    path = tmp_path / "big.jsonl"
    with path.open("wb") as out:
        block = line * ((1 << 20) // len(line))
        for _ in range(32):
            out.write(block)
    tracemalloc.start()
    try:
        with path.open("rb") as fh:
            problem = datafile.jsonl_problem(iter(lambda: fh.read(1 << 20), b""))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert problem is None
    assert peak < 8 << 20, peak


# c. downloads refused for some purposes --------------------------------------------------------
@pytest.mark.parametrize("purpose", ["user_data", "assistants"])
def test_download_refused_for_purpose(client: openai.OpenAI, purpose: str) -> None:
    created = client.files.create(file=("notes.txt", b"private"), purpose=purpose)  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError) as err:
        client.files.content(created.id)
    assert err.value.body == _error(f"Not allowed to download files of purpose: {purpose}")
    assert client.files.retrieve(created.id).id == created.id  # the file itself is there


def test_download_allowed_for_training_results_batch_and_vision(client: openai.OpenAI) -> None:
    data = make_chat_jsonl(10)
    training = client.files.create(file=("train.jsonl", data), purpose="fine-tune")
    assert client.files.content(training.id).read() == data
    job = client.fine_tuning.jobs.create(model=BASE, training_file=training.id)
    results = client.fine_tuning.jobs.retrieve(job.id).result_files
    assert len(results) == 1
    assert client.files.retrieve(results[0]).purpose == "fine-tune-results"
    assert client.files.content(results[0]).read().startswith(b"step,")
    for purpose, name, body in (("batch", "b.jsonl", b"{}\n"), ("vision", "i.png", PNG)):
        created = client.files.create(file=(name, body), purpose=purpose)  # type: ignore[arg-type]
        assert client.files.content(created.id).read() == body


# d. too few examples ---------------------------------------------------------------------------
@pytest.mark.parametrize("count", [1, 9])
def test_too_few_training_examples_fail_with_invalid_n_examples(
    client: openai.OpenAI, count: int
) -> None:
    training = client.files.create(file=("t.jsonl", make_chat_jsonl(count)), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model=BASE, training_file=training.id)
    assert job.status == "validating_files"
    failed = client.fine_tuning.jobs.retrieve(job.id)
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.model_dump() == {
        "code": "invalid_n_examples",
        "message": f"Training file has {count} example(s), but must have at least 10 examples",
        "param": "training_file",
    }


def test_ten_examples_are_enough(client: openai.OpenAI) -> None:
    training = client.files.create(file=("t.jsonl", make_chat_jsonl(10)), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model=BASE, training_file=training.id)
    assert client.fine_tuning.jobs.retrieve(job.id).status == "succeeded"
