"""The emulator's numbers are the service's: trained tokens as ``ftops validate`` estimates them,
validation metrics only with a validation file, prompt tokens that count tools, and streamed chat
completions that say what the plain ones say. All through the real SDK."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import openai
import pytest
from conftest import make_chat_jsonl, raw_request, sdk_client

from ftops import catalog, datasets, tokens
from ftops.emulator import Emulator

AUTH = {"Authorization": "Bearer sk-test", "Content-Type": "application/json"}
TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_order",
            "description": "Looks an order up by its number.",
            "parameters": {"type": "object", "properties": {"id": {"type": "integer"}}},
        },
    }
]


def _chat_examples() -> list[dict[str, Any]]:
    """Twelve examples with what the counter must see: names, tools, tool calls, and one over
    gpt-3.5-turbo's 16,385-token limit per example (the service bills it truncated)."""
    examples: list[dict[str, Any]] = []
    for i in range(12):
        call = {"id": f"call_{i}", "type": "function",
                "function": {"name": "get_order", "arguments": json.dumps({"id": i})}}
        messages = [
            {"role": "system", "content": "You look orders up.", "name": "desk"},
            {"role": "user", "content": f"Where is order {i}?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": f"call_{i}", "content": f"order {i}: shipped"},
            {"role": "assistant", "content": f"Order {i} has shipped."},
        ]
        examples.append({"messages": messages, "tools": TOOLS})
    examples[5]["messages"][1]["content"] = "hello " * 17_000
    return examples


def _preference_examples() -> list[dict[str, Any]]:
    return [
        {
            "input": {"messages": [{"role": "user", "content": f"Say hi to {i}."}]},
            "preferred_output": [{"role": "assistant", "content": f"Hi {i}!"}],
            "non_preferred_output": [{"role": "assistant", "content": f"Go away, {i}."}],
        }
        for i in range(10)
    ]


@pytest.mark.parametrize(
    ("model", "method", "fmt", "examples"),
    [
        ("gpt-3.5-turbo", "supervised", "chat", _chat_examples()),
        ("gpt-4o-mini", "dpo", "preference", _preference_examples()),
    ],
)
def test_trained_tokens_are_what_validate_estimates(
    client: openai.OpenAI,
    tmp_path: Path,
    model: str,
    method: str,
    fmt: str,
    examples: list[dict[str, Any]],
) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in examples))
    info = catalog.load().model(model)
    assert info is not None
    report = datasets.analyze(
        path, fmt=fmt, encoding=info.encoding, token_limit=info.example_token_limit, workers=1
    )
    assert report.ok
    if fmt == "chat":  # the long example is billed at the limit, not at its length
        assert report.billable_tokens < report.tokens.total
    training = client.files.create(file=path, purpose="fine-tune").id
    for n_epochs, epochs in ((2, 2), ("auto", datasets.default_epochs(report.examples))):
        chosen: Any = {"type": method, method: {"hyperparameters": {"n_epochs": n_epochs}}}
        job = client.fine_tuning.jobs.create(model=model, training_file=training, method=chosen)
        done = client.fine_tuning.jobs.retrieve(job.id)
        assert done.status == "succeeded"
        assert done.hyperparameters.n_epochs == epochs
        assert done.trained_tokens == datasets.billed_tokens(report.billable_tokens, epochs)


def _finished(client: openai.OpenAI, validation: bool) -> tuple[Any, list[dict[str, str]]]:
    training = client.files.create(file=("t.jsonl", make_chat_jsonl()), purpose="fine-tune").id
    held_out = None
    if validation:
        data = make_chat_jsonl(10, tag="v")
        held_out = client.files.create(file=("v.jsonl", data), purpose="fine-tune").id
    job = client.fine_tuning.jobs.create(
        model="gpt-4o-mini", training_file=training, validation_file=held_out,
        hyperparameters={"n_epochs": 3},
    )
    done = client.fine_tuning.jobs.retrieve(job.id)
    assert done.status == "succeeded"
    text = client.files.content(done.result_files[0]).text
    assert text.splitlines()[0] == (
        "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy"
    )
    return done, list(csv.DictReader(io.StringIO(text)))


VALID = ("valid_loss", "valid_mean_token_accuracy")
FULL_VALID = ("full_valid_loss", "full_valid_mean_token_accuracy")


def _metric_events(client: openai.OpenAI, job_id: str) -> list[dict[str, Any]]:
    events = client.fine_tuning.jobs.list_events(job_id, limit=100)
    return [e.data for e in events if e.type == "metrics" and isinstance(e.data, dict)]


def test_validation_metrics_only_with_a_validation_file(client: openai.OpenAI) -> None:
    job, rows = _finished(client, validation=False)
    assert rows and all(r["train_loss"] and r["train_accuracy"] for r in rows)
    assert all(r[key] == "" for r in rows for key in VALID)  # empty cells, as OpenAI's file
    metrics = _metric_events(client, job.id)
    assert metrics and all("train_loss" in m and not set(VALID) & set(m) for m in metrics)
    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert checkpoints
    for checkpoint in checkpoints:
        shown = checkpoint.metrics.to_dict()
        assert "train_loss" in shown and not set(VALID + FULL_VALID) & set(shown)

    job, rows = _finished(client, validation=True)
    assert all(float(r[key]) > 0 for r in rows for key in VALID)
    metrics = _metric_events(client, job.id)
    assert metrics and all(set(VALID) <= set(m) for m in metrics)
    for checkpoint in client.fine_tuning.jobs.checkpoints.list(job.id).data:
        assert set(VALID + FULL_VALID) <= set(checkpoint.metrics.to_dict())


