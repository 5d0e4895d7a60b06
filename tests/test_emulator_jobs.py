"""Fine-tuning jobs on the emulator: create checks, state machine, events, checkpoints, results."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
from collections.abc import Iterator

import openai
import pytest
from conftest import make_chat_jsonl, raw_request, sdk_client

from ftops.emulator import Emulator

BASE = "gpt-4o-mini-2024-07-18"
START = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def slow(clock: Clock) -> Iterator[Emulator]:
    """Jobs take 100 s of fixed-clock time: validating 0-10, queued 10-20, running 20-100."""
    with Emulator(job_seconds=100, clock=clock) as emu:
        yield emu


def upload(client: openai.OpenAI, data: bytes | None = None, purpose: str = "fine-tune") -> str:
    file = client.files.create(file=("d.jsonl", data or make_chat_jsonl()), purpose=purpose)  # type: ignore[arg-type]
    return file.id


def test_job_succeeds_with_model_results_events_checkpoints(client: openai.OpenAI) -> None:
    training, validation = upload(client), upload(client, make_chat_jsonl(10, tag="v"))
    job = client.fine_tuning.jobs.create(
        model="gpt-4o-mini",
        training_file=training,
        validation_file=validation,
        suffix="support-bot",
        seed=7,
        metadata={"team": "support"},
        hyperparameters={"n_epochs": 2},
        integrations=[{"type": "wandb", "wandb": {"project": "p"}}],
    )
    assert re.fullmatch(r"ftjob-[A-Za-z0-9]{24}", job.id)
    assert job.status == "validating_files"
    assert (job.model, job.fine_tuned_model, job.finished_at, job.error) == (BASE, None, None, None)
    assert job.hyperparameters.n_epochs == 2 and job.hyperparameters.batch_size == "auto"
    assert job.metadata == {"team": "support"} and job.seed == 7

    done = client.fine_tuning.jobs.retrieve(job.id)
    assert done.status == "succeeded"
    assert done.fine_tuned_model is not None
    assert re.fullmatch(rf"ft:{BASE}:emulator:support-bot:[A-Za-z0-9]{{8}}", done.fine_tuned_model)
    assert done.finished_at is not None and done.trained_tokens is not None
    assert done.trained_tokens > 0
    assert done.hyperparameters.n_epochs == 2 and done.hyperparameters.batch_size == 1
    assert done.method is not None and done.method.type == "supervised"
    assert done.integrations is not None and done.integrations[0].wandb.project == "p"

    (result_id,) = done.result_files
    result = client.files.retrieve(result_id)
    assert result.purpose == "fine-tune-results"
    rows = list(csv.DictReader(io.StringIO(client.files.content(result_id).text)))
    assert list(rows[0]) == [
        "step",
        "train_loss",
        "train_accuracy",
        "valid_loss",
        "valid_mean_token_accuracy",
    ]
    assert [int(r["step"]) for r in rows] == list(range(1, 21))  # 10 examples x 2 epochs
    losses = [float(r["train_loss"]) for r in rows]
    assert losses == sorted(losses, reverse=True) and losses[0] > 1.5 > losses[-1]
    assert float(rows[-1]["valid_loss"]) < float(rows[0]["valid_loss"])
    # Deterministic per job: reading it again gives the same bytes.
    assert client.files.content(result_id).read() == client.files.content(result_id).read()

    model = client.models.retrieve(done.fine_tuned_model)
    assert model.owned_by == "org-emulator"

    events = list(client.fine_tuning.jobs.list_events(job.id, limit=100))
    messages = [e.message for e in events]
    assert messages[0] == "The job has successfully completed"
    assert messages[-1] == f"Created fine-tuning job: {job.id}"
    assert any(e.type == "metrics" and e.data for e in events)

    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert [c.step_number for c in checkpoints] == [20, 10]
    assert checkpoints[0].fine_tuned_model_checkpoint == f"{done.fine_tuned_model}:ckpt-step-20"
    assert all(c.id.startswith("ftckpt_") for c in checkpoints)


def test_job_without_suffix_and_chained_on_fine_tuned_model(client: openai.OpenAI) -> None:
    training = upload(client)
    parent = client.fine_tuning.jobs.create(model=BASE, training_file=training)
    parent_model = client.fine_tuning.jobs.retrieve(parent.id).fine_tuned_model
    assert parent_model is not None
    assert re.fullmatch(rf"ft:{BASE}:emulator::[A-Za-z0-9]{{8}}", parent_model)

    child = client.fine_tuning.jobs.create(model=parent_model, training_file=training, suffix="v2")
    assert child.model == parent_model
    child_model = client.fine_tuning.jobs.retrieve(child.id).fine_tuned_model
    assert child_model is not None and child_model.startswith(f"ft:{BASE}:emulator:v2:")

    client.models.delete(parent_model)
    with pytest.raises(openai.BadRequestError) as err:
        client.fine_tuning.jobs.create(model=parent_model, training_file=training)
    assert err.value.code == "model_not_available"


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        # Lines that are not JSON objects, and files of fewer than 10 examples, are refused
        # earlier, as OpenAI refuses them: at upload, or with invalid_n_examples
        # (tests/test_emulator_uploads_strict.py).
        (make_chat_jsonl(12, bad_line=3), "line 3: the example has no assistant message"),
        (
            make_chat_jsonl(10).replace(b'"user"', b'"bot"', 1),
            "line 1: messages[1] has unrecognized role 'bot'",
        ),
        (b'{"prompt": "x", "completion": "y"}\n' * 10, "line 1: missing 'messages' list"),
    ],
)
def test_bad_training_file_fails_job_naming_line(
    client: openai.OpenAI, data: bytes, needle: str
) -> None:
    training = upload(client, data)
    job = client.fine_tuning.jobs.create(model=BASE, training_file=training)
    assert job.status == "validating_files"
    failed = client.fine_tuning.jobs.retrieve(job.id)
    assert failed.status == "failed"
    assert failed.error is not None
    assert (failed.error.code, failed.error.param) == ("invalid_training_file", "training_file")
    assert needle in failed.error.message and training in failed.error.message
    assert failed.fine_tuned_model is None and failed.result_files == []
    assert client.fine_tuning.jobs.checkpoints.list(job.id).data == []
    events = client.fine_tuning.jobs.list_events(job.id).data
    assert events[0].level == "error" and needle in events[0].message


def test_bad_validation_file_fails_job(client: openai.OpenAI) -> None:
    training, validation = upload(client), upload(client, make_chat_jsonl(3))
    job = client.fine_tuning.jobs.create(
        model=BASE, training_file=training, validation_file=validation
    )
    error = client.fine_tuning.jobs.retrieve(job.id).error
    assert error is not None
    assert (error.code, error.param) == ("invalid_validation_file", "validation_file")


def test_dpo_job_checks_preference_format(client: openai.OpenAI) -> None:
    line = {
        "input": {"messages": [{"role": "user", "content": "hi"}]},
        "preferred_output": [{"role": "assistant", "content": "hello"}],
        "non_preferred_output": [{"role": "assistant", "content": "go away"}],
    }
    good = upload(client, (json.dumps(line) + "\n").encode() * 10)
    method = {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.2}}}
    job = client.fine_tuning.jobs.create(model=BASE, training_file=good, method=method)  # type: ignore[arg-type]
    done = client.fine_tuning.jobs.retrieve(job.id)
    assert done.status == "succeeded"
    assert done.method is not None and done.method.dpo is not None
    assert done.method.dpo.hyperparameters is not None
    assert done.method.dpo.hyperparameters.beta == 0.2

    chat = upload(client)
    job = client.fine_tuning.jobs.create(model=BASE, training_file=chat, method=method)  # type: ignore[arg-type]
    error = client.fine_tuning.jobs.retrieve(job.id).error
    assert error is not None and "line 1: missing 'input' object" in error.message


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"model": "gpt-9"}, "model"),
        ({"model": "ft:gpt-4o-mini-2024-07-18:emulator::missing1"}, "model"),
        ({"training_file": "file-missing"}, "training_file"),
        ({"validation_file": "file-missing"}, "validation_file"),
        ({"hyperparameters": {"n_epochs": 0}}, "hyperparameters.n_epochs"),
        ({"hyperparameters": {"n_epochs": 51}}, "hyperparameters.n_epochs"),
        ({"hyperparameters": {"batch_size": "big"}}, "hyperparameters.batch_size"),
        (
            {"hyperparameters": {"learning_rate_multiplier": 0}},
            "hyperparameters.learning_rate_multiplier",
        ),
        ({"hyperparameters": {"momentum": 1}}, "hyperparameters.momentum"),
        (
            {
                "method": {
                    "type": "supervised",
                    "supervised": {"hyperparameters": {"n_epochs": True}},
                }
            },
            "method.supervised.hyperparameters.n_epochs",
        ),
        ({"method": {"type": "sft"}}, "method.type"),
        ({"method": {"type": "dpo"}, "model": "gpt-3.5-turbo"}, "method.type"),
        ({"method": {"type": "reinforcement"}, "model": "o4-mini"}, "method.reinforcement.grader"),
        ({"model": "o4-mini"}, "model"),
        ({"suffix": "a:b"}, "suffix"),
        ({"suffix": "x" * 65}, "suffix"),
        ({"seed": -1}, "seed"),
        ({"metadata": {"k": 1}}, "metadata"),
        ({"integrations": [{"type": "slack"}]}, "integrations[0]"),
        ({"integrations": ["wandb"]}, "integrations[0]"),
        ({"integrations": [{"type": "wandb", "wandb": {"project": "p"}}] * 6}, "integrations[5]"),
        ({"colour": "red"}, "colour"),
        ({"suffix": 5}, "suffix"),
        ({"method": {}}, "method.type"),
        ({"method": {"type": "supervised", "lora": {}}}, "method.lora"),
        ({"method": {"type": "supervised", "dpo": {}}}, "method.dpo"),
        ({"method": {"type": "supervised", "supervised": {"x": 1}}}, "method.supervised.x"),
        (
            {
                "hyperparameters": {"n_epochs": 2},
                "method": {"type": "supervised", "supervised": {"hyperparameters": {}}},
            },
            "hyperparameters",
        ),
        (
            {
                "model": "o4-mini",
                "method": {"type": "reinforcement", "reinforcement": {"grader": {"type": "vibe"}}},
            },
            "method.reinforcement.grader.type",
        ),
    ],
)
def test_create_rejects_bad_requests(client: openai.OpenAI, kwargs: dict, param: str) -> None:
    body = {"model": BASE, "training_file": upload(client), **kwargs}
    with pytest.raises(openai.BadRequestError) as err:
        client.post("/fine_tuning/jobs", body=body, cast_to=object)
    assert err.value.status_code == 400
    assert err.value.body["param"] == param  # type: ignore[index]
    assert err.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    assert client.fine_tuning.jobs.list().data == []


def test_create_rejects_wrong_purpose_and_missing_fields(client: openai.OpenAI) -> None:
    batch = upload(client, purpose="batch")
    with pytest.raises(openai.BadRequestError) as err:
        client.fine_tuning.jobs.create(model=BASE, training_file=batch)
    assert "purpose 'batch'" in err.value.message
    with pytest.raises(openai.BadRequestError) as err:
        client.post("/fine_tuning/jobs", body={"model": BASE}, cast_to=object)
    assert err.value.code == "missing_required_parameter"
    with pytest.raises(openai.BadRequestError):
        client.post("/fine_tuning/jobs", body=[1], cast_to=object)
    not_json = raw_request(
        str(client.base_url) + "fine_tuning/jobs",
        "POST",
        body=b'{"model": ',
        headers={"Authorization": "Bearer k", "Content-Type": "application/json"},
    )
    assert not_json.status == 400
    assert "could not parse the JSON body" in not_json.json()["error"]["message"]


def test_list_is_newest_first_with_cursor_and_metadata_filter(client: openai.OpenAI) -> None:
    training = upload(client)
    ids = []
    for i in range(5):
        metadata = {"env": "dev" if i % 2 else "prod", "n": str(i)} if i < 4 else None
        job = client.fine_tuning.jobs.create(model=BASE, training_file=training, metadata=metadata)
        ids.append(job.id)
    newest = ids[::-1]
    page = client.fine_tuning.jobs.list(limit=2)
    assert [j.id for j in page.data] == newest[:2] and page.has_more is True
    assert [j.id for j in client.fine_tuning.jobs.list(limit=2)] == newest
    assert [j.id for j in client.fine_tuning.jobs.list(after=ids[2]).data] == [ids[1], ids[0]]

    dev = client.fine_tuning.jobs.list(metadata={"env": "dev"})
    assert [j.id for j in dev.data] == [ids[3], ids[1]] and dev.has_more is False
    both = client.fine_tuning.jobs.list(metadata={"env": "dev", "n": "1"})
    assert [j.id for j in both.data] == [ids[1]]
    assert client.fine_tuning.jobs.list(metadata={"env": "qa"}).data == []
    unset = client.fine_tuning.jobs.list(extra_query={"metadata": "null"})
    assert [j.id for j in unset.data] == [ids[4]]
    with pytest.raises(openai.BadRequestError):
        client.get("/fine_tuning/jobs?metadata=null&metadata%5Benv%5D=dev", cast_to=object)
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.list(limit=101)
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.list(after="ftjob-unknown")


def test_unknown_job_is_404_everywhere(client: openai.OpenAI) -> None:
    jobs = client.fine_tuning.jobs
    for call in (
        jobs.retrieve,
        jobs.cancel,
        jobs.pause,
        jobs.resume,
        jobs.list_events,
        jobs.checkpoints.list,
    ):
        with pytest.raises(openai.NotFoundError) as err:
            call("ftjob-nope")
        assert err.value.code == "fine_tuning_job_not_found"


def test_state_walk_follows_the_clock(slow: Emulator, clock: Clock) -> None:
    client = sdk_client(slow.base_url)
    job = client.fine_tuning.jobs.create(model=BASE, training_file=upload(client))
    seen = {}
    for t in (0, 5, 10, 15, 20, 60, 99.9, 100):
        clock.now = START + t
        seen[t] = client.fine_tuning.jobs.retrieve(job.id).status
    assert seen == {
        0: "validating_files",
        5: "validating_files",
        10: "queued",
        15: "queued",
        20: "running",
        60: "running",
        99.9: "running",
        100: "succeeded",
    }
    done = client.fine_tuning.jobs.retrieve(job.id)
    assert done.finished_at == int(START + 100)
    assert client.files.retrieve(done.result_files[0]).created_at == int(START + 100)


def test_running_job_shows_estimate_and_partial_progress(slow: Emulator, clock: Clock) -> None:
    client = sdk_client(slow.base_url)
    job = client.fine_tuning.jobs.create(model=BASE, training_file=upload(client))
    clock.now = START + 5
    validating = client.fine_tuning.jobs.retrieve(job.id)
    assert validating.hyperparameters.n_epochs == "auto"
    clock.now = START + 50
    running = client.fine_tuning.jobs.retrieve(job.id)
    assert running.estimated_finish == int(START + 100)
    assert running.hyperparameters.n_epochs == 10  # 10 examples: 100 // 10 epochs
    assert running.fine_tuned_model is None
    # 100 steps over [20 s, 100 s): the epoch-8 checkpoint (step 80) is written at ~84 s.
    assert client.fine_tuning.jobs.checkpoints.list(job.id).data == []
    clock.now = START + 85
    assert [c.step_number for c in client.fine_tuning.jobs.checkpoints.list(job.id)] == [80]
    messages = [e.message for e in client.fine_tuning.jobs.list_events(job.id, limit=100)]
    assert "Fine-tuning job started" in messages
    assert "The job has successfully completed" not in messages


def test_cancel_pause_resume(slow: Emulator, clock: Clock) -> None:
    client = sdk_client(slow.base_url)
    lax = sdk_client(slow.base_url, strict=False)  # the SDK's status Literal lacks "paused"
    training = upload(client)
    job = client.fine_tuning.jobs.create(model=BASE, training_file=training)

    with pytest.raises(openai.BadRequestError) as err:
        client.fine_tuning.jobs.pause(job.id)
    assert "validating_files" in err.value.message
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.resume(job.id)

    clock.now = START + 30
    paused = lax.fine_tuning.jobs.pause(job.id)
    assert paused.status == "paused"
    with pytest.raises(openai.APIResponseValidationError):
        client.fine_tuning.jobs.retrieve(job.id)
    clock.now = START + 1000  # time spent paused does not count
    assert lax.fine_tuning.jobs.retrieve(job.id).status == "paused"
    with pytest.raises(openai.BadRequestError):
        lax.fine_tuning.jobs.pause(job.id)
    resumed = client.fine_tuning.jobs.resume(job.id)
    assert resumed.status == "running"
    assert resumed.estimated_finish == int(START + 1070)
    clock.now = START + 1069
    assert client.fine_tuning.jobs.retrieve(job.id).status == "running"
    clock.now = START + 1070
    assert client.fine_tuning.jobs.retrieve(job.id).status == "succeeded"
    messages = [e.message for e in client.fine_tuning.jobs.list_events(job.id, limit=100)]
    assert messages.index("Fine-tuning job resumed") < messages.index("Fine-tuning job paused")

    with pytest.raises(openai.BadRequestError) as err:
        client.fine_tuning.jobs.cancel(job.id)
    assert err.value.body == {
        "message": f"Cannot cancel fine-tuning job {job.id}: its status is succeeded.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }

    other = client.fine_tuning.jobs.create(model=BASE, training_file=training)
    clock.now += 50
    lax.fine_tuning.jobs.pause(other.id)
    cancelled = client.fine_tuning.jobs.cancel(other.id)
    assert (cancelled.status, cancelled.finished_at) == ("cancelled", int(clock.now))
    clock.now += 500
    again = client.fine_tuning.jobs.retrieve(other.id)
    assert again.status == "cancelled" and again.fine_tuned_model is None
    assert client.fine_tuning.jobs.list_events(other.id).data[0].message == (
        "Fine-tuning job cancelled"
    )
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.cancel(other.id)


def test_event_and_checkpoint_pagination(client: openai.OpenAI) -> None:
    job = client.fine_tuning.jobs.create(model=BASE, training_file=upload(client))
    everything = [e.id for e in client.fine_tuning.jobs.list_events(job.id, limit=100).data]
    assert len(everything) == len(set(everything)) > 10
    assert all(e.startswith("ftevent-") for e in everything)
    first = client.fine_tuning.jobs.list_events(job.id, limit=4)
    assert [e.id for e in first.data] == everything[:4] and first.has_more is True
    assert [e.id for e in client.fine_tuning.jobs.list_events(job.id, limit=4)] == everything

    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id, limit=1)
    assert checkpoints.has_more is True and len(checkpoints.data) == 1
    assert len(list(client.fine_tuning.jobs.checkpoints.list(job.id, limit=1))) == 3

    for listing in (client.fine_tuning.jobs.list_events, client.fine_tuning.jobs.checkpoints.list):
        with pytest.raises(openai.BadRequestError) as err:
            listing(job.id, after="ftevent-unknown")
        assert err.value.body["param"] == "after"  # type: ignore[index]
        with pytest.raises(openai.BadRequestError) as err:
            listing(job.id, limit=101)
        assert err.value.body["param"] == "limit"  # type: ignore[index]


JUNK = [None, 0, -1, 1.5, True, "", "x", [], [1], ["a", "a"], [{}], {}, {"a": 1}, {"type": 1}]


def test_junk_in_any_create_field_is_a_400_never_a_500(client: openai.OpenAI) -> None:
    training = upload(client)
    upload_id = client.uploads.create(
        bytes=1, filename="a", mime_type="text/jsonl", purpose="batch"
    ).id
    valid = {
        "/fine_tuning/jobs": {"model": BASE, "training_file": training},
        "/uploads": {"bytes": 1, "filename": "a", "mime_type": "m", "purpose": "batch"},
        f"/uploads/{upload_id}/complete": {"part_ids": []},
    }
    nested = ["method", "hyperparameters", "integrations", "metadata", "expires_after"]
    for path, body in valid.items():
        for key in [*body, *nested]:
            for junk in JUNK:
                for value in (junk, {"type": "supervised", "supervised": junk}):
                    sent = {**body, key: value}
                    # Accepted (None, [], {} where optional) or a 400; a 500 would raise here.
                    with contextlib.suppress(openai.BadRequestError):
                        client.post(path, body=sent, cast_to=object)
