"""``ftops migrate`` end to end on the embedded emulators (the real openai and together SDKs): an
OpenAI model with an eval and an alias gets a successor on Together in a new spec file, which
validates, plans as a migration, trains with ``apply --wait`` and takes the alias only when its
gate holds; once the original no longer answers, its cached replies stand in for it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import git
import openai
import pytest
import yaml
from click.testing import Result

from ftops import render
from ftops.commands import plan as plan_command
from ftops.commands.emulated import emulator_state
from ftops.emulator import Emulator
from ftops.project import LOCK_FILE
from tests.conftest import run_cli

pytest.importorskip("together")

BASE = "gpt-4o-mini-2024-07-18"
TO = ("--to", "together", "--base", "Qwen/Qwen3-8B")


def example(question: str, answer: str) -> str:
    return json.dumps({"messages": [{"role": "system", "content": "You track orders."},
                                    {"role": "user", "content": question},
                                    {"role": "assistant", "content": answer}]})


def reply(i: int) -> str:
    return json.dumps({"order": i, "status": "shipped" if i % 2 else "pending"})


class Repo:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.specs = root / "specs"
        data = self.specs / "data"
        data.mkdir(parents=True)
        (data / "train.jsonl").write_text("".join(
            example(f"What is the status of order {i}?", reply(i)) + "\n" for i in range(1, 11)))
        (data / "eval.jsonl").write_text("".join(
            example(f"Please tell me the status of order {i}", reply(i)) + "\n"
            for i in range(1, 11)))
        spec = {
            "datasets": {"train": {"path": "data/train.jsonl"},
                         "held-out": {"path": "data/eval.jsonl"}},
            "base_models": {"mini": BASE},
            "evals": {"orders": {"dataset": "held-out", "checks": ["exact_match", "json_valid"],
                                 "min_score": 0.8}},
            "models": {
                "bot": {"base": "mini", "training": "train", "seed": 1,
                        "hyperparameters": {"n_epochs": 3, "learning_rate_multiplier": 2},
                        "eval": "orders", "promote": "production"},
                "bot-tone": {"base": "bot", "training": "train", "validation": "held-out",
                             "suffix": "tone"}},
        }
        self.original = yaml.safe_dump(spec, sort_keys=False)
        (self.specs / "ftops.yaml").write_text(self.original)
        self.commit()

    def commit(self) -> None:
        repo = git.Repo.init(self.root)
        with repo.config_writer() as config:
            config.set_value("user", "name", "t")
            config.set_value("user", "email", "t@example.invalid")
        repo.git.add(A=True)
        repo.index.commit("specs")
        repo.close()

    def ftops(self, *args: str) -> Result:
        return run_cli(self.specs, *args)

    def apply(self) -> Result:
        return self.ftops("apply", "--emulator", "--auto-approve", "--wait", "--timeout", "60")

    def lock(self) -> dict[str, Any]:
        return yaml.safe_load((self.root / LOCK_FILE).read_text())

    def alias(self) -> str:
        return str(self.lock()["aliases"]["production"]["model"])


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repo:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return Repo(tmp_path / "repo")


def migrated(repo: Repo, *args: str) -> Result:
    result = repo.ftops("migrate", "bot", *TO, *args)
    assert result.exit_code == 0, result.output
    repo.commit()
    return result


# -- writing the successor -----------------------------------------------------------------


def test_dry_run_prints_the_file_and_writes_nothing(repo: Repo) -> None:
    result = repo.ftops("migrate", "bot", *TO, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "# would write " in result.stdout and "migrate-together.yaml" in result.stdout
    assert not (repo.specs / "migrate-together.yaml").exists()
    printed = yaml.safe_load(result.stdout.split("(--dry-run)\n", 1)[1].split("\nmodel ")[0])
    assert printed["models"]["bot-together"] == {
        "base": "Qwen/Qwen3-8B", "provider": "together", "training": "train",
        "hyperparameters": {"n_epochs": 3}, "seed": 1, "eval": "bot-together",
        "promote": "production", "migrates": "bot"}
    assert printed["evals"]["bot-together"] == {
        "dataset": "held-out", "checks": ["exact_match", "json_valid"], "min_score": 0.8,
        "compare_with": "bot", "min_improvement": 0.0}
    assert printed["providers"] == {"together": {"type": "together"}}


def test_migrate_writes_a_new_file_that_validates_and_edits_none(repo: Repo) -> None:
    result = repo.ftops("migrate", "bot-tone", *TO)
    assert result.exit_code == 0, result.output
    out = repo.specs / "migrate-together.yaml"
    assert f"wrote {out}" in result.stdout.replace(str(repo.specs) + "/", str(repo.specs) + "/")
    assert (repo.specs / "ftops.yaml").read_text() == repo.original
    text = out.read_text()
    written = yaml.safe_load(text)
    # The chain comes along, parent first: bot-tone's successor trains on bot's successor.
    assert list(written["models"]) == ["bot-together", "bot-tone-together"]
    assert written["models"]["bot-tone-together"]["base"] == "bot-together"
    assert "also migrates bot: bot-tone chains on it" in result.stdout
    # What could not be carried over: a comment in the file, a line in the output.
    dropped = ("not carried over: learning_rate_multiplier: 2 — together takes no "
               "learning_rate_multiplier (it takes an absolute learning_rate under options:)")
    assert f"    # {dropped}" in text.splitlines()
    assert dropped in result.stdout
    # bot-tone has no eval: its successor is compared on its validation set.
    assert written["evals"]["bot-tone-together"]["dataset"] == "held-out"
    assert written["evals"]["bot-tone-together"]["compare_with"] == "bot-tone"
    validated = repo.ftops("validate")
    assert validated.exit_code == 0, validated.output
    again = repo.ftops("migrate", "bot", *TO)
    assert again.exit_code == 1
    assert "exists; migrate writes a new spec file and edits none" in again.output


def test_a_target_that_cannot_fit_is_refused_with_what_is_at_fault(repo: Repo) -> None:
    long = example("x " * 20000, "y")  # over together's 16,384-token limit for gpt-oss-120b
    (repo.specs / "data" / "train.jsonl").write_text(
        example("q", "a") + "\n" + long + "\n" + long + "\n")
    result = repo.ftops("migrate", "bot", "--to", "together", "--base", "openai/gpt-oss-120b")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr
    for line, number in zip(lines, (2, 3), strict=True):
        assert line.startswith("Error: ")
        assert f"specs/data/train.jsonl:{number}: example has " in line
        assert "over together's limit for openai/gpt-oss-120b (supervised) of 16384" in line
    dpo = yaml.safe_load(repo.original)
    (repo.specs / "data" / "prefs.jsonl").write_text(json.dumps({
        "input": {"messages": [{"role": "user", "content": "q"}]},
        "preferred_output": [{"role": "assistant", "content": "a"}],
        "non_preferred_output": [{"role": "assistant", "content": "b"}]}) + "\n")
    dpo["datasets"]["prefs"] = {"path": "data/prefs.jsonl", "format": "preference"}
    dpo["models"]["bot-tone"] = {"base": "bot", "training": "prefs", "method": "dpo",
                                 "eval": "orders"}
    (repo.specs / "ftops.yaml").write_text(yaml.safe_dump(dpo, sort_keys=False))
    at = (repo.specs / "ftops.yaml").read_text().splitlines().index("    method: dpo") + 1
    refused = repo.ftops("migrate", "bot-tone", "--to", "nebius", "--base",
                         "meta-llama/Llama-3.1-8B-Instruct")
    assert refused.exit_code == 1
    assert [line.split("specs/", 1)[1] for line in refused.stderr.splitlines()] == [
        f"ftops.yaml:{at}: model bot-tone: nebius does not fine-tune "
        "meta-llama/Llama-3.1-8B-Instruct with method dpo (offers: supervised)"]
    unknown = repo.ftops("migrate", "bot", "--to", "together", "--base", "gpt-4o")
    assert unknown.exit_code == 1
    assert "does not fine-tune it, as far as the catalog knows" in unknown.stderr
    assert not list(repo.specs.glob("migrate-*.yaml"))


# -- the plan ------------------------------------------------------------------------------


def test_plan_shows_the_migration_and_the_suggested_successors(repo: Repo) -> None:
    migrated(repo)
    planned = repo.ftops("plan", "--emulator")
    assert planned.exit_code == 0, planned.output
    row = next(line for line in planned.stdout.splitlines() if "model.bot-together" in line)
    assert "+ train" in row
    assert ("migrates bot (shuts down 2027-01-14); then eval bot-together, alias production "
            "moves if it passes") in row
    suggested = ("suggested successors: azure gpt-4o-mini-2024-07-18 (new jobs until "
                 "2027-03-31), nebius meta-llama/Llama-3.1-8B-Instruct, together Qwen/Qwen3-8B, "
                 "fireworks accounts/fireworks/models/qwen3-8b")
    assert planned.stdout.count(suggested) == 1
    plan = plan_command.run(plan_command.PlanOptions(specs=repo.specs, emulator=True)).plan
    assert plan is not None
    markdown = render.render_markdown(plan)
    assert "migrates bot (shuts down 2027-01-14)" in markdown
    assert markdown.count(suggested) == 1


# -- apply, the gate and the cache ---------------------------------------------------------


def delete_model(repo: Repo, model_id: str) -> None:
    """Deletes ``model_id`` from the embedded OpenAI emulator's account, through the SDK."""
    with Emulator(state_path=emulator_state(repo.root, "openai"), job_seconds=0) as server:
        sdk = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        assert sdk.models.delete(model_id).deleted


