from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import git
import jsonschema
import pytest
import yaml

from ftops import spec
from ftops.errors import FtopsError

REPO = Path(__file__).resolve().parent.parent


def write_chat(path: Path, n: int = 10, tag: str = "q") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": f"{tag} question {i}"},
                    {"role": "assistant", "content": f"{tag} answer {i}"},
                ]
            }
        )
        for i in range(n)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_preference(path: Path, n: int = 10) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps(
            {
                "input": {"messages": [{"role": "user", "content": f"p {i}"}]},
                "preferred_output": [{"role": "assistant", "content": f"good {i}"}],
                "non_preferred_output": [{"role": "assistant", "content": f"bad {i}"}],
            }
        )
        for i in range(n)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A real git work tree with chat datasets under data/ and an empty specs/ directory."""
    git.Repo.init(tmp_path).close()
    write_chat(tmp_path / "data" / "train.jsonl", tag="train")
    write_chat(tmp_path / "data" / "val.jsonl", tag="val")
    write_preference(tmp_path / "data" / "prefs.jsonl")
    (tmp_path / "specs").mkdir()
    return tmp_path


def put(repo: Path, name: str, text: str) -> Path:
    path = repo / "specs" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems(repo: Path) -> list[str]:
    _, found = spec.collect_specs(repo / "specs")
    return [str(d) for d in found]


BASE = """
    datasets:
      train:
        path: ../data/train.jsonl
      val:
        path: ../data/val.jsonl
      prefs:
        path: ../data/prefs.jsonl
        format: preference"""


def test_demo_specs_resolve_in_training_order() -> None:
    loaded = spec.load_specs(REPO / "specs")
    models = loaded.models
    assert [m.name for m in models] == ["support-bot", "support-bot-tone"]
    bot, tone = models
    assert bot.base_model == tone.base_model == "gpt-4o-mini-2024-07-18"
    assert (bot.parent, tone.parent) == (None, "support-bot")
    assert bot.training_path == REPO / "specs" / "data" / "support-train.jsonl"
    assert bot.validation == "support-val"
    assert bot.hyperparameters == {
        "n_epochs": 3,
        "batch_size": "auto",
        "learning_rate_multiplier": "auto",
    }
    assert (bot.n_epochs, tone.n_epochs) == (3, None)
    assert (bot.suffix, bot.seed, bot.metadata) == ("support-bot", 42, {"team": "support"})
    assert (bot.provider, bot.method, bot.max_cost_usd) == ("openai", "supervised", 5.0)
    assert (bot.encoding, bot.example_token_limit, bot.training_usd_per_1m) == (
        "o200k_base",
        65536,
        3.0,
    )
    assert bot.file.endswith("specs/models.yaml") and bot.line == 5
    assert bot.line_of("max_cost_usd") == 16
    assert [d.name for d in loaded.datasets] == ["support-tone", "support-train", "support-val"]
    assert [p.name for p in loaded.providers] == ["openai"]
    assert loaded.root == REPO


@pytest.mark.parametrize(
    "path",
    [
        "examples/specs",
        "examples/specs/basic.yaml",
        "examples/specs/chained-dpo.yaml",
        "examples/specs/providers-evals.yaml",
        "specs",
    ],
)
def test_shipped_specs_are_valid(path: str) -> None:
    _, found = spec.collect_specs(REPO / path)
    assert found == ()


def test_examples_cover_chaining_dpo_pricing_providers_and_evals() -> None:
    loaded = spec.load_specs(REPO / "examples" / "specs")
    dpo = loaded.model("sql-dpo")
    assert dpo is not None
    assert (dpo.parent, dpo.method, dpo.base_model) == ("sql-sft", "dpo", "gpt-4.1-mini-2025-04-14")
    assert dpo.training_usd_per_1m == 4.0  # pricing: overrides the catalog's 5.00
    triage = loaded.model("triage")
    assert triage is not None
    assert (triage.provider, triage.eval, triage.promote) == (
        "azure",
        "triage-quality",
        "triage-production",
    )
    azure = next(p for p in loaded.providers if p.name == "azure")
    assert (azure.type, azure.api_version, azure.api_key_env) == (
        "azure",
        "2025-04-01-preview",
        "AZURE_OPENAI_API_KEY",
    )
    assert [(e.name, e.checks, e.min_score) for e in loaded.evals if e.compare_with == "base"] == [
        ("triage-quality", ("json_valid", "exact_match"), 0.8)
    ]


def test_schema_file_is_the_generated_schema() -> None:
    assert (REPO / spec.SCHEMA_PATH).read_text(encoding="utf-8") == spec.schema_text()
    assert spec.schema_text() == spec.schema_text()


def _shipped_spec_files() -> list[Path]:
    return sorted(
        p
        for base in ("specs", "examples/specs")
        for p in (REPO / base).rglob("*")
        if p.suffix in (".yaml", ".yml")
    )


def test_every_shipped_yaml_points_editors_at_its_schema() -> None:
    files = _shipped_spec_files()
    assert len(files) >= 5
    prefix = "# yaml-language-server: $schema="
    for path in files:
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith(prefix), path
        assert (path.parent / first.removeprefix(prefix)).resolve() == REPO / spec.SCHEMA_PATH
    # Other YAML there (the example GitHub workflows) points at the schema of its own kind,
    # also kept in the repository.
    others = {
        p
        for base in ("specs", "examples")
        for p in (REPO / base).rglob("*")
        if p.suffix in (".yaml", ".yml")
    } - set(files)
    assert others
    for path in others:
        assert path.parent.name == "workflows", path
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith(prefix), path
        target = (path.parent / first.removeprefix(prefix)).resolve()
        assert target == REPO / "schema" / "github-workflow.schema.json", path


def test_shipped_specs_pass_the_json_schema_and_bad_ones_do_not() -> None:
    validator = jsonschema.Draft202012Validator(spec.json_schema())
    for path in _shipped_spec_files():
        assert list(validator.iter_errors(yaml.safe_load(path.read_text()))) == [], path
    bad = {
        "models": {
            "m": {"base": "x", "training": "t", "sufix": "s", "hyperparameters": {"n_epochs": 0}}
        }
    }
    assert sorted(e.message for e in validator.iter_errors(bad)) == [
        "Additional properties are not allowed ('sufix' was unexpected)",
        "{'n_epochs': 0} is not valid under any of the given schemas",
    ]


def test_valid_spec_with_every_section(repo: Path) -> None:
    put(
        repo,
        "all.yaml",
        BASE
        + """
    base_models:
      mini: gpt-4o-mini
    models:
      sft:
        base: mini
        training: train
        validation: val
        eval: quality
        promote: production
        provider: lab
        hyperparameters: {n_epochs: 2, learning_rate_multiplier: 0.5}
      pref:
        base: sft
        training: prefs
        method: dpo
        hyperparameters: {beta: 0.2, batch_size: 4}
      custom:
        base: my-own-model
        training: train
      from-ft:
        base: ft:gpt-3.5-turbo-0125:acme:bot:abc123
        training: train
    evals:
      quality:
        dataset: val
        checks: [exact_match]
    providers:
      lab:
        base_url: http://127.0.0.1:8321/v1
        api_key_env: LAB_API_KEY
    pricing:
      gpt-4o-mini:
        training_usd_per_1m: 2.5
    """,
    )
    loaded = spec.load_specs(repo / "specs")
    names = [m.name for m in loaded.models]
    assert names.index("sft") < names.index("pref")
    sft, pref = loaded.model("sft"), loaded.model("pref")
    custom, from_ft = loaded.model("custom"), loaded.model("from-ft")
    assert sft and pref and custom and from_ft
    assert sft.base_model == pref.base_model == "gpt-4o-mini"
    assert sft.training_usd_per_1m == pref.training_usd_per_1m == 2.5  # alias keys match too
    assert pref.hyperparameters == {"beta": 0.2, "batch_size": 4}
    assert sft.validation_path == repo / "data" / "val.jsonl"
    # A literal id outside the catalog is fine, but it has no facts and no price.
    assert (
        custom.base_model,
        custom.encoding,
        custom.example_token_limit,
        custom.training_usd_per_1m,
    ) == ("my-own-model", "o200k_base", None, None)
    # A fine-tuned model id takes the facts of its root base model.
    assert (from_ft.encoding, from_ft.example_token_limit, from_ft.training_usd_per_1m) == (
        "cl100k_base",
        16385,
        8.0,
    )
    assert [p.name for p in loaded.providers] == ["lab", "openai"]


def test_anchors_merge_keys_and_multiple_documents(repo: Path) -> None:
    put(
        repo,
        "a.yaml",
        BASE
        + """
    models:
      one: &defaults
        base: gpt-4o-mini-2024-07-18
        training: train
        seed: 1
      two:
        <<: *defaults
        seed: 2
    ---
    base_models:
      big: gpt-4o
    """,
    )
    loaded = spec.load_specs(repo / "specs")
    assert [(m.name, m.seed) for m in loaded.models] == [("one", 1), ("two", 2)]


def test_single_file_and_yml_and_nested_directories(repo: Path) -> None:
    put(repo, "data.yml", BASE)
    put(
        repo,
        "team/models.yaml",
        """
    models:
      m:
        base: gpt-4o-mini
        training: train
    """,
    )
    put(repo, ".hidden/ignored.yaml", "not: [valid")
    loaded = spec.load_specs(repo / "specs")
    assert [m.name for m in loaded.models] == ["m"]
    assert [Path(f).name for f in loaded.files] == ["data.yml", "models.yaml"]
    only = spec.load_specs(repo / "specs" / "data.yml")
    assert (only.models, len(only.datasets)) == ((), 3)


def test_syntax_error_names_the_line(repo: Path) -> None:
    path = put(
        repo,
        "bad.yaml",
        """
    models:
      m:
        base: gpt-4o
         training: x
    """,
    )
    found = problems(repo)
    assert len(found) == 1
    assert found[0].startswith(f"{path}:4: invalid YAML: ")


def test_unclosed_flow_at_end_of_file_is_reported_on_the_last_line(repo: Path) -> None:
    path = put(repo, "bad.yaml", "datasets: {\n  train: {path: a.jsonl}\n")
    assert problems(repo)[0].startswith(f"{path}:2: invalid YAML: ")


def test_wrong_types_each_on_its_own_line(repo: Path) -> None:
    path = put(
        repo,
        "a.yaml",
        BASE
        + """
    models:
      m:
        base: gpt-4o
        training: train
        seed: lots
        suffix: %s
        hyperparameters:
          n_epochs: 0
          batch_size: auto
          learning_rate_multiplier: fast
        metadata: {team: 7}
        max_cost_usd: cheap
    """
        % ("x" * 65),
    )
    assert problems(repo) == [
        f"{path}:13: models.m.seed: input should be a valid integer",
        f"{path}:14: models.m.suffix: string should have at most 64 characters",
        f"{path}:16: models.m.hyperparameters.n_epochs: must be 'auto' or an integer >= 1 and"
        " <= 50",
        f"{path}:18: models.m.hyperparameters.learning_rate_multiplier: must be 'auto' or a number"
        " > 0",
        f"{path}:19: models.m.metadata.team: input should be a valid string (YAML reads it as int:"
        " put it in quotes)",
        f"{path}:20: models.m.max_cost_usd: input should be a valid number",
    ]


def test_duplicate_keys_name_both_lines(repo: Path) -> None:
    path = put(
        repo,
        "a.yaml",
        BASE
        + """
    models:
      m:
        base: gpt-4o
        training: train
        base: gpt-4o-mini
      m:
        base: gpt-4o
        training: train
    """,
    )
    assert problems(repo) == [
        f"{path}:13: duplicate key 'base' (first defined at line 11)",
        f"{path}:14: duplicate key 'm' (first defined at line 10)",
    ]


def test_an_entry_hidden_by_a_duplicate_key_is_still_checked(repo: Path) -> None:
    path = put(
        repo,
        "a.yaml",
        BASE
        + """
    models:
      m:
        base: gpt-4o
        training: train
        sufix: x
      m:
        base: gpt-4o
        training: train
    models:
      n: {<<: {base: gpt-4o, training: train, seed: -1}, training: val, seed: 1}
      o: {base: gpt-4o, training: train, seed: -1}
    """,
    )
    # The merged `seed: -1` and `training: train` of n are overridden on purpose: no problem.
    assert problems(repo) == [
        f"{path}:13: models.m: unknown key 'sufix' (did you mean 'suffix'?)",
        f"{path}:14: duplicate key 'm' (first defined at line 10)",
        f"{path}:17: duplicate key 'models' (first defined at line 9)",
        f"{path}:19: models.o.seed: input should be greater than or equal to 0",
    ]
    loaded, _ = spec.collect_specs(repo / "specs")
    assert [(m.name, m.training, m.seed) for m in loaded.models] == [("n", "val", 1)]


def test_paths_must_stay_inside_the_repository(repo: Path) -> None:
    path = put(
        repo,
        "a.yaml",
        """
    datasets:
      outside:
        path: ../../elsewhere.jsonl
      absolute:
        path: /etc/hostname
      missing:
        path: ../data/nope.jsonl
      fine:
        path: ../data/train.jsonl
    """,
    )
    assert problems(repo) == [
        f"{path}:3: datasets.outside.path: '../../elsewhere.jsonl' leaves the repository root "
        f"{repo}",
        f"{path}:5: datasets.absolute.path: must be relative to the spec file",
        f"{path}:7: datasets.missing.path: no such file: {repo}/data/nope.jsonl",
    ]


def test_symlink_out_of_the_repository_is_refused(repo: Path, tmp_path_factory: Any) -> None:
    outside = write_chat(tmp_path_factory.mktemp("outside") / "secret.jsonl")
    (repo / "data" / "link.jsonl").symlink_to(outside)
    path = put(repo, "a.yaml", "datasets:\n  d:\n    path: ../data/link.jsonl\n")
    assert problems(repo) == [
        f"{path}:3: datasets.d.path: '../data/link.jsonl' leaves the repository root {repo}"
    ]


def test_paths_the_os_cannot_resolve_are_problems_not_tracebacks(repo: Path) -> None:
    (repo / "data" / "loop1").symlink_to("loop2")
    (repo / "data" / "loop2").symlink_to("loop1")
    path = put(
        repo,
        "a.yaml",
        f"""
    datasets:
      nul: {{path: "a\\0b.jsonl"}}
      long: {{path: {"a" * 300}.jsonl}}
      loop: {{path: ../data/loop1}}
    """,
    )
    found = problems(repo)
    assert found[:2] == [
        f"{path}:2: datasets.nul.path: unusable path: embedded null byte",
        f"{path}:3: datasets.long.path: unusable path: File name too long",
    ]
    # Python 3.11 raises on the loop ("unusable path: Symlink loop ..."); later ones resolve it.
    assert len(found) == 3 and found[2].startswith(f"{path}:4: datasets.loop.path: ")


def test_outside_git_the_root_is_the_spec_directory_parent(tmp_path: Path) -> None:
    write_chat(tmp_path / "proj" / "data" / "t.jsonl")
    write_chat(tmp_path / "other.jsonl")
    specs = tmp_path / "proj" / "specs"
    specs.mkdir()
    (specs / "a.yaml").write_text(
        "datasets:\n  ok: {path: ../data/t.jsonl}\n  out: {path: ../../other.jsonl}\n"
    )
    loaded, found = spec.collect_specs(specs)
    assert loaded.root == tmp_path / "proj"
    assert [d.name for d in loaded.datasets] == ["ok"]
    assert [(d.line, d.code) for d in found] == [(3, "path_outside_repo")]


def test_cycles_are_reported_on_each_member_and_dependents_stay_quiet(repo: Path) -> None:
    path = put(
        repo,
        "a.yaml",
        BASE
        + """
    models:
      a:
        base: b
        training: train
      b:
        base: a
        training: train
      self:
        base: self
        training: train
      child:
        base: a
        training: train
      ok:
        base: gpt-4o
        training: train
    """,
    )
    assert problems(repo) == [
        f"{path}:11: models.a.base: models form a cycle: a -> b -> a",
        f"{path}:14: models.b.base: models form a cycle: b -> a -> b",
        f"{path}:17: models.self.base: models form a cycle: self -> self",
    ]
    loaded, _ = spec.collect_specs(repo / "specs")
    assert [m.name for m in loaded.models] == ["ok"]


def test_unknown_keys_get_did_you_mean_hints(repo: Path) -> None:
    path = put(
        repo,
        "a.yaml",
        BASE
        + """
    model:
      m: {}
    models:
      m:
        base: gpt-4o
        trainng: train
        hyperparameters:
          n_epoch: 2
    evals:
      e:
        dataset: val
        checks: [exact_match]
        zzz: 1
    """,
    )
    assert problems(repo) == [
        f"{path}:9: unknown key 'model' (did you mean 'models'?)",
        f"{path}:12: models.m: missing required key 'training'",
        f"{path}:14: models.m: unknown key 'trainng' (did you mean 'training'?)",
        f"{path}:16: models.m.hyperparameters: unknown key 'n_epoch' (did you mean 'n_epochs'?)",
        f"{path}:21: evals.e: unknown key 'zzz'",
    ]


def test_undefined_references_are_all_reported(repo: Path) -> None:
    path = put(
        repo,
        "a.yaml",
        BASE
        + """
    models:
      m:
        base: gpt-4o
        training: trian
        validation: nope
        provider: azure
        eval: qualty
      n:
        base: gpt-4o
        training: train
        sufix: typo-and-references-both-reported
        provider: labb
    evals:
      quality:
        dataset: held-out
        checks: [exact_match]
    """,
    )
    assert problems(repo) == [
        f"{path}:12: models.m.training: no dataset named 'trian' (did you mean 'train'?)",
        f"{path}:13: models.m.validation: no dataset named 'nope'",
        f"{path}:14: models.m.provider: no provider named 'azure'",
        f"{path}:15: models.m.eval: no eval named 'qualty' (did you mean 'quality'?)",
        f"{path}:19: models.n: unknown key 'sufix' (did you mean 'suffix'?)",
        f"{path}:20: models.n.provider: no provider named 'labb'",
        f"{path}:23: evals.quality.dataset: no dataset named 'held-out'",
    ]


def test_name_defined_in_two_files_names_both(repo: Path) -> None:
    first = put(repo, "a.yaml", BASE)
    second = put(
        repo,
        "b.yaml",
        """
    base_models:
      train: gpt-4o
    datasets:
      val:
        path: ../data/val.jsonl
    models:
      mini:
        base: gpt-4o
        training: train
    """,
    )
    put(repo, "c.yaml", "base_models:\n  mini: gpt-4o-mini\n")
    assert problems(repo) == [
        f"{second}:4: dataset 'val' is defined twice ({first}:4 and {second}:4)",
        f"{repo}/specs/c.yaml:2: 'mini' is both a model and a base model alias: `base:` could not "
        f"tell them apart ({second}:7 and {repo}/specs/c.yaml:2)",
    ]
    with pytest.raises(FtopsError) as caught:
        spec.load_specs(repo / "specs")
    assert len(caught.value.diagnostics) == 2
    assert str(caught.value).startswith(f"{second}:4: dataset 'val' is defined twice")
    assert "and 1 more: run `ftops validate`" in str(caught.value)


def test_methods_hyperparameters_formats_and_graders(repo: Path) -> None:
    path = put(
        repo,
        "a.yaml",
        BASE
        + """
    models:
      sft-with-beta:
        base: gpt-4o
        training: train
        hyperparameters: {beta: 0.1, reasoning_effort: low}
      dpo-on-chat:
        base: gpt-4o
        training: train
        validation: prefs
        method: dpo
      dpo-on-old-model:
        base: gpt-3.5-turbo-0125
        training: prefs
        method: dpo
      rft:
        base: o4-mini
        training: train
        method: reinforcement
      sft-with-grader:
        base: gpt-4o
        training: train
        grader: {type: string_check}
      same-twice:
        base: gpt-4o
        training: train
        validation: train
    """,
    )
    assert problems(repo) == [
        f"{path}:13: models.sft-with-beta.hyperparameters.beta: applies only to method dpo, "
        "not supervised",
        f"{path}:13: models.sft-with-beta.hyperparameters.reasoning_effort: applies only to "
        "method reinforcement, not supervised",
        f"{path}:16: models.dpo-on-chat.training: dataset 'train' has format chat, but method dpo "
        "needs format preference",
        f"{path}:22: models.dpo-on-old-model.method: gpt-3.5-turbo-0125 does not support method "
        "dpo (supports: supervised)",
        f"{path}:25: models.rft.training: dataset 'train' has format chat, but method "
        "reinforcement needs format reinforcement",
        f"{path}:26: models.rft.method: method reinforcement needs a `grader:`",
        f"{path}:30: models.sft-with-grader.grader: applies only to method reinforcement",
        f"{path}:34: models.same-twice.validation: must be a different dataset than training",
    ]


def test_reinforcement_with_grader_and_its_hyperparameters(repo: Path) -> None:
    rows = [
        json.dumps({"messages": [{"role": "user", "content": f"q{i}"}], "answer": str(i)})
        for i in range(10)
    ]
    (repo / "data" / "rft.jsonl").write_text("\n".join(rows) + "\n")
    put(
        repo,
        "a.yaml",
        """
    datasets:
      rft: {path: ../data/rft.jsonl, format: reinforcement}
    models:
      r:
        base: o4-mini-2025-04-16
        training: rft
        method: reinforcement
        grader: {type: string_check, name: g, input: "{{sample.output_text}}",
                 reference: "{{item.answer}}", operation: eq}
        hyperparameters: {reasoning_effort: low, compute_multiplier: 2, eval_interval: auto}
    """,
    )
    (model,) = spec.load_specs(repo / "specs").models
    assert model.grader == {
        "type": "string_check",
        "name": "g",
        "input": "{{sample.output_text}}",
        "reference": "{{item.answer}}",
        "operation": "eq",
    }
    assert model.hyperparameters == {
        "reasoning_effort": "low",
        "compute_multiplier": 2,
        "eval_interval": "auto",
    }
    assert model.training_usd_per_1m is None  # billed per hour, not per token


def test_promotion_evals_providers_metadata_and_names(repo: Path) -> None:
    path = put(
        repo,
        "a.yaml",
        BASE
        + """
    models:
      a:
        base: gpt-4o
        training: train
        promote: prod
        metadata: {ftops_model: x}
      b:
        base: gpt-4o
        training: train
        eval: q
        promote: prod
      c:
        base: gpt-4o
        training: train
        eval: q
        promote: prod
    evals:
      q:
        dataset: prefs
        checks: [exact_match]
      bad name:
        dataset: val
        checks: []
    providers:
      az:
        type: azure
        base_url: https://x.example
      key-in-spec:
        api_key_env: sk-proj-SECRET123
    """,
    )
    found = problems(repo)
    assert found == [
        f"{path}:13: models.a.promote: needs an `eval:`: promotion happens only when it passes",
        f"{path}:14: models.a.metadata.ftops_model: keys starting with 'ftops_' are reserved for "
        "ftops",
        f"{path}:24: models.c.promote: alias 'prod' is already promoted by model 'b' ({path}:15)",
        f"{path}:27: evals.q.dataset: dataset 'prefs' has format preference; evals need a chat "
        "dataset",
        f"{path}:29: evals: invalid name 'bad name' (use letters, digits, '.', '_' and '-', at "
        "most 64 characters, starting with a letter or digit)",
        f"{path}:33: providers.az: missing required key 'endpoint' (type azure)",
        f"{path}:35: providers.az.base_url: not used by providers of type azure",
        f"{path}:37: providers.key-in-spec.api_key_env: string should match pattern "
        "'^[A-Za-z_][A-Za-z0-9_]*$'",
    ]
    assert not any("SECRET" in line for line in found)


def test_not_a_mapping_and_empty_files(repo: Path) -> None:
    put(repo, "empty.yaml", "# nothing yet\n")
    lst = put(repo, "list.yaml", "- a\n- b\n")
    sec = put(repo, "section.yaml", "datasets: [a]\nmodels:\n")
    found = problems(repo)
    assert found == [
        f"{lst}:1: a spec file must be a mapping with keys datasets, base_models, models, evals, "
        "providers, pricing",
        f"{sec}:1: datasets: must be a mapping of names to entries",
    ]


def test_missing_spec_directory_and_empty_directory(tmp_path: Path) -> None:
    _, found = spec.collect_specs(tmp_path / "nope")
    assert [str(d) for d in found] == [f"{tmp_path}/nope: no such file or directory"]
    _, found = spec.collect_specs(tmp_path)
    assert [str(d) for d in found] == [f"{tmp_path}: no *.yaml or *.yml spec files found"]


def test_relative_spec_paths_are_shown_as_given(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(repo, "a.yaml", "datasets:\n  d:\n    path: ../data/gone.jsonl\n")
    monkeypatch.chdir(repo)
    _, found = spec.collect_specs(Path("specs"))
    assert [str(d) for d in found] == [
        "specs/a.yaml:3: datasets.d.path: no such file: data/gone.jsonl"
    ]


@pytest.mark.parametrize("name", ["basic.yaml", "chained-dpo.yaml", "migration.yaml",
                                  "providers-evals.yaml"])
def test_libyaml_reads_specs_as_the_pure_parser_does(name: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Specs are parsed by libyaml where PyYAML has it; the result, lines included, is the
    pure parser's."""
    from ftops.spec import reader

    assert reader._FastLoader is getattr(yaml, "CSafeLoader", reader._Loader)
    path = Path(__file__).parent.parent / "examples" / "specs" / name
    fast = reader._read_file(path, name, reader._Problems())
    monkeypatch.setattr(reader, "_FastLoader", reader._Loader)
    pure = reader._read_file(path, name, reader._Problems())
    assert [(e.section, e.name, e.line, e.value) for e in fast] == \
        [(e.section, e.name, e.line, e.value) for e in pure]
    assert fast
