"""Eval gates end to end: the real CLI in-process against the emulator over HTTP, in real git
repositories; the emulator's chat answers make scores meaningful (a fine-tune replies with the
reference of its most similar training example, a base model with a generic reply)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git
import jsonschema
import openai
import pytest
import yaml
from click.testing import Result

from ftops import evals
from ftops.commands import apply as apply_command
from ftops.commands import eval as eval_command
from ftops.emulator import Emulator
from ftops.emulator.chat import GENERIC_REPLY
from ftops.project import LOCK_FILE
from tests.conftest import raw_request, run_cli, sdk_client

KEY = "sk-test-SECRET-9d8e7f6a5b4c3d2e"
BASE = "gpt-4o-mini-2024-07-18"
CHAT_SCHEMA = Path(__file__).parent / "openapi" / "chat-completion.schema.yaml"
REPLY_SCHEMA = {
    "type": "object",
    "required": ["order", "status"],
    "properties": {"order": {"type": "integer"}, "status": {"enum": ["shipped", "pending"]}},
    "additionalProperties": False,
}


def example(question: str, answer: str) -> str:
    return json.dumps({"messages": [{"role": "system", "content": "You track orders."},
                                    {"role": "user", "content": question},
                                    {"role": "assistant", "content": answer}]})


def json_reply(i: int) -> str:
    return json.dumps({"order": i, "status": "shipped" if i % 2 else "pending"})


def training(kind: str) -> bytes:
    """``json``: replies the eval expects; ``prose``: same questions, replies that fail it."""
    lines = [example(f"What is the status of order {i}?",
                     json_reply(i) if kind == "json" else f"Order {i} is on its way.")
             for i in range(1, 11)]
    return ("\n".join(lines) + "\n").encode()


def eval_data() -> bytes:
    lines = [example(f"Please tell me the status of order {i}", json_reply(i))
             for i in range(1, 11)]
    return ("\n".join(lines) + "\n").encode()


@dataclass
class Project:
    root: Path

    @property
    def specs(self) -> Path:
        return self.root / "specs"

    def write(self, *, train: str = "json", checks: list[str] | None = None,
              eval_extra: dict[str, Any] | None = None,
              models: dict[str, Any] | None = None) -> None:
        data = self.specs / "data"
        data.mkdir(parents=True, exist_ok=True)
        (data / "train.jsonl").write_bytes(training(train))
        (data / "eval.jsonl").write_bytes(eval_data())
        (self.specs / "reply.schema.json").write_text(json.dumps(REPLY_SCHEMA))
        spec = {
            "datasets": {"train": {"path": "data/train.jsonl"},
                         "held-out": {"path": "data/eval.jsonl"}},
            "base_models": {"mini": BASE},
            "evals": {"orders": {"dataset": "held-out",
                                 "checks": checks or ["exact_match", "json_valid"],
                                 "min_score": 0.8, **(eval_extra or {})}},
            "models": models or {"bot": {"base": "mini", "training": "train", "seed": 1,
                                         "eval": "orders", "promote": "production"}},
        }
        (self.specs / "ftops.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))

    def commit(self) -> None:
        repo = git.Repo.init(self.root)
        with repo.config_writer() as config:
            config.set_value("user", "name", "t")
            config.set_value("user", "email", "t@example.invalid")
        repo.git.add(A=True)
        repo.index.commit("specs")
        repo.close()

    def lock(self) -> dict[str, Any]:
        return yaml.safe_load((self.root / LOCK_FILE).read_text())


@pytest.fixture
def project(tmp_path: Path) -> Project:
    proj = Project(tmp_path / "repo")
    proj.write()
    proj.commit()
    return proj


def point_at(monkeypatch: pytest.MonkeyPatch, server: Emulator) -> None:
    """The SDK's own variables, pointing the CLI at ``server``; no proxy for loopback."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator(job_seconds=0) as server:
        point_at(monkeypatch, server)
        yield server


def ftops(project: Project, *args: str) -> Result:
    return run_cli(project.specs, *args)


def apply(project: Project) -> Result:
    return ftops(project, "apply", "--auto-approve", "--wait", "--timeout", "60")


def chat_requests(server: Emulator) -> list[dict[str, Any]]:
    """Chat requests in the log, read the way any client would: ``GET /_emulator/requests``."""
    log = raw_request(server.url + "/_emulator/requests").json()
    return [r for r in log if r["path"] == "/v1/chat/completions"]


