"""Fuzzing: whatever a client sends, the emulator's OpenAI dialect never answers 5xx, and every
200 matches the published schema.

schemathesis generates requests for all 20 operations of ``tests/openapi/`` (OpenAI's OpenAPI
document, structure only), both valid (positive) and invalid (negative) by the schema, against
an emulator holding a real file, upload and job that the generated requests are pointed at
half of the time (random ids alone only ever meet 404). A corpus of hostile bodies no
generator produces (deep nesting, NaN, oversized forms) goes through the same checks.
Deterministic (a fixed seed, no example database, a fixed clock) and bounded: a few examples
per operation, no shrinking (a failure is reported as found).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
import yaml
from conftest import make_chat_jsonl, sdk_client
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from ftops.emulator import Emulator

SPEC = Path(__file__).parent / "openapi" / "openapi-fine-tuning.schema-only.yaml"
START = 1_800_000_000.0
MAX_EXAMPLES = 12  # per operation and generation mode: 480 requests, about 4 s
SEED = 20261201
AUTH = {"Authorization": "Bearer sk-test"}
CHECKS = [not_a_server_error, response_schema_conformance]  # the latter checks 200s only

# The schema subset's own contradictions: values the service sends that an enum of the document
# omits. Each is added to the enum before fuzzing, with the reason it is right to.
ALLOWED: dict[tuple[str, str, str], str] = {
    ("OpenAIFile", "purpose", "evals"): (
        "CreateFileRequest accepts purpose 'evals' (and the API reference lists it for "
        "uploads), so the file object echoes it; the OpenAIFile enum lags behind"
    ),
    ("FineTuningJob", "status", "paused"): (
        "pauseFineTuningJob is documented and answers the job with status 'paused', which "
        "the FineTuningJob status enum lacks (the contract test knows this gap too)"
    ),
}

# Bodies no schema-driven generator produces, each refused by the service or by werkzeug's
# limits: (operationId, Content-Type, body).
_MULTIPART = "multipart/form-data; boundary=fuzz"


def _form(*fields: tuple[str, bytes]) -> bytes:
    parts = b"".join(
        b'--fuzz\r\nContent-Disposition: form-data; name="' + name.encode() + b'"\r\n\r\n'
        + value + b"\r\n"
        for name, value in fields
    )
    return parts + b"--fuzz--\r\n"


HOSTILE: list[tuple[str, str, bytes]] = [
    *[
        (op, "application/json", body)
        for op in ("createFineTuningJob", "createUpload", "completeUpload")
        for body in (
            b"[" * 100_000,  # RecursionError in Python's json
            b'{"a": ' * 10_000 + b"1" + b"}" * 10_000,
            b'{"seed": NaN}', b'{"seed": Infinity}', b'{"bytes": -Infinity}',
            b'{"bytes": 1e400}', b'{"bytes": ' + b"9" * 5_000 + b"}",
            b'{"model": "\xff\xfe"}', b"", b"null", b'"text"', b"{",
        )
    ],
    *[  # a valid job but for one number, which must be refused rather than stored and echoed
        ("createFineTuningJob", "application/json",
         b'{"model": "gpt-4o-mini", "training_file": "FILE", "hyperparameters": '
         b'{"learning_rate_multiplier": ' + number + b"}}")
        for number in (b"NaN", b"Infinity", b"1e400", b"1" + b"0" * 400)
    ],
    ("createFile", _MULTIPART, _form(("purpose", b"x" * 600_000))),  # over 500 kB
    ("createFile", _MULTIPART, _form(*[("purpose", b"batch")] * 1_001)),  # over 1,000 parts
    ("addUploadPart", _MULTIPART, _form(("data", b"x" * 600_000))),
    ("createFile", _MULTIPART, b"--fuzz\r\nContent-Disposition: form-data; name="),
    ("createFile", "multipart/form-data", b"no boundary"),
]


@cache
def schema() -> Any:
    """The schema subset with ALLOWED applied, as schemathesis loads it."""
    document = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    for (name, prop, value) in ALLOWED:
        enum = document["components"]["schemas"][name]["properties"][prop]["enum"]
        assert value not in enum, f"{name}.{prop} has {value!r} now: drop it from ALLOWED"
        enum.append(value)
    return schemathesis.openapi.from_dict(copy.deepcopy(document))


def operations() -> list[Any]:
    return [result.ok() for result in schema().get_all_operations()]


@pytest.fixture(autouse=True)
def _no_local_constants(monkeypatch: pytest.MonkeyPatch) -> None:
    # Hypothesis mixes into its examples constants it finds in the source of the (non-test)
    # modules loaded so far. Which those are depends on the tests this process ran before
    # (pytest-xdist), and so would the examples: none are used, so any order gives the same
    # requests. A private API of Hypothesis; setattr fails loudly if it goes.
    from hypothesis.internal.conjecture import providers

    monkeypatch.setattr(providers, "_get_local_constants", providers.Constants)
    providers.CONSTANTS_CACHE.cache.clear()


@contextlib.contextmanager
def _world() -> Iterator[tuple[Emulator, dict[str, str]]]:
    """An emulator on a fixed clock holding one of each object, and their ids by path name.
    ``training`` is a file for job creation, apart from the one paths name (and may delete);
    ``pausable`` a running job for pause and resume, apart from the one cancel may cancel."""
    clock = [START]
    with Emulator(job_seconds=100, clock=lambda: clock[0]) as emu:
        client = sdk_client(emu.base_url)
        training = client.files.create(file=("t.jsonl", make_chat_jsonl()), purpose="fine-tune")
        named = client.files.create(file=("n.jsonl", make_chat_jsonl()), purpose="fine-tune")
        # Listed by GET /files; created without validation, the SDK's FileObject lacks "evals".
        lax = sdk_client(emu.base_url, strict=False)
        lax.files.create(file=("e.jsonl", make_chat_jsonl()), purpose="evals")
        upload = client.uploads.create(
            bytes=10, filename="u.jsonl", mime_type="text/jsonl", purpose="batch"
        )
        job = client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=training.id)
        pausable = client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=training.id)
        clock[0] = START + 50  # both jobs are running, and stay so
        ids = {
            "pausable": pausable.id,
            "training": training.id,
            "file_id": named.id,
            "upload_id": upload.id,
            "fine_tuning_job_id": job.id,
            "model": "gpt-4o-mini",
        }
        yield emu, ids


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[Emulator, dict[str, str]]]:
    with _world() as pair:
        yield pair


@pytest.fixture(scope="module")
def untouched() -> Iterator[tuple[Emulator, dict[str, str]]]:
    """A world of its own for the hostile bodies: generated requests cancel and delete."""
    with _world() as pair:
        yield pair


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment between the test and 127.0.0.1
    return session


def _cases(operation: Any, mode: GenerationMode, ids: dict[str, str]) -> Any:
    """Generated cases, half of them with the path naming an object that exists."""
    generated = operation.as_strategy(mode)
    names = {p.name for p in operation.path_parameters}
    if not names:
        return generated
    real = {name: ids[name] for name in names}
    if operation.label.endswith(("/pause", "/resume")):
        real["fine_tuning_job_id"] = ids["pausable"]
    return st.one_of(generated, operation.as_strategy(mode, path_parameters=real))


def _ground(case: Case, ids: dict[str, str]) -> None:
    """Points a generated job at the real training file, so creation can get past 404."""
    if case.operation.label == "POST /fine_tuning/jobs" and isinstance(case.body, dict):
        case.body.update(model=ids["model"], training_file=ids["training"])
        case.body.pop("validation_file", None)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_requests_get_no_5xx_and_schema_valid_200s(
    world: tuple[Emulator, dict[str, str]], mode: GenerationMode
) -> None:
    emu, ids = world
    session = _session()
    for operation in operations():

        @hypothesis.seed(SEED)  # the same examples on every run and machine, whatever the source
        @hypothesis.settings(
            max_examples=MAX_EXAMPLES,
            database=None,  # nothing replayed from, or written to, .hypothesis/
            deadline=None,
            phases=[Phase.explicit, Phase.generate],  # bounded: no shrinking
            suppress_health_check=list(HealthCheck),
        )
        @hypothesis.given(case=_cases(operation, mode, ids), ground=st.booleans())
        def run(case: Case, ground: bool) -> None:
            if ground:
                _ground(case, ids)
            response = case.call(base_url=emu.base_url, session=session, headers=AUTH)
            case.validate_response(response, checks=CHECKS)

        run()


@pytest.mark.parametrize(("op_id", "content_type", "body"), HOSTILE,
                         ids=[f"{op}-{i}" for i, (op, _, _) in enumerate(HOSTILE)])
def test_hostile_bodies_get_no_5xx(
    untouched: tuple[Emulator, dict[str, str]], op_id: str, content_type: str, body: bytes
) -> None:
    emu, ids = untouched
    (operation,) = [op for op in operations() if op.definition.raw["operationId"] == op_id]
    names = {p.name for p in operation.path_parameters}
    case = operation.Case(path_parameters={name: ids[name] for name in names})
    headers = {**AUTH, "Content-Type": content_type}
    body = body.replace(b'"FILE"', f'"{ids["training"]}"'.encode())
    response = case.call(base_url=emu.base_url, session=_session(), headers=headers, data=body)
    case.validate_response(response, checks=[not_a_server_error])
    assert 400 <= response.status_code < 500
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