def test_the_alias_moves_to_the_successor_when_its_gate_holds(
        repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    first = repo.apply()
    assert first.exit_code == 0, first.output
    assert repo.alias() == "bot"
    original = repo.lock()["models"]["bot"]["fine_tuned_model"]
    migrated(repo)
    assert repo.ftops("validate").exit_code == 0
    applied = repo.apply()
    assert applied.exit_code == 0, applied.output
    assert "eval bot-together PASSED" in applied.output
    assert f"vs bot {original} 1.000" in applied.output
    assert repo.alias() == "bot-together"
    again = repo.apply()  # the original's gate still passes; the alias stays on the successor
    assert again.exit_code == 0, again.output
    assert repo.alias() == "bot-together"

    # The original is deleted: `ftops eval` compares with its cached replies.
    delete_model(repo, original)
    evaluated = repo.ftops("eval", "--emulator", "bot-together")
    assert evaluated.exit_code == 0, evaluated.output
    assert f"vs bot {original} 1.000" in evaluated.output
    # Its base shut down: apply's gate skips it and holds the successor to its cached replies.
    monkeypatch.setenv("FTOPS_TODAY", "2027-02-01")
    late = repo.apply()
    assert late.exit_code == 0, late.output
    assert "model bot: no longer answers; eval orders skipped" in late.output
    assert repo.alias() == "bot-together"
    # Without those replies the comparison is one clear line.
    for cached in (repo.root / ".ftops" / "evals").glob("*.json"):
        cached.unlink()
    gone = repo.ftops("eval", "--emulator", "bot-together")
    assert gone.exit_code == 1
    assert [line.split("/specs/", 1)[1] for line in gone.stderr.splitlines()] == [
        f"migrate-together.yaml:8: eval bot-together compares with model bot "
        f"({original}), which stopped answering, and no reply of it to dataset held-out is "
        "cached (the comparison needs its replies from an eval run while it answered; set "
        "compare_with: base or none)"]


def test_the_alias_stays_when_the_gate_cannot_hold(repo: Repo) -> None:
    assert repo.apply().exit_code == 0
    migrated(repo)
    out = repo.specs / "migrate-together.yaml"
    out.write_text(out.read_text().replace("min_improvement: 0.0", "min_improvement: 1.0"))
    repo.commit()
    applied = repo.apply()
    assert applied.exit_code == 1, applied.output
    assert "eval bot-together FAILED" in applied.output
    assert repo.alias() == "bot"
    assert repo.lock()["models"]["bot-together"]["status"] == "succeeded"


def test_the_example_migration_validates_with_the_examples() -> None:
    from ftops import spec

    examples = Path(__file__).parent.parent / "examples" / "specs"
    loaded, problems = spec.collect_specs(examples)
    assert problems == ()
    successor = loaded.model("triage-together")
    assert successor is not None and original_of(successor) == "triage"
    assert successor.promote == "triage-production"
    shipped = yaml.safe_load((examples / "migration.yaml").read_text())
    assert set(shipped["models"]) == {"triage-together", "shop-faq-together"}
    # Migrating them again is refused: the successors are declared already.
    again = run_cli(examples, "migrate", "triage", *TO, "--dry-run")
    assert again.exit_code == 1
    assert "model triage-together is declared already" in again.stderr


def original_of(model: Any) -> str | None:
    return getattr(model, "migrates", None)