# --- the emulator's Chat Completions ------------------------------------------------------------


def trained_model(server: Emulator, data: bytes) -> str:
    with sdk_client(server.base_url) as sdk:
        file = sdk.files.create(file=("t.jsonl", data), purpose="fine-tune")
        job = sdk.fine_tuning.jobs.create(model=BASE, training_file=file.id)
        done = sdk.fine_tuning.jobs.retrieve(job.id)
    assert done.status == "succeeded" and done.fine_tuned_model
    return done.fine_tuned_model


def test_chat_answers_validate_against_the_schema(emulator: Emulator) -> None:
    model = trained_model(emulator, training("json"))
    bodies: list[Any] = []

    def keep(response: Any) -> None:
        response.read()
        bodies.append(json.loads(response.content))

    http = openai.DefaultHttpxClient(trust_env=False, event_hooks={"response": [keep]})
    schema = yaml.safe_load(CHAT_SCHEMA.read_text())
    with openai.OpenAI(base_url=emulator.base_url, api_key="sk-test", max_retries=0,
                       _strict_response_validation=True, http_client=http) as sdk:
        messages: Any = [{"role": "user", "content": "Please tell me the status of order 3"}]
        tuned = sdk.chat.completions.create(model=model, messages=messages, temperature=0,
                                            seed=7)
        base = sdk.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert tuned.choices[0].message.content == json_reply(3)
    assert tuned.model == model and tuned.usage is not None
    assert tuned.usage.total_tokens == tuned.usage.prompt_tokens + tuned.usage.completion_tokens
    assert tuned.usage.completion_tokens > 0
    assert base.choices[0].message.content == GENERIC_REPLY and base.model == BASE
    assert len(bodies) == 2
    for body in bodies:
        jsonschema.validate(body, schema)


def test_chat_unknown_model_is_404() -> None:
    with Emulator() as server, sdk_client(server.base_url) as sdk, \
            pytest.raises(openai.NotFoundError, match="does not exist"):
        sdk.chat.completions.create(model="ft:gpt-4o-mini-2024-07-18:x::nope",
                                    messages=[{"role": "user", "content": "hi"}])


def test_chat_honours_faults_and_latency() -> None:
    messages: Any = [{"role": "user", "content": "hi"}]
    with Emulator(fault_rate=1.0, faults=["429"]) as server, sdk_client(server.base_url) as sdk, \
            pytest.raises(openai.RateLimitError):
        sdk.chat.completions.create(model=BASE, messages=messages)
    with Emulator(latency_ms=300) as server, sdk_client(server.base_url) as sdk:
        start = time.monotonic()
        sdk.chat.completions.create(model=BASE, messages=messages)
        assert time.monotonic() - start >= 0.3


# --- checks ---------------------------------------------------------------------------------------


def test_checks(tmp_path: Path) -> None:
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps(REPLY_SCHEMA))
    schemas = {"json_schema:s.json": schema}
    good, ref = json_reply(2), json_reply(2)
    assert evals.check("exact_match", f" {good}\n", ref, schemas)
    assert not evals.check("exact_match", json_reply(3), ref, schemas)
    assert evals.check("contains", f"Here: {ref}", ref, schemas)
    assert evals.check("json_valid", "[1, 2]", ref, schemas)
    assert not evals.check("json_valid", "{nope", ref, schemas)
    assert evals.check("json_schema:s.json", good, ref, schemas)
    assert not evals.check("json_schema:s.json", '{"order": 2, "status": "lost"}', ref, schemas)
    assert not evals.check("json_schema:s.json", "not json", ref, schemas)
    assert evals.check(r"regex:^\{.*\"status\"", good, ref, schemas)
    assert not evals.check(r"regex:^\d+$", good, ref, schemas)


def test_json_schema_and_regex_checks_end_to_end(project: Project, emu: Emulator) -> None:
    checks = ["json_schema:reply.schema.json", r'regex:"status": "(shipped|pending)"']
    project.write(checks=checks)
    project.commit()
    assert apply(project).exit_code == 0
    out = json.loads(ftops(project, "eval", "--json").stdout)["evals"][0]
    assert out["candidate"]["check_passes"] == {checks[0]: 10, checks[1]: 10}
    assert out["comparison"]["check_passes"] == {checks[0]: 0, checks[1]: 0}
    project.write(train="prose", checks=checks)  # replies that are neither JSON nor match
    project.commit()
    result = apply(project)
    assert result.exit_code == 1
    out = json.loads(ftops(project, "eval", "--json").stdout)["evals"][0]
    assert out["candidate"]["check_passes"] == {checks[0]: 0, checks[1]: 0}