CONVERSATION: Any = [
    {"role": "system", "content": "You look orders up.", "name": "desk"},
    {"role": "user", "content": "Where is order 3?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "get_order", "arguments": "{\"id\":3}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "order 3: shipped"},
]


def test_prompt_tokens_count_tools_calls_and_names(client: openai.OpenAI) -> None:
    counter = tokens.TokenCounter(tokens.get_encoding("o200k_base"))
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=CONVERSATION, tools=TOOLS
    )
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == counter.messages(CONVERSATION, tools=TOOLS)
    functions: Any = [TOOLS[0]["function"]]
    legacy = client.chat.completions.create(
        model="gpt-4o-mini", messages=CONVERSATION[:2], functions=functions
    )
    assert legacy.usage is not None
    assert legacy.usage.prompt_tokens == counter.messages(CONVERSATION[:2], functions=functions)


def _tuned(client: openai.OpenAI) -> str:
    training = client.files.create(file=("t.jsonl", make_chat_jsonl()), purpose="fine-tune").id
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=training)
    model = client.fine_tuning.jobs.retrieve(job.id).fine_tuned_model
    assert model is not None
    return model


ASK: Any = [{"role": "user", "content": "Question 4?"}]


def test_streamed_completion_says_what_the_plain_one_says(client: openai.OpenAI) -> None:
    model = _tuned(client)
    plain = client.chat.completions.create(model=model, messages=ASK, n=2)
    chunks = list(client.chat.completions.create(
        model=model, messages=ASK, n=2, stream=True, stream_options={"include_usage": True}
    ))
    assert {c.id for c in chunks} == {chunks[0].id} and chunks[0].id.startswith("chatcmpl-")
    assert all(c.object == "chat.completion.chunk" and c.model == plain.model for c in chunks)
    *deltas, last = chunks
    assert last.choices == [] and last.usage == plain.usage
    assert all(c.usage is None for c in deltas)
    for index in (0, 1):
        mine = [c.choices[0] for c in deltas if c.choices and c.choices[0].index == index]
        assert mine[0].delta.role == "assistant"
        assert len(mine) > 3  # the text arrives a token at a time
        text = "".join(choice.delta.content or "" for choice in mine)
        assert text == plain.choices[index].message.content == "Answer 4."
        assert [c.finish_reason for c in mine] == [None] * (len(mine) - 1) + ["stop"]

    cut = client.chat.completions.create(model=model, messages=ASK, max_tokens=2)
    streamed = list(client.chat.completions.create(
        model=model, messages=ASK, max_tokens=2, stream=True
    ))
    assert all(c.usage is None for c in streamed)  # no usage chunk unless asked for
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == (
        cut.choices[0].message.content
    )
    assert streamed[-1].choices[0].finish_reason == "length" == cut.choices[0].finish_reason


def test_stream_helper_accumulates_the_same_completion(client: openai.OpenAI) -> None:
    model = _tuned(client)
    plain = client.chat.completions.create(model=model, messages=ASK)
    with client.chat.completions.stream(
        model=model, messages=ASK, stream_options={"include_usage": True}
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    assert "".join(deltas) == final.choices[0].message.content == "Answer 4."
    assert final.choices[0].finish_reason == "stop" and final.usage == plain.usage


def test_stream_is_server_sent_events(emulator: Emulator) -> None:
    body = {"model": "gpt-4o-mini", "messages": ASK, "stream": True}
    raw = raw_request(emulator.base_url + "/chat/completions", "POST",
                      body=json.dumps(body).encode(), headers=AUTH)
    assert raw.status == 200
    assert raw.headers["content-type"].split(";")[0] == "text/event-stream"
    events = raw.body.decode().split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    for event in events[:-2]:
        assert event.startswith("data: ")
        assert json.loads(event[len("data: "):])["object"] == "chat.completion.chunk"


def test_stream_options_need_stream(emulator: Emulator) -> None:
    with sdk_client(emulator.base_url) as sdk:
        for stream in (False, None):
            extra = {} if stream is None else {"stream": stream}
            with pytest.raises(openai.BadRequestError) as refused:
                sdk.chat.completions.create(
                    model="gpt-4o-mini", messages=ASK, stream_options={"include_usage": True},
                    extra_body=extra,
                )
            assert refused.value.param == "stream_options"
        wrong: Any = {"include_usage": "yes"}
        with pytest.raises(openai.BadRequestError) as refused:
            sdk.chat.completions.create(
                model="gpt-4o-mini", messages=ASK, stream=True, stream_options=wrong
            )
        assert refused.value.param == "stream_options.include_usage"
