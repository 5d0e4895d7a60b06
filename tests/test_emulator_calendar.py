"""The emulator's calendar: on the day FTOPS_TODAY names, each flavour refuses what its provider
refuses (new jobs after the training stop, chat after the shutdown), through the real SDK."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest
from conftest import make_chat_jsonl, raw_request, sdk_client
from test_emulator_azure import API_VERSION, azure_client

from ftops.emulator import Emulator
from ftops.errors import FtopsError

BASE = "gpt-4o-mini-2024-07-18"
HEADER = "x-ftops-emulator"
HI: Any = [{"role": "user", "content": "Question 1?"}]


@dataclass(frozen=True)
class Account:
    flavor: str
    emulator: Emulator
    client: openai.OpenAI  # an AzureOpenAI for the azure flavour

    def upload(self) -> str:
        return self.client.files.create(file=("t.jsonl", make_chat_jsonl()), purpose="fine-tune").id

    def train(self, model: str = BASE) -> str:
        """A fine-tuned model, built today (job_seconds=0: it is done on the next read)."""
        job = self.client.fine_tuning.jobs.create(model=model, training_file=self.upload())
        done = self.client.fine_tuning.jobs.retrieve(job.id)
        assert done.status == "succeeded" and done.fine_tuned_model
        return done.fine_tuned_model

    def chat(self, model: str) -> str | None:
        answer = self.client.chat.completions.create(model=model, messages=HI)
        return answer.choices[0].message.content


def _client(emu: Emulator) -> openai.OpenAI:
    return azure_client(emu.azure_endpoint) if emu.flavor == "azure" else sdk_client(emu.base_url)


@pytest.fixture(params=["openai", "azure"])
def flavor(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def account(flavor: str) -> Iterator[Account]:
    with Emulator(flavor=flavor, job_seconds=0) as emu, _client(emu) as client:
        yield Account(flavor, emu, client)


@pytest.fixture
def openai_account() -> Iterator[Account]:
    with Emulator(job_seconds=0) as emu, _client(emu) as client:
        yield Account("openai", emu, client)


@pytest.fixture
def azure_account() -> Iterator[Account]:
    with Emulator(flavor="azure", job_seconds=0) as emu, _client(emu) as client:
        yield Account("azure", emu, client)


def _today(monkeypatch: pytest.MonkeyPatch, day: str) -> None:
    monkeypatch.setenv("FTOPS_TODAY", day)


def _refusal(model: str, since: str) -> dict[str, Any]:
    return {
        "message": f"Fine-tuning jobs can no longer be created on {model}: new fine-tuning jobs "
        f"are not accepted since {since}.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_available",
    }


def _not_found(model: str) -> dict[str, Any]:
    return {
        "message": f"The model `{model}` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_found",
    }


# new jobs --------------------------------------------------------------------------------------
def test_before_any_stop_both_flavours_create_jobs(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    _today(monkeypatch, "2026-12-01")
    training = account.upload()
    created = account.client.fine_tuning.jobs.with_raw_response.create(
        model="gpt-4o-mini", training_file=training
    )
    assert created.headers[HEADER] == account.flavor
    assert created.parse().model == BASE
    assert account.train().startswith(f"ft:{BASE}:")


def test_openai_refuses_new_jobs_from_its_stop_and_changes_nothing(
    openai_account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    _today(monkeypatch, "2026-12-01")
    account = openai_account
    earlier = account.train()
    training = account.upload()
    jobs_before = [j.id for j in account.client.fine_tuning.jobs.list()]
    _today(monkeypatch, "2027-01-07")
    for model, named in (
        ("gpt-4o-mini", BASE),  # an alias is named by its snapshot, as the job would report it
        ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano-2025-04-14"),  # OpenAI stops every base
        (earlier, f"{earlier} (a fine-tune of {BASE})"),
    ):
        with pytest.raises(openai.BadRequestError) as refused:
            account.client.fine_tuning.jobs.create(model=model, training_file=training)
        assert refused.value.status_code == 400
        assert refused.value.response.json() == {"error": _refusal(named, "2027-01-06")}
        assert refused.value.code == "model_not_available"
        assert refused.value.response.headers[HEADER] == "openai"
    assert [j.id for j in account.client.fine_tuning.jobs.list()] == jobs_before
    log = account.emulator.requests()
    creates = [e["status"] for e in log if e["method"] == "POST" and "jobs" in e["path"]]
    assert creates == [200, 400, 400, 400]  # the one that trained `earlier`, then the refusals


def test_a_refused_create_draws_nothing_from_the_seeded_account(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Same seed, same requests, plus refused creates in one run: the job ids still agree, so
    the refusal came before the seed and the ids were drawn."""

    def job_id(refuse_first: bool) -> str:
        _today(monkeypatch, "2026-12-01")
        with Emulator(job_seconds=0, seed=9) as emu, _client(emu) as client:
            training = client.files.create(file=("t.jsonl", make_chat_jsonl()), purpose="fine-tune")
            if refuse_first:
                _today(monkeypatch, "2027-01-07")
                for _ in range(2):
                    with pytest.raises(openai.BadRequestError):
                        client.fine_tuning.jobs.create(model=BASE, training_file=training.id)
                _today(monkeypatch, "2026-12-01")
            return client.fine_tuning.jobs.create(model=BASE, training_file=training.id).id

    assert job_id(refuse_first=True) == job_id(refuse_first=False)