@pytest.mark.parametrize(("extra", "message"), [
    ({"checks": ["regex:(unclosed"]}, "evals.orders.checks.0: bad regex"),
    ({"checks": ["json_schema:missing.json"]}, "no such file in the repository: missing.json"),
    ({"checks": ["fuzzy"]}, "evals.orders.checks.0"),
    ({"compare_with": "none", "min_improvement": 0.1}, "needs a comparison"),
    ({"compare_with": "bott"}, "no model named 'bott' (did you mean 'bot'?)"),
])
def test_bad_eval_specs_are_one_line_errors(project: Project, emu: Emulator,
                                            extra: dict[str, Any], message: str) -> None:
    project.write(eval_extra=extra)
    result = ftops(project, "eval")
    assert result.exit_code == 1
    assert "ftops.yaml:" in result.stderr and message in result.stderr
    assert "Traceback" not in result.output
    assert raw_request(emu.url + "/_emulator/requests").json() == []


# --- gates, promotion, cache --------------------------------------------------------------------


def test_eval_passes_and_promotes(project: Project, emu: Emulator) -> None:
    result = apply(project)
    assert result.exit_code == 0, result.output
    lock = project.lock()
    model_id = lock["models"]["bot"]["fine_tuned_model"]
    alias = lock["aliases"]["production"]
    assert alias["model"] == "bot" and alias["model_id"] == model_id
    assert alias["eval"]["score"] == 1.0 and alias["eval"]["comparison_score"] == 0.0
    assert alias["eval"]["compared_with"] == BASE
    assert "eval orders PASSED: score 1.000 (10/10)" in result.output
    assert len(chat_requests(emu)) == 20  # ten examples, candidate and base
    assert {r["status"] for r in chat_requests(emu)} == {200}
    # The three-line snippet the README documents.
    with open(project.root / "ftops.lock") as handle:
        read = yaml.safe_load(handle)["aliases"]["production"]["model_id"]
    assert read == model_id


def test_failed_gate_keeps_the_old_alias_and_exits_non_zero(project: Project,
                                                           emu: Emulator) -> None:
    assert apply(project).exit_code == 0
    old = project.lock()["aliases"]["production"]
    project.write(train="prose")  # a new model that answers in prose: fails json_valid
    project.commit()
    result = apply(project)
    assert result.exit_code == 1
    assert "eval orders FAILED: score 0.000 (0/10)" in result.output
    assert "score 0.000 is below min_score 0.800" in result.output
    lock = project.lock()
    assert lock["models"]["bot"]["fine_tuned_model"] != old["model_id"]
    assert lock["aliases"]["production"] == old


def test_min_improvement_against_another_model(project: Project, emu: Emulator) -> None:
    models = {"bot": {"base": "mini", "training": "train", "seed": 1, "eval": "orders",
                      "promote": "production"},
              "twin": {"base": "mini", "training": "train", "seed": 2}}
    project.write(models=models, eval_extra={"compare_with": "twin", "min_improvement": 0.05})
    project.commit()
    result = apply(project)
    assert result.exit_code == 1  # as good as its twin: no improvement
    assert "improvement +0.000 over twin is below min_improvement 0.050" in result.output
    assert "aliases" not in project.lock()


def test_rerun_hits_the_cache(project: Project, emu: Emulator) -> None:
    assert apply(project).exit_code == 0
    first = json.loads(ftops(project, "eval", "--json").stdout)
    before = len(chat_requests(emu))
    again = ftops(project, "eval", "--json", "bot")
    assert again.exit_code == 0
    assert len(chat_requests(emu)) == before  # zero chat requests
    second = json.loads(again.stdout)
    assert second["evals"][0]["candidate"]["cached"] is True
    for result in (first, second):
        for run in ("candidate", "comparison"):
            result["evals"][0][run].pop("cached")
    assert first == second
    # Changing only the checks re-scores the cached replies: still no request.
    project.write(checks=["contains"])
    out = json.loads(ftops(project, "eval", "--json").stdout)["evals"][0]
    assert out["candidate"]["check_passes"] == {"contains": 10}
    assert len(chat_requests(emu)) == before


