"""Files and Uploads endpoints of the emulator, through the real SDK."""

from __future__ import annotations

import gc
import hashlib
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
from conftest import make_chat_jsonl, raw_request

from ftops.emulator import Emulator, files


def test_file_create_retrieve_content_delete(client: openai.OpenAI) -> None:
    data = make_chat_jsonl(12)
    created = client.files.create(file=("train.jsonl", data), purpose="fine-tune")
    assert created.id.startswith("file-") and len(created.id) == 27
    assert (created.filename, created.bytes, created.purpose, created.status) == (
        "train.jsonl",
        len(data),
        "fine-tune",
        "processed",
    )
    assert client.files.retrieve(created.id) == created
    assert client.files.content(created.id).read() == data

    deleted = client.files.delete(created.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (created.id, True, "file")
    with pytest.raises(openai.NotFoundError) as err:
        client.files.retrieve(created.id)
    assert err.value.body == {
        "message": f"No such File: {created.id}",
        "type": "invalid_request_error",
        "param": "file_id",
        "code": "not_found",
    }
    with pytest.raises(openai.NotFoundError):
        client.files.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.files.content(created.id)


def test_file_create_rejects_bad_purpose_and_missing_file(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=("a.jsonl", b"{}"), purpose="fine-tuning")  # type: ignore[arg-type]
    assert err.value.status_code == 400
    assert err.value.body["param"] == "purpose"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as err:
        client.post("/files", body={"purpose": "fine-tune"}, cast_to=object)
    assert "multipart/form-data" in err.value.message


def _multipart(fields: dict[str, bytes], filename: str = "a.jsonl") -> tuple[bytes, str]:
    """A multipart/form-data body; a field whose name is ``file`` or ``data`` is a file part."""
    boundary = "ftops-test-boundary"
    body = b""
    for name, value in fields.items():
        disposition = f'form-data; name="{name}"'
        if name in ("file", "data"):
            disposition += f'; filename="{filename}"'
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        body += value + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_multipart_without_purpose_file_or_data_is_a_400(emulator: Emulator) -> None:
    cases = [
        ("/files", {"file": b"x"}, "purpose"),
        ("/files", {"purpose": b"fine-tune"}, "file"),
        ("/files", {"purpose": b"fine-tune", "other": b"x"}, "file"),
    ]
    upload = raw_request(
        emulator.base_url + "/uploads",
        "POST",
        body=b'{"bytes": 1, "filename": "a", "mime_type": "text/plain", "purpose": "batch"}',
        headers={"Authorization": "Bearer k", "Content-Type": "application/json"},
    ).json()
    cases.append((f"/uploads/{upload['id']}/parts", {"chunk": b"x"}, "data"))
    for path, fields, param in cases:
        body, content_type = _multipart(fields)
        headers = {"Authorization": "Bearer k", "Content-Type": content_type}
        raw = raw_request(emulator.base_url + path, "POST", body=body, headers=headers)
        assert raw.status == 400, (path, fields)
        error = raw.json()["error"]
        assert (error["param"], error["code"]) == (param, "missing_required_parameter")
    assert [e["status"] for e in emulator.requests()] == [200, 400, 400, 400, 400]


def test_part_over_the_size_limit_is_refused(
    client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real limit is 64 MiB; a smaller one keeps the test fast while taking the same path.
    monkeypatch.setattr(files, "MAX_PART_BYTES", 4)
    # purpose batch: these bytes are no JSON Lines, which a fine-tune file must be.
    upload = client.uploads.create(
        bytes=9, filename="a.jsonl", mime_type="text/jsonl", purpose="batch"
    )
    with pytest.raises(openai.BadRequestError) as err:
        client.uploads.parts.create(upload.id, data=b"12345")
    assert err.value.body["param"] == "data"  # type: ignore[index]
    assert "at most 4 bytes; this one has 5" in err.value.message
    parts = [client.uploads.parts.create(upload.id, data=c) for c in (b"1234", b"5678", b"9")]
    done = client.uploads.complete(upload.id, part_ids=[p.id for p in parts])
    assert done.file is not None
    assert client.files.content(done.file.id).read() == b"123456789"


def test_file_expires_after(emulator: Emulator, client: openai.OpenAI) -> None:
    created = client.files.create(
        file=("a.jsonl", b"x"),
        purpose="batch",
        expires_after={"anchor": "created_at", "seconds": 3600},
    )
    assert created.expires_at == created.created_at + 3600
    with pytest.raises(openai.BadRequestError):
        client.files.create(
            file=("a.jsonl", b"x"),
            purpose="batch",
            expires_after={"anchor": "created_at", "seconds": 10},
        )


def test_file_list_orders_filters_and_paginates(client: openai.OpenAI) -> None:
    ids = [
        client.files.create(file=(f"f{i}.jsonl", b"{}\n"), purpose="fine-tune").id
        for i in range(5)
    ]
    other = client.files.create(file=("b.jsonl", b"y"), purpose="batch").id

    newest_first = client.files.list()
    assert [f.id for f in newest_first.data] == [other, *reversed(ids)]
    assert newest_first.has_more is False

    page = client.files.list(purpose="fine-tune", order="asc", limit=2)
    assert [f.id for f in page.data] == ids[:2] and page.has_more is True
    raw = page.model_dump()
    assert (raw["first_id"], raw["last_id"]) == (ids[0], ids[1])
    # The SDK follows the ``after`` cursor until has_more is false.
    assert [f.id for f in client.files.list(purpose="fine-tune", order="asc", limit=2)] == ids
    assert [f.id for f in client.files.list(purpose="fine-tune", limit=2)] == ids[::-1]

    # A deleted file still works as a cursor, so a client may delete while it pages.
    client.files.delete(ids[1])
    after_deleted = client.files.list(purpose="fine-tune", order="asc", after=ids[1])
    assert [f.id for f in after_deleted.data] == ids[2:]

    with pytest.raises(openai.BadRequestError):
        client.files.list(order="sideways")  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError):
        client.files.list(limit=0)
    with pytest.raises(openai.BadRequestError):
        client.files.list(after="file-nope")


def test_empty_file_list_has_string_ids(client: openai.OpenAI) -> None:
    page = client.files.list(purpose="vision")
    assert page.data == []
    assert page.model_dump()["first_id"] == ""
    assert page.has_more is False


def test_upload_parts_complete_with_md5(client: openai.OpenAI) -> None:
    data = make_chat_jsonl(20)
    upload = client.uploads.create(
        bytes=len(data), filename="big.jsonl", mime_type="text/jsonl", purpose="fine-tune"
    )
    assert upload.id.startswith("upload_") and upload.status == "pending"
    assert upload.file is None and upload.expires_at == upload.created_at + 3600
    cut = len(data) // 3
    chunks = [data[:cut], data[cut : 2 * cut], data[2 * cut :]]
    parts = [client.uploads.parts.create(upload.id, data=chunk) for chunk in chunks]
    assert all(p.id.startswith("part_") and p.upload_id == upload.id for p in parts)

    done = client.uploads.complete(
        upload.id, part_ids=[p.id for p in parts], md5=hashlib.md5(data).hexdigest()
    )
    assert done.status == "completed"
    assert done.file is not None
    assert (done.file.filename, done.file.bytes, done.file.purpose) == (
        "big.jsonl",
        len(data),
        "fine-tune",
    )
    assert client.files.content(done.file.id).read() == data
    with pytest.raises(openai.BadRequestError):
        client.uploads.complete(upload.id, part_ids=[p.id for p in parts])
    with pytest.raises(openai.BadRequestError):
        client.uploads.parts.create(upload.id, data=b"more")


def test_parts_sent_at_once_are_stored_and_leave_no_spool_files(
    emulator: Emulator, client: openai.OpenAI
) -> None:
    data = make_chat_jsonl(40)
    upload = client.uploads.create(
        bytes=len(data), filename="big.jsonl", mime_type="text/jsonl", purpose="fine-tune"
    )
    chunks = [data[i : i + 700] for i in range(0, len(data), 700)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parts = list(pool.map(lambda c: client.uploads.parts.create(upload.id, data=c), chunks))
    part_ids = [p.id for p in parts]
    with pytest.raises(openai.NotFoundError):  # parsed into a spool file, then refused
        client.uploads.parts.create("upload_missing", data=b"x")
    done = client.uploads.complete(upload.id, part_ids=part_ids, md5=hashlib.md5(data).hexdigest())
    assert done.file is not None
    assert client.files.content(done.file.id).read() == data
    gc.collect()
    # Only the file's blob remains: parts moved into it as segments, spool files renamed or deleted.
    assert [p.name for p in emulator._store.blob_dir.iterdir()] == [done.file.id]


def test_upload_chunked_helper_orders_parts(client: openai.OpenAI) -> None:
    data = make_chat_jsonl(15)
    done = client.uploads.upload_file_chunked(
        file=data,
        filename="chunked.jsonl",
        bytes=len(data),
        mime_type="text/jsonl",
        purpose="fine-tune",
        part_size=97,
    )
    assert done.file is not None
    assert client.files.content(done.file.id).read() == data


def test_upload_complete_errors(client: openai.OpenAI) -> None:
    # purpose batch: these bytes are no JSON Lines, which a fine-tune file must be.
    upload = client.uploads.create(
        bytes=4, filename="a.jsonl", mime_type="text/jsonl", purpose="batch"
    )
    part = client.uploads.parts.create(upload.id, data=b"abc")
    with pytest.raises(openai.BadRequestError) as err:
        client.uploads.complete(upload.id, part_ids=[part.id])
    assert "3 bytes" in err.value.message
    more = client.uploads.parts.create(upload.id, data=b"d")
    with pytest.raises(openai.BadRequestError) as err:
        client.uploads.complete(upload.id, part_ids=[part.id, more.id], md5="0" * 32)
    assert err.value.body["param"] == "md5"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        client.uploads.complete(upload.id, part_ids=[part.id, part.id])
    with pytest.raises(openai.BadRequestError):
        client.uploads.complete(upload.id, part_ids=["part_unknown"])
    done = client.uploads.complete(upload.id, part_ids=[more.id, part.id])
    assert done.file is not None
    assert client.files.content(done.file.id).read() == b"dabc"


def test_upload_cancel_and_unknown(client: openai.OpenAI) -> None:
    upload = client.uploads.create(
        bytes=1, filename="a.jsonl", mime_type="text/jsonl", purpose="fine-tune"
    )
    cancelled = client.uploads.cancel(upload.id)
    assert cancelled.status == "cancelled" and cancelled.file is None
    with pytest.raises(openai.BadRequestError):
        client.uploads.cancel(upload.id)
    with pytest.raises(openai.NotFoundError):
        client.uploads.cancel("upload_missing")
    with pytest.raises(openai.NotFoundError):
        client.uploads.parts.create("upload_missing", data=b"x")


def test_upload_create_validation(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.uploads.create(bytes=-1, filename="a", mime_type="text/jsonl", purpose="fine-tune")
    assert err.value.body["param"] == "bytes"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as err:
        client.uploads.create(
            bytes=1,
            filename="a",
            mime_type="text/jsonl",
            purpose="fine-tune",
            extra_body={"colour": "red"},
        )
    assert err.value.message.endswith("Unrecognized request argument supplied: colour")


def test_upload_expires_after_an_hour() -> None:
    clock = [1_800_000_000.0]
    with Emulator(job_seconds=0, clock=lambda: clock[0]) as emu:
        headers = {"Authorization": "Bearer k", "Content-Type": "application/json"}
        body = b'{"bytes": 1, "filename": "a", "mime_type": "text/jsonl", "purpose": "batch"}'
        upload = raw_request(emu.base_url + "/uploads", "POST", body=body, headers=headers).json()
        clock[0] += 3600
        complete = raw_request(
            f"{emu.base_url}/uploads/{upload['id']}/complete",
            "POST",
            body=b'{"part_ids": []}',
            headers=headers,
        )
        assert complete.status == 400
        assert "expired" in complete.json()["error"]["message"]