def test_azure_keeps_creating_after_openai_stops_then_stops_per_base(
    azure_account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = azure_account
    _today(monkeypatch, "2026-12-01")
    earlier = account.train()
    _today(monkeypatch, "2027-01-07")
    assert account.train().startswith(f"ft:{BASE}:")  # OpenAI's stop is not Azure's
    # Azure retires per base: gpt-4o-mini from 2027-04-01, gpt-4.1-mini from 2027-04-14.
    _today(monkeypatch, "2027-04-05")
    training = account.upload()
    assert account.train("gpt-4.1-mini").startswith("ft:gpt-4.1-mini-2025-04-14:")
    with pytest.raises(openai.BadRequestError) as refused:
        account.client.fine_tuning.jobs.create(model=BASE, training_file=training)
    assert refused.value.response.json() == {"error": _refusal(BASE, "2027-04-01")}
    _today(monkeypatch, "2027-06-01")
    for model, named in ((BASE, BASE), (earlier, f"{earlier} (a fine-tune of {BASE})")):
        with pytest.raises(openai.BadRequestError) as refused:
            account.client.fine_tuning.jobs.create(model=model, training_file=training)
        # The service's own error, in OpenAI's shape (Azure passes it through), not a gateway's.
        assert refused.value.response.json() == {"error": _refusal(named, "2027-04-01")}
        assert refused.value.response.headers[HEADER] == "azure"


def test_jobs_created_before_the_stop_still_finish_and_stay_listed(
    flavor: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1_800_000_000.0]
    _today(monkeypatch, "2026-12-01")
    with Emulator(flavor=flavor, job_seconds=100, clock=lambda: now[0]) as emu, \
            _client(emu) as client:
        training = client.files.create(file=("t.jsonl", make_chat_jsonl()), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model=BASE, training_file=training.id)
        now[0] += 50
        assert client.fine_tuning.jobs.retrieve(job.id).status == "running"
        _today(monkeypatch, "2027-12-01")  # past every stop and shutdown of both providers
        now[0] += 100
        done = client.fine_tuning.jobs.retrieve(job.id)
        assert done.status == "succeeded" and done.fine_tuned_model
        listed = {m.id for m in client.models.list()}
        assert {done.fine_tuned_model, BASE, "gpt-4o-mini"} <= listed


def test_models_list_the_flavour_own_shutdown_dates(account: Account) -> None:
    """The listing agrees with what chat does (clients read it: ``ftops.lifecycle``)."""
    listed = {m.id: m for m in account.client.models.list()}
    expected = {"openai": "2027-01-14", "azure": "2027-10-01"}[account.flavor]
    assert listed[BASE].shutdown_date == expected  # type: ignore[attr-defined]
    assert listed["gpt-4o-mini"].shutdown_date == expected  # type: ignore[attr-defined]
    assert listed["gpt-3.5-turbo-0125"].shutdown_date is None  # type: ignore[attr-defined]


# chat ------------------------------------------------------------------------------------------
def test_openai_fine_tunes_and_their_base_stop_answering_at_the_shutdown(
    openai_account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = openai_account
    _today(monkeypatch, "2026-12-01")
    tuned = account.train()
    _today(monkeypatch, "2027-01-13")  # the day before: still answering
    assert account.chat(tuned) == "Answer 1."
    _today(monkeypatch, "2027-01-14")
    for model in (tuned, BASE, "gpt-4o-mini"):
        with pytest.raises(openai.NotFoundError) as gone:
            account.chat(model)
        assert gone.value.response.json() == {"error": _not_found(model)}
        assert gone.value.response.headers[HEADER] == "openai"
    # gpt-4.1-nano has no announced shutdown: it keeps answering.
    assert account.chat("gpt-4.1-nano") is not None
    assert tuned in {m.id for m in account.client.models.list()}


def test_azure_fine_tunes_answer_until_azure_own_shutdown(
    azure_account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = azure_account
    _today(monkeypatch, "2026-12-01")
    tuned = account.train()
    _today(monkeypatch, "2027-01-14")  # OpenAI's shutdown day: Azure still serves
    assert account.chat(tuned) == "Answer 1."
    assert account.chat(BASE) is not None
    _today(monkeypatch, "2027-10-01")
    for model in (tuned, BASE):
        with pytest.raises(openai.NotFoundError) as gone:
            account.chat(model)
        # The deployment's path is known, so this is the service's 404, not DeploymentNotFound.
        assert gone.value.response.json() == {"error": _not_found(model)}
        assert gone.value.response.headers[HEADER] == "azure"


# the header ------------------------------------------------------------------------------------
def test_every_response_names_the_flavour(monkeypatch: pytest.MonkeyPatch) -> None:
    _today(monkeypatch, "2026-12-01")
    with Emulator(fault_rate=1.0, faults=["429"], retry_after=0) as faulty:
        bearer = {"Authorization": "Bearer k"}
        rate_limited = raw_request(faulty.base_url + "/models", headers=bearer)
        assert (rate_limited.status, rate_limited.headers[HEADER]) == (429, "openai")
    with Emulator() as emu:
        bearer = {"Authorization": "Bearer k"}
        seen = [
            raw_request(emu.base_url + "/models", headers=bearer),  # 200
            raw_request(emu.base_url + "/models"),  # 401: no key
            raw_request(emu.base_url + "/nothing", headers=bearer),  # 404: unknown URL
            raw_request(emu.url + "/_emulator/requests"),  # the control endpoint
        ]
        assert [(r.status, r.headers[HEADER]) for r in seen] == [
            (200, "openai"), (401, "openai"), (404, "openai"), (200, "openai"),
        ]  # fmt: skip
    with Emulator(flavor="azure") as emu:
        query = f"?api-version={API_VERSION}"
        seen = [
            raw_request(emu.url + "/openai/models" + query, headers={"api-key": "k"}),
            raw_request(emu.url + "/openai/models" + query),  # the gateway's 401
            raw_request(emu.url + "/openai/models", headers={"api-key": "k"}),  # no api-version
        ]
        assert [(r.status, r.headers[HEADER]) for r in seen] == [
            (200, "azure"), (401, "azure"), (400, "azure"),
        ]  # fmt: skip


# the day itself --------------------------------------------------------------------------------
def test_a_malformed_day_is_refused_at_start_and_answered_as_500_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FTOPS_TODAY", "next tuesday")
    with pytest.raises(FtopsError, match="FTOPS_TODAY"):
        Emulator()
    _today(monkeypatch, "2026-12-01")
    with Emulator(job_seconds=0) as emu, _client(emu) as client:
        training = client.files.create(file=("t.jsonl", make_chat_jsonl()), purpose="fine-tune")
        monkeypatch.setenv("FTOPS_TODAY", "2027-13-01")
        with pytest.raises(openai.InternalServerError, match="FTOPS_TODAY"):
            client.fine_tuning.jobs.create(model=BASE, training_file=training.id)
        assert client.fine_tuning.jobs.list().data == []


def test_an_unset_day_is_the_machine_date(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without FTOPS_TODAY the calendar follows the real date; whatever it is, creating a job
    either works or is refused with the calendar's error, never anything else."""
    monkeypatch.delenv("FTOPS_TODAY", raising=False)
    with Emulator(job_seconds=0) as emu, _client(emu) as client:
        training = client.files.create(file=("t.jsonl", make_chat_jsonl()), purpose="fine-tune")
        try:
            client.fine_tuning.jobs.create(model=BASE, training_file=training.id)
        except openai.BadRequestError as refused:
            assert refused.code == "model_not_available"