def test_eval_tokens_cost_and_text(project: Project, emu: Emulator) -> None:
    assert apply(project).exit_code == 0
    out = json.loads(ftops(project, "eval", "--json").stdout)["evals"][0]
    candidate, base = out["candidate"], out["comparison"]
    assert candidate["prompt_tokens"] > 0 and candidate["completion_tokens"] > 0
    # catalog: fine-tuned gpt-4o-mini $0.30/$1.20, base $0.15/$0.60 per 1M tokens
    assert candidate["estimated_cost_usd"] == pytest.approx(
        (candidate["prompt_tokens"] * 0.30 + candidate["completion_tokens"] * 1.20) / 1e6)
    assert base["estimated_cost_usd"] == pytest.approx(
        (base["prompt_tokens"] * 0.15 + base["completion_tokens"] * 0.60) / 1e6)
    assert out["disagreements"][0]["comparison"] == GENERIC_REPLY
    text = ftops(project, "eval").stdout
    assert "exact_match 10/10, json_valid 10/10" in text and "(cached)" in text


def test_markdown_table_and_three_disagreements(project: Project, emu: Emulator) -> None:
    assert apply(project).exit_code == 0
    results = eval_command.run(eval_command.EvalOptions(specs=project.specs))
    markdown = evals.results_markdown(results)
    assert "##### `bot`: eval `orders` ✅ passed" in markdown
    assert "| candidate | `ft:" in markdown and f"| base | `{BASE}` | 0.000 |" in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| 1 |")
            or line.startswith("| 2 |") or line.startswith("| 3 |")]
    assert len(rows) == 3 and all(GENERIC_REPLY[:20] in row for row in rows)
    assert "| 4 |" not in markdown


def test_apply_summary_carries_the_eval_tables(project: Project, emu: Emulator) -> None:
    project.write(train="prose")
    project.commit()
    run = apply_command.run(apply_command.ApplyOptions(
        specs=project.specs, wait=True, timeout=60, report=lambda _line: None, env={}))
    markdown = apply_command.apply_markdown(run)
    assert markdown.startswith("#### ftops apply FAILED")
    assert "##### `bot`: eval `orders` ❌ FAILED" in markdown
    assert "- score 0.000 is below min_score 0.800" in markdown
    assert "`Order 1 is on its way.`" in markdown  # a disagreement row
    assert "aliases" not in project.lock()


def test_faults_during_eval(project: Project, tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "emulator" / "state.json"
    with Emulator(job_seconds=0, state_path=state) as server:
        point_at(monkeypatch, server)
        assert apply(project).exit_code == 0
    (project.root / ".ftops" / "evals").rename(tmp_path / "clean-cache")
    with Emulator(job_seconds=0, state_path=state, fault_rate=0.3, seed=3, retry_after=0) as server:
        point_at(monkeypatch, server)
        result = ftops(project, "eval", "--json")
        log = chat_requests(server)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)["evals"][0]
    assert out["passed"] and out["candidate"]["score"] == 1.0
    assert out["comparison"]["score"] == 0.0
    faults = [r for r in log if r["fault"]]
    assert faults and len(log) == 20 + len(faults)


def test_no_key_in_any_output(project: Project, emu: Emulator) -> None:
    outputs = [apply(project), ftops(project, "eval"), ftops(project, "eval", "--json")]
    project.write(train="prose")
    project.commit()
    outputs.append(apply(project))
    outputs.append(ftops(project, "eval", "nobody"))
    for result in outputs:
        assert KEY not in result.output
    assert [r.exit_code for r in outputs] == [0, 0, 0, 1, 1]
    written = [project.root / LOCK_FILE,
               *(project.root / ".ftops" / "evals").glob("*.json")]
    assert len(written) > 3
    for path in written:
        assert KEY not in path.read_text()
    assert os.environ["OPENAI_API_KEY"] == KEY  # the key was there all along


def test_embedded_emulator_evals_with_no_key(project: Project,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    applied = ftops(project, "apply", "--emulator", "--auto-approve", "--wait", "--timeout", "60")
    assert applied.exit_code == 0, applied.output
    promoted = project.lock()["aliases"]["production"]["model_id"]
    assert promoted == project.lock()["models"]["bot"]["fine_tuned_model"]
    result = ftops(project, "eval", "--emulator", "bot")
    assert result.exit_code == 0, result.output
    assert "eval orders PASSED: score 1.000 (10/10) vs base" in result.stdout
    assert "(cached)" in result.stdout  # apply --wait ran it already
