from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from typing import Any

import pytest

from ftops.errors import Diagnostic, FtopsError
from ftops.identity import (
    dataset_filename,
    fingerprints,
    job_metadata,
    model_fingerprint,
    sha256_from_filename,
)
from ftops.plan import ActionType, Change, Kind, Plan
from ftops.plandiff import differences
from ftops.planner import plan
from ftops.state import (
    Actual,
    Desired,
    DesiredDataset,
    Job,
    JobError,
    RemoteFile,
    RemoteModel,
    ResolvedModel,
    Source,
)

TODAY = dt.date(2026, 11, 25)
FAR_PAST = dt.date(2026, 6, 1)  # more than 90 days before every dated fact in the catalog
REPO = "github.com/acme/assistants"
MINI = "gpt-4o-mini-2024-07-18"
NANO = "gpt-4.1-nano-2025-04-14"  # no shutdown date in the catalog
TRAIN = hashlib.sha256(b"train").hexdigest()
VAL = hashlib.sha256(b"val").hexdigest()
OTHER = hashlib.sha256(b"other").hexdigest()


def datasets(**overrides: DesiredDataset) -> tuple[DesiredDataset, ...]:
    base = {
        "train": DesiredDataset("train", "data/train.jsonl", TRAIN, 1200),
        "val": DesiredDataset("val", "data/val.jsonl", VAL, 300),
        "other": DesiredDataset("other", "data/other.jsonl", OTHER, 700),
    }
    base.update(overrides)
    return tuple(base.values())


def model(name: str = "bot", **fields: Any) -> ResolvedModel:
    fields.setdefault("training", "train")
    fields.setdefault("suffix", name)  # models differ by default, as they do in real specs
    if "parent" not in fields:
        fields.setdefault("base", NANO)
    base = fields.pop("base", None)
    source = fields.pop("source", None)
    where = {"file": source.path, "line": source.line} if source else {}
    return ResolvedModel(name=name, base_model=base or "", **where, **fields)


def desired(*models: ResolvedModel, **kwargs: Any) -> Desired:
    kwargs.setdefault("datasets", datasets())
    return Desired(models=models, repo=REPO, commit="c0ffee" * 6 + "c0ff", **kwargs)


def file(file_id: str, sha: str, size: int, *, created: int = 1, **kw: Any) -> RemoteFile:
    kw.setdefault("purpose", "fine-tune")
    return RemoteFile(file_id, dataset_filename(sha), size, created_at=created, **kw)


UPLOADED = (file("file-train", TRAIN, 1200), file("file-val", VAL, 300))


def kept(p: Plan) -> list[Diagnostic]:
    """The plan's warnings but the count of what --prune would show (file-val, unused here)."""
    return [w for w in p.warnings if w.code != "undeclared"]


def job(job_id: str, status: str, name: str, fingerprint: str, **kw: Any) -> Job:
    meta = {"ftops_model": name, "ftops_fingerprint": fingerprint, "ftops_repo": REPO}
    meta.update(kw.pop("labels", {}))
    kw.setdefault("model", NANO)
    kw.setdefault("training_file", "file-train")
    kw.setdefault("created_at", 100)
    return Job(job_id, status, metadata=meta, **kw)


def fp(d: Desired, name: str = "bot") -> str:
    return fingerprints(d)[name]


def run(d: Desired, actual: Actual, today: dt.date = FAR_PAST, **kw: Any) -> Plan:
    return plan(d, actual, today=today, **kw)


def by_address(p: Plan) -> dict[str, Any]:
    return {a.address: a for a in p.actions}


# -- identity ---------------------------------------------------------------------------------


def test_dataset_filename_round_trip() -> None:
    assert dataset_filename(TRAIN) == f"ftops-{TRAIN}.jsonl"
    assert sha256_from_filename(dataset_filename(TRAIN)) == TRAIN
    assert sha256_from_filename("train.jsonl") is None
    assert sha256_from_filename(f"ftops-{TRAIN}.jsonl.bak") is None
    assert sha256_from_filename(f"ftops-{TRAIN.upper()}.jsonl") is None


def test_fingerprint_is_pinned_and_ignores_labels_auto_and_float_spelling() -> None:
    plain = model(hyperparameters={"n_epochs": 3, "learning_rate_multiplier": 2.0}, suffix=None)
    d = desired(plain)
    # Pinned: changing the canonical form silently would retrain every model of every user.
    assert fp(d) == model_fingerprint(
        base=NANO, parent_fingerprint=None, training_sha256=TRAIN, validation_sha256=None,
        method="supervised", hyperparameters={"n_epochs": 3, "learning_rate_multiplier": 2},
        suffix=None, seed=None)
    canonical = (
        '{"base":"gpt-4.1-nano-2025-04-14","fingerprint_version":1,'
        '"hyperparameters":{"learning_rate_multiplier":2,"n_epochs":3},"method":"supervised",'
        f'"parent_fingerprint":null,"seed":null,"suffix":null,"training":"{TRAIN}",'
        '"validation":null}'
    )
    assert fp(d) == hashlib.sha256(canonical.encode()).hexdigest()
    assert fp(d) == "7f6936e904862b3e43c5d27232a416dcaed544ab670f6feecb500785998287ef"
    same = model(hyperparameters={"n_epochs": 3, "learning_rate_multiplier": 2,
                                  "batch_size": "auto"}, metadata={"team": "support"},
                 suffix=None)
    assert fp(desired(same)) == fp(d)
    renamed = DesiredDataset("renamed", "elsewhere/t.jsonl", TRAIN, 1200)
    assert fp(desired(dataclasses.replace(plain, training="renamed"),
                      datasets=(renamed,))) == fp(d)
    for change in ({"seed": 1}, {"suffix": "x"}, {"method": "dpo"}, {"validation": "val"},
                   {"base_model": MINI}, {"hyperparameters": {"n_epochs": 4}}):
        assert fp(desired(dataclasses.replace(plain, **change))) != fp(d), change


def test_child_fingerprint_follows_parent_fingerprint() -> None:
    parent, child = model("parent"), model("child", parent="parent")
    before = fingerprints(desired(parent, child))
    after = fingerprints(desired(dataclasses.replace(parent, seed=7), child))
    assert before["parent"] != after["parent"]
    assert before["child"] != after["child"]
    # The child's own base field is ignored when it chains on a parent.
    chained = fingerprints(desired(parent, dataclasses.replace(child, base_model="ignored")))
    assert chained["child"] == before["child"]


def test_bad_references_raise_with_file_and_line() -> None:
    where = Source("specs/models.yaml", 12)
    with pytest.raises(FtopsError) as err:
        fingerprints(desired(model(training="missing", source=where)))
    assert str(err.value) == "specs/models.yaml:12: model bot: dataset 'missing' is not declared"
    with pytest.raises(FtopsError, match="cycle: a -> b -> a"):
        fingerprints(desired(model("a", parent="b"), model("b", parent="a")))
    with pytest.raises(FtopsError, match="base model 'ghost' is not declared"):
        fingerprints(desired(model("a", parent="ghost")))


def test_job_metadata_keys_and_limits() -> None:
    m = model(metadata={"team": "support"})
    meta = job_metadata(m, fingerprint="f" * 64, repo=REPO, commit="abc")
    assert meta == {"ftops_commit": "abc", "ftops_fingerprint": "f" * 64, "ftops_model": "bot",
                    "ftops_repo": REPO, "team": "support"}
    assert list(meta) == sorted(meta)
    too_many = model(metadata={f"k{i:02d}": "v" for i in range(13)}, source=Source("s.yaml", 3))
    with pytest.raises(FtopsError) as err:
        job_metadata(too_many, fingerprint="f" * 64, repo=REPO, commit="abc")
    assert str(err.value) == (
        "s.yaml:3: model bot: job metadata: 13 labels but at most 12 fit "
        "(OpenAI allows 16 metadata keys, ftops uses 4)")
    bad = model(metadata={"ftops_model": "x", "k" * 65: "v", "long": "v" * 513})
    with pytest.raises(FtopsError) as err:
        job_metadata(bad, fingerprint="f" * 64, repo="", commit=None)
    message = str(err.value)
    assert "reserved: ftops_model" in message
    assert "is 65 characters (at most 64)" in message
    assert "metadata 'long' is 513 characters (at most 512)" in message


# -- datasets ---------------------------------------------------------------------------------


def test_fresh_account_uploads_then_trains() -> None:
    d = desired(model(validation="val", estimated_cost_usd=1.25))
    p = run(d, Actual())
    assert [(a.action, a.address) for a in p.actions] == [
        (ActionType.UPLOAD, "dataset.train"),
        (ActionType.UPLOAD, "dataset.val"),
        (ActionType.TRAIN, "model.bot"),
    ]
    upload = p.actions[0].upload
    assert upload is not None
    assert (upload.path, upload.sha256, upload.size, upload.filename, upload.datasets) == (
        "data/train.jsonl", TRAIN, 1200, f"ftops-{TRAIN}.jsonl", ("train",))
    train = p.actions[2]
    assert train.depends_on == ("dataset.train", "dataset.val")
    assert train.training is not None
    assert train.training.fingerprint == fp(d)
    assert train.training.base == NANO
    assert (train.training.training.file_id, train.training.validation.file_id) == (None, None)
    assert train.training.metadata["ftops_model"] == "bot"
    assert p.summary == {"upload": 2, "train": 1, "replace": 0, "retry": 0, "retrain": 0,
                         "blocked": 0, "pending": 0, "ok": 0, "retired": 0, "cancel": 0,
                         "delete": 0, "deploy": 0, "redeploy": 0}
    assert p.estimated_cost_usd == 1.25
    assert p.has_changes
    assert p.warnings == () and p.errors == ()


def test_uploaded_file_is_recognised_by_name_size_and_purpose_only() -> None:
    d = desired(model())
    assert run(d, Actual(files=UPLOADED)).summary["upload"] == 0
    train = run(d, Actual(files=UPLOADED)).actions[0]
    assert train.training.training.file_id == "file-train"
    assert train.depends_on == ()
    for wrong in (file("file-x", TRAIN, 1199),                        # truncated upload
                  file("file-x", TRAIN, 1200, purpose="assistants"),
                  RemoteFile("file-x", "train.jsonl", 1200, "fine-tune", 1)):
        assert run(d, Actual(files=(wrong,))).summary["upload"] == 1


def test_renamed_or_shared_dataset_is_uploaded_once() -> None:
    twin = DesiredDataset("twin", "data/copy.jsonl", TRAIN, 1200)
    d = desired(model("a"), model("b", training="twin"),
                datasets=(*datasets(), twin))
    p = run(d, Actual())
    uploads = [a for a in p.actions if a.action == ActionType.UPLOAD]
    assert len(uploads) == 1
    assert uploads[0].upload.datasets == ("train", "twin")
    assert by_address(p)["model.b"].depends_on == ("dataset.train",)
    # Already uploaded under another dataset name: nothing to upload.
    assert run(d, Actual(files=UPLOADED)).summary["upload"] == 0


def test_duplicate_remote_files_pick_the_oldest() -> None:
    files = (file("file-new", TRAIN, 1200, created=9), file("file-old", TRAIN, 1200, created=2))
    train = run(desired(model()), Actual(files=files)).actions[0]
    assert train.training.training.file_id == "file-old"


def test_no_upload_for_a_model_that_is_already_trained() -> None:
    d = desired(model())
    done = job("ftjob-1", "succeeded", "bot", fp(d), fine_tuned_model="ft:x:acme::1")
    assert [a.action for a in run(d, Actual(jobs=(done,))).actions] == [ActionType.OK]


# -- model states -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["validating_files", "queued", "running", "paused"])
def test_live_job_is_pending(status: str) -> None:
    d = desired(model())
    p = run(d, Actual(files=UPLOADED, jobs=(job("ftjob-1", status, "bot", fp(d)),)))
    (action,) = p.actions
    assert (action.action, action.job_id, action.display.status) == (
        ActionType.PENDING, "ftjob-1", status)
    assert action.training is None
    assert not p.has_changes


def test_succeeded_job_is_ok_with_model_id() -> None:
    d = desired(model())
    done = job("ftjob-1", "succeeded", "bot", fp(d), fine_tuned_model="ft:nano:acme::abc")
    (action,) = run(d, Actual(files=UPLOADED, jobs=(done,))).actions
    assert (action.action, action.display.model_id, action.changes) == (
        ActionType.OK, "ft:nano:acme::abc", ())


def test_failed_job_is_retried_with_the_api_error_and_no_key_leaks() -> None:
    d = desired(model(estimated_cost_usd=2.0))
    failed = job("ftjob-1", "failed", "bot", fp(d), error=JobError(
        "invalid_training_file", "line 3: bad key sk-proj-abcdef123456 in text", "training_file"))
    p = run(d, Actual(files=UPLOADED, jobs=(failed,)))
    (action,) = p.actions
    assert action.action == ActionType.RETRY
    assert action.job_id == "ftjob-1"
    assert action.display.error == "invalid_training_file: line 3: bad key sk-*** in text"
    assert action.training is not None and action.training.fingerprint == fp(d)
    assert p.estimated_cost_usd == 2.0


def test_only_cancelled_jobs_means_train() -> None:
    d = desired(model())
    cancelled = job("ftjob-1", "cancelled", "bot", fp(d))
    assert run(d, Actual(files=UPLOADED, jobs=(cancelled,))).actions[0].action == ActionType.TRAIN
    # Cancelled jobs of an older version do not make it a replace either.
    old = job("ftjob-0", "cancelled", "bot", "0" * 64)
    assert run(d, Actual(files=UPLOADED, jobs=(old,))).actions[0].action == ActionType.TRAIN


def test_latest_job_for_the_fingerprint_decides() -> None:
    d = desired(model())
    first = job("ftjob-1", "failed", "bot", fp(d), created_at=1)
    second = job("ftjob-2", "succeeded", "bot", fp(d), created_at=2, fine_tuned_model="ft:a")
    third = job("ftjob-3", "cancelled", "bot", fp(d), created_at=3)
    (action,) = run(d, Actual(files=UPLOADED, jobs=(third, first, second))).actions
    assert (action.action, action.job_id) == (ActionType.OK, "ftjob-2")


def test_replace_shows_field_level_changes() -> None:
    old = desired(model(hyperparameters={"n_epochs": 2}, suffix="bot", seed=1))
    new = desired(model(training="other", validation="val", suffix="bot2", seed=1,
                        hyperparameters={"n_epochs": 3, "batch_size": "auto"},
                        metadata={"team": "support"}, estimated_cost_usd=4.0))
    previous = job("ftjob-1", "succeeded", "bot", fp(old), seed=1,
                   hyperparameters={"n_epochs": 2, "batch_size": 8,
                                    "learning_rate_multiplier": 1.8},
                   fine_tuned_model=f"ft:{NANO}:acme:bot:abc123", labels={"team": "ml"})
    p = run(new, Actual(files=UPLOADED, jobs=(previous,)))
    replace = by_address(p)["model.bot"]
    assert replace.action == ActionType.REPLACE
    assert replace.job_id == "ftjob-1"
    assert replace.display.note == "replaces job ftjob-1"
    assert replace.changes == (
        Change("hyperparameters.n_epochs", 2, 3),
        Change("metadata.team", "ml", "support"),
        Change("suffix", "bot", "bot2"),
        Change("training", TRAIN, OTHER),
        Change("validation", None, VAL),
    )
    assert replace.training.training.file_id is None
    assert replace.training.validation.file_id == "file-val"
    assert replace.depends_on == ("dataset.other",)
    assert p.summary["replace"] == 1 and p.summary["upload"] == 1


def test_replace_of_an_unfinished_job_falls_back_to_the_fingerprint() -> None:
    # Seed removed (left to the API) and suffix unknown while queued: no field can show it.
    old = desired(model(seed=5))
    new = desired(model())
    previous = job("ftjob-1", "queued", "bot", fp(old), seed=5)
    replace = by_address(run(new, Actual(files=UPLOADED, jobs=(previous,))))["model.bot"]
    assert replace.action == ActionType.REPLACE
    assert replace.changes == (Change("fingerprint", fp(old), fp(new)),)


def test_replace_recovers_unknown_files_as_ids() -> None:
    new = desired(model())
    previous = job("ftjob-1", "succeeded", "bot", "0" * 64, training_file="file-gone")
    replace = by_address(run(new, Actual(files=UPLOADED, jobs=(previous,))))["model.bot"]
    assert replace.changes == (Change("training", "file-gone", TRAIN),)


def test_metadata_only_change_is_not_a_retrain() -> None:
    old = desired(model(metadata={"team": "ml"}))
    new = desired(model(metadata={"team": "support", "tier": "gold"}))
    assert fp(old) == fp(new)
    done = job("ftjob-1", "succeeded", "bot", fp(old), labels={"team": "ml"},
               fine_tuned_model="ft:x")
    p = run(new, Actual(files=UPLOADED, jobs=(done,)))
    (action,) = p.actions
    assert action.action == ActionType.OK
    assert action.changes == (Change("metadata.team", "ml", "support"),
                              Change("metadata.tier", None, "gold"))
    assert "no retrain" in action.display.note
    assert not p.has_changes


def test_reverting_a_change_reuses_the_earlier_job() -> None:
    first, second = desired(model()), desired(model(seed=3))
    jobs = (job("ftjob-1", "succeeded", "bot", fp(first), created_at=1, fine_tuned_model="ft:1"),
            job("ftjob-2", "succeeded", "bot", fp(second), created_at=2, fine_tuned_model="ft:2"))
    (action,) = run(first, Actual(files=UPLOADED, jobs=jobs)).actions
    assert (action.action, action.display.model_id) == (ActionType.OK, "ft:1")


def test_renamed_model_keeps_its_job() -> None:
    old = desired(model("bot", suffix="s"))
    new = desired(model("assistant", suffix="s"))
    done = job("ftjob-1", "succeeded", "bot", fp(old), fine_tuned_model="ft:s")
    p = run(new, Actual(files=UPLOADED[:1], jobs=(done,), models=(RemoteModel("ft:s"),)),
            prune=True, allow_delete_models=True)
    (action,) = p.actions
    assert (action.action, action.address, action.display.model_id) == (
        ActionType.OK, "model.assistant", "ft:s")
    assert action.display.note == "trained as model bot"


def test_superseded_live_job_is_warned_about() -> None:
    new = desired(model(seed=3))
    running = job("ftjob-1", "running", "bot", "0" * 64)
    p = run(new, Actual(files=UPLOADED, jobs=(running,)))
    assert p.actions[0].action == ActionType.REPLACE
    assert [(w.code, w.subject) for w in kept(p)] == [("superseded_job", "model.bot")]


def test_foreign_jobs_are_never_looked_at() -> None:
    d = desired(model())
    no_meta = Job("ftjob-9", "running", NANO, "file-train", 1)
    other_repo = dataclasses.replace(job("ftjob-8", "succeeded", "bot", fp(d)),
                                     metadata={"ftops_model": "bot", "ftops_fingerprint": fp(d),
                                               "ftops_repo": "github.com/else/where"})
    p = run(d, Actual(files=UPLOADED[:1], jobs=(no_meta, other_repo)), prune=True,
            allow_delete_models=True)
    assert [a.action for a in p.actions] == [ActionType.TRAIN]
    assert p.inputs.jobs == {}


# -- chained models ---------------------------------------------------------------------------


def test_child_of_untrained_parent_is_blocked_and_ordered_after_it() -> None:
    d = desired(model("child", parent="parent", estimated_cost_usd=1.0),
                model("parent", estimated_cost_usd=2.0))
    p = run(d, Actual(files=UPLOADED))
    assert [a.address for a in p.actions] == ["model.parent", "model.child"]
    child = p.actions[1]
    assert child.action == ActionType.BLOCKED
    assert child.depends_on == ("model.parent",)
    assert child.display.note == "waits for model.parent (train)"
    assert (child.training.base, child.training.parent) == (None, "parent")
    assert p.estimated_cost_usd == 3.0
    assert p.summary["blocked"] == 1


def test_child_trains_from_the_parents_fine_tuned_model() -> None:
    d = desired(model("parent"), model("child", parent="parent"))
    done = job("ftjob-1", "succeeded", "parent", fp(d, "parent"), fine_tuned_model="ft:P:1")
    p = run(d, Actual(files=UPLOADED, jobs=(done,)))
    child = by_address(p)["model.child"]
    assert child.action == ActionType.TRAIN
    assert child.training.base == "ft:P:1"
    assert child.depends_on == ()


@pytest.mark.parametrize(("parent_status", "why"), [("running", "pending"), ("failed", "retry")])
def test_child_waits_while_parent_is_pending_or_failed(parent_status: str, why: str) -> None:
    d = desired(model("parent"), model("child", parent="parent"))
    parent_job = job("ftjob-1", parent_status, "parent", fp(d, "parent"))
    child = by_address(run(d, Actual(files=UPLOADED, jobs=(parent_job,))))["model.child"]
    assert child.action == ActionType.BLOCKED
    assert child.display.note == f"waits for model.parent ({why})"


def test_retrained_parent_blocks_the_child_with_a_base_change() -> None:
    old = desired(model("parent"), model("child", parent="parent"))
    new = desired(model("parent", seed=9), model("child", parent="parent"))
    jobs = (job("ftjob-1", "succeeded", "parent", fp(old, "parent"), fine_tuned_model="ft:P:1"),
            job("ftjob-2", "succeeded", "child", fp(old, "child"), model="ft:P:1",
                fine_tuned_model=f"ft:{NANO}:acme:child:2"))
    p = run(new, Actual(files=UPLOADED, jobs=jobs))
    parent, child = by_address(p)["model.parent"], by_address(p)["model.child"]
    assert parent.action == ActionType.REPLACE
    assert child.action == ActionType.BLOCKED
    assert child.depends_on == ("model.parent",)
    assert child.changes == (Change("base", "ft:P:1", "(model.parent once trained)"),)
    assert child.display.note == "waits for model.parent (replace)"


def test_trained_child_stays_ok_whatever_the_parent_does_next() -> None:
    d = desired(model("parent"), model("child", parent="parent"))
    jobs = (job("ftjob-1", "succeeded", "parent", fp(d, "parent"), fine_tuned_model="ft:P"),
            job("ftjob-2", "succeeded", "child", fp(d, "child"), fine_tuned_model="ft:C"))
    p = run(d, Actual(files=UPLOADED, jobs=jobs))
    assert [a.action for a in p.actions] == [ActionType.OK, ActionType.OK]


def test_parent_on_another_provider_is_an_error() -> None:
    d = desired(model("parent"), model("child", parent="parent", provider="azure",
                                       provider_type="azure"))
    p = run(d, Actual())
    assert [(e.code, e.subject) for e in p.errors] == [("parent_provider", "model.child")]
    assert "model.child[azure]" in by_address(p)


# -- prune ------------------------------------------------------------------------------------


def test_prune_cancels_deletes_and_keeps_what_is_used() -> None:
    d = desired(model())
    stale = file("file-stale", OTHER, 700)
    in_use = file("file-busy", VAL, 300)
    not_ours = RemoteFile("file-user", "notes.jsonl", 5, "fine-tune", 1)
    jobs = (
        job("ftjob-1", "succeeded", "bot", fp(d), fine_tuned_model="ft:bot"),
        job("ftjob-2", "running", "gone", "1" * 64, training_file="file-busy"),
        job("ftjob-3", "succeeded", "gone", "2" * 64, fine_tuned_model="ft:gone"),
        job("ftjob-4", "succeeded", "renamed", fp(d), fine_tuned_model="ft:same-weights"),
        job("ftjob-5", "succeeded", "gone", "3" * 64, fine_tuned_model="ft:already-deleted"),
        Job("ftjob-6", "running", NANO, "file-user", 1),
    )
    models = (RemoteModel("ft:bot"), RemoteModel("ft:gone"), RemoteModel("ft:same-weights"))
    actual = Actual(files=(*UPLOADED, stale, in_use, not_ours), jobs=jobs, models=models)

    assert [a.action for a in run(d, actual).actions] == [ActionType.OK]

    p = run(d, actual, prune=True)
    assert [(a.action, a.address) for a in p.actions] == [
        (ActionType.OK, "model.bot"),
        (ActionType.CANCEL, "job.ftjob-2"),
        (ActionType.DELETE, "file.file-stale"),
        (ActionType.DELETE, "file.file-val"),  # declared but used by no model
    ]
    assert p.actions[1].display.note == "model gone is no longer declared"
    assert [(w.code, w.message) for w in p.warnings] == [(
        "models_kept", "kept 1 fine-tuned model(s) of models no longer declared (ft:gone); "
        "pass --allow-delete-models to delete them")]

    p = run(d, actual, prune=True, allow_delete_models=True)
    deleted = [a for a in p.actions if a.kind == Kind.FINE_TUNED_MODEL]
    assert [(a.name, a.job_id) for a in deleted] == [("ft:gone", "ftjob-3")]
    assert p.warnings == ()
    assert p.summary["delete"] == 3 and p.summary["cancel"] == 1


def test_prune_keeps_a_fine_tuned_model_used_as_a_literal_base() -> None:
    d = desired(model(base="ft:gone"))
    jobs = (job("ftjob-3", "succeeded", "gone", "2" * 64, fine_tuned_model="ft:gone"),)
    p = run(d, Actual(files=UPLOADED[:1], jobs=jobs, models=(RemoteModel("ft:gone"),)),
            prune=True, allow_delete_models=True)
    assert [a.kind for a in p.actions] == [Kind.MODEL]


# -- warnings and errors ----------------------------------------------------------------------


def test_shutdown_and_provider_deadline_warnings_with_a_fixed_today() -> None:
    d = desired(model(base=MINI))
    p = run(d, Actual(files=UPLOADED), today=TODAY)
    assert [str(w) for w in kept(p)] == [
        "provider.openai: 1 model on gpt-4o-mini-2024-07-18 stop answering on 2027-01-14 "
        "(in 50 days): bot — see `ftops migrate`"
        "; suggested successors: azure gpt-4o-mini-2024-07-18 (new jobs until 2027-03-31), "
        "nebius meta-llama/Llama-3.1-8B-Instruct, together Qwen/Qwen3-8B, "
        "fireworks accounts/fireworks/models/qwen3-8b",
        "provider.openai: stops accepting new fine-tuning jobs on 2027-01-06 (in 42 days)",
    ]
    assert p.errors == ()
    assert kept(run(d, Actual(files=UPLOADED), today=FAR_PAST)) == []


def test_warnings_come_one_line_per_provider_and_date_not_per_model() -> None:
    d = desired(*(model(name, base=MINI) for name in ("faq-bot", "sales-bot", "support-bot")))
    p = run(d, Actual(files=UPLOADED), today=TODAY)
    shutdown = [w for w in p.warnings if w.code == "base_shutdown"]
    assert [str(w) for w in shutdown] == [
        "provider.openai: 3 models on gpt-4o-mini-2024-07-18 stop answering on 2027-01-14 "
        "(in 50 days): faq-bot, sales-bot, support-bot — see `ftops migrate`"
        "; suggested successors: azure gpt-4o-mini-2024-07-18 (new jobs until 2027-03-31), "
        "nebius meta-llama/Llama-3.1-8B-Instruct, together Qwen/Qwen3-8B, "
        "fireworks accounts/fireworks/models/qwen3-8b"]
    assert [p.subject for p in shutdown[0].places] == [
        "model.faq-bot", "model.sales-bot", "model.support-bot"]
    assert len([w for w in p.warnings if w.code == "provider_closing"]) == 1


def test_remote_shutdown_date_warns_for_models_the_catalog_does_not_know() -> None:
    d = desired(model(base="acme-base-1", provider_type=None))
    remote = (RemoteModel("acme-base-1", shutdown_date=dt.date(2026, 11, 20)),)
    p = run(d, Actual(files=UPLOADED, models=remote), today=TODAY)
    assert [str(w) for w in kept(p)] == [
        "provider.openai: 1 model on acme-base-1 stopped answering on 2026-11-20 (5 days ago): "
        "bot — see `ftops migrate`"]


def test_each_provider_is_warned_by_its_own_dates() -> None:
    mini = "gpt-4o-mini-2024-07-18"
    d = desired(model("oa", base=mini),
                model("az", base=mini, provider="az", provider_type="azure"),
                model("lab", base=mini, provider="lab", provider_type=None))
    p = run(d, Actual(files=UPLOADED), today=TODAY)
    assert [w.subject for w in p.warnings if w.code == "base_shutdown"] == ["provider.openai"]
    # Other endpoints are warned by the date their own /models listing reports.
    retiring = (RemoteModel(mini, shutdown_date=dt.date(2026, 12, 1), provider="az"),)
    p = run(d, Actual(files=UPLOADED, models=retiring), today=TODAY)
    assert [w.subject for w in p.warnings if w.code == "base_shutdown"] == [
        "provider.az", "provider.openai"]
    # Azure trains these bases until its own date (the catalog's), not OpenAI's.
    spring = run(d, Actual(files=UPLOADED), today=dt.date(2027, 2, 1))
    assert [(e.subject, e.code) for e in spring.errors] == [("provider.openai", "provider_closed")]
    assert [str(w) for w in spring.warnings if w.subject == "provider.az"] == [
        "provider.az: stops accepting new fine-tuning jobs on gpt-4o-mini-2024-07-18 on "
        "2027-04-01 (in 59 days)"]
    summer = run(d, Actual(files=UPLOADED), today=dt.date(2027, 6, 1))
    assert [e.subject for e in summer.errors] == ["provider.az", "provider.openai"]
    assert summer.errors[0].message.startswith(
        "provider az accepts no new fine-tuning jobs on gpt-4o-mini-2024-07-18 since 2027-04-01")


def test_provider_past_its_last_day_turns_new_jobs_into_one_grouped_error() -> None:
    after = dt.date(2027, 1, 7)
    d = desired(model("new", source=Source("specs/models.yaml", 3)),
                model("child", parent="new", source=Source("specs/models.yaml", 9)),
                model("done"))
    done = job("ftjob-1", "succeeded", "done", fp(d, "done"), fine_tuned_model="ft:d")
    p = run(d, Actual(files=UPLOADED, jobs=(done,)), today=after)
    assert [(e.code, e.subject) for e in p.errors] == [("provider_closed", "provider.openai")]
    assert p.errors[0].message == (
        "provider openai accepts no new fine-tuning jobs since 2027-01-06: 2 models cannot be "
        "trained (child, new); see `ftops migrate` or choose another provider")
    assert [(pl.subject, pl.path, pl.line) for pl in p.errors[0].places] == [
        ("model.child", "specs/models.yaml", 9), ("model.new", "specs/models.yaml", 3)]
    assert p.errors[0].to_dict()["places"][0] == {
        "subject": "model.child", "path": "specs/models.yaml", "line": 9}
    # Models already trained stay ok until their base shuts down.
    assert {a.name: a.action for a in p.actions}["done"] == ActionType.OK
    assert "provider.openai" in {w.subject for w in p.warnings}
    # 2027-01-06 is the first day OpenAI refuses new jobs, not the last day it accepts them.
    on_the_day = run(d, Actual(files=UPLOADED, jobs=(done,)), today=dt.date(2027, 1, 6))
    assert [e.code for e in on_the_day.errors] == ["provider_closed"]
    assert run(d, Actual(files=UPLOADED, jobs=(done,)), today=dt.date(2027, 1, 5)).errors == ()
    # An endpoint the catalog knows nothing about is not held to OpenAI's dates.
    lab = desired(model("new", provider="lab", provider_type=None))
    assert run(lab, Actual(), today=after).errors == ()


def test_a_fine_tune_whose_base_shut_down_plans_as_retired() -> None:
    d = desired(model("done", base=MINI), model("child", parent="done"))
    done = job("ftjob-1", "succeeded", "done", fp(d, "done"),
               fine_tuned_model="ft:gpt-4o-mini-2024-07-18:acme:done:abc")
    before = run(d, Actual(files=UPLOADED, jobs=(done,)), today=dt.date(2027, 1, 13))
    assert {a.name: a.action for a in before.actions}["done"] == ActionType.OK
    p = run(d, Actual(files=UPLOADED, jobs=(done,)), today=dt.date(2027, 1, 14),
            aliases={"production": "done"})
    retired = next(a for a in p.actions if a.name == "done")
    assert retired.action == ActionType.RETIRED
    assert retired.display.retired_on == "2027-01-14"
    assert retired.display.model_id == "ft:gpt-4o-mini-2024-07-18:acme:done:abc"
    assert "stopped answering on 2027-01-14" in (retired.display.note or "")
    assert p.needs_attention and p.summary["retired"] == 1
    child = next(a for a in p.actions if a.name == "child")
    assert child.action == ActionType.BLOCKED
    assert [str(w) for w in p.warnings if w.code == "alias_retired"] == [
        "alias.production: points at model done, which stopped answering on 2027-01-14; "
        "promote a successor (see `ftops migrate`)"]
    # The saved plan keeps the day it was made for, and whether it was pinned.
    again = Plan.from_json(p.to_json())
    assert (again.today, again.actions) == ("2027-01-14", p.actions)


def test_budget_guard() -> None:
    over = desired(model(estimated_cost_usd=2.5, max_cost_usd=1))
    p = run(over, Actual(files=UPLOADED))
    # Worded as `ftops validate` words it (a model built in code has no file: its address).
    assert [str(e) for e in p.errors] == [
        "model.bot: models.bot.max_cost_usd: estimated cost $2.50 exceeds the budget $1.00"]
    # No price: the budget cannot be checked, an error as in validate (was a warning).
    unknown = run(desired(model(max_cost_usd=1)), Actual(files=UPLOADED))
    assert ([e.code for e in unknown.errors], kept(unknown)) == (["no_price"], [])
    within = desired(model(estimated_cost_usd=0.5, max_cost_usd=1))
    assert run(within, Actual(files=UPLOADED)).errors == ()


def test_metadata_violation_is_a_plan_error() -> None:
    d = desired(model(metadata={"ftops_model": "x"}, source=Source("specs/a.yaml", 4)))
    p = run(d, Actual(files=UPLOADED))
    assert [(e.code, e.subject) for e in p.errors] == [("job_metadata", "model.bot")]
    assert p.errors[0].message.startswith("specs/a.yaml:4: model bot: job metadata:")


# -- the plan document ------------------------------------------------------------------------


def _busy_plan() -> Plan:
    d = desired(model("bot", validation="val", estimated_cost_usd=1.5, metadata={"t": "1"}),
                model("child", parent="bot"), model("done"), model("running"))
    jobs = (job("ftjob-1", "succeeded", "done", fp(d, "done"), fine_tuned_model="ft:d"),
            job("ftjob-2", "running", "running", fp(d, "running")),
            job("ftjob-3", "failed", "gone", "4" * 64),
            job("ftjob-4", "running", "gone", "5" * 64))
    return run(d, Actual(files=UPLOADED, jobs=jobs), today=TODAY, prune=True)


def test_json_round_trip_is_exact_and_deterministic() -> None:
    p = _busy_plan()
    text = p.to_json()
    again = Plan.from_json(text)
    assert again == p
    assert again.to_json() == text
    assert _busy_plan().to_json() == text
    raw = json.loads(text)
    assert raw["format_version"] == 1
    assert raw["plan_hash"] == p.plan_hash
    assert raw["summary"]["cancel"] == 1
    assert raw["estimated_cost_usd"] == 1.5
    assert raw["inputs"]["jobs"] == {"openai/ftjob-1": "succeeded", "openai/ftjob-2": "live",
                                     "openai/ftjob-3": "failed", "openai/ftjob-4": "live"}
    assert raw["inputs"]["prune"] is True


def test_from_json_refuses_foreign_edited_and_future_plans() -> None:
    text = _busy_plan().to_json()
    with pytest.raises(FtopsError, match=r"plan\.json:1: not valid JSON"):
        Plan.from_json("{nope")
    with pytest.raises(FtopsError, match="format_version 2 is not supported"):
        Plan.from_json(text.replace('"format_version": 1', '"format_version": 2'))
    with pytest.raises(FtopsError, match="plan_hash does not match"):
        Plan.from_json(text.replace('"ftops_model": "bot"', '"ftops_model": "evil"'))
    with pytest.raises(FtopsError, match="malformed plan"):
        Plan.from_json('{"format_version": 1, "actions": [{}]}')


def test_plan_hash_covers_what_apply_does_and_nothing_else() -> None:
    d = desired(model("train-me"), model("done"))
    done = job("ftjob-1", "succeeded", "done", fp(d, "done"), fine_tuned_model="ft:d")
    base = run(d, Actual(files=UPLOADED, jobs=(done,)))
    # A new commit (provenance) does not invalidate an approval...
    moved = run(dataclasses.replace(d, commit="f" * 40), Actual(files=UPLOADED, jobs=(done,)))
    assert moved.plan_hash == base.plan_hash
    assert moved.actions != base.actions
    # ...nor does an ok model's job disappearing into pending elsewhere.
    other = run(d, Actual(files=UPLOADED, jobs=(dataclasses.replace(done, status="running"),)))
    assert other.plan_hash == base.plan_hash
    # Changing what would be trained does.
    changed = run(desired(model("train-me", seed=1), model("done")),
                  Actual(files=UPLOADED, jobs=(done,)))
    assert changed.plan_hash != base.plan_hash


def test_staleness_tracks_what_apply_would_do_not_progress() -> None:
    d = desired(model("bot"), model("other-bot", training="other"))
    queued = job("ftjob-1", "queued", "other-bot", fp(d, "other-bot"))
    saved = run(d, Actual(files=UPLOADED, jobs=(queued,)))
    running = dataclasses.replace(queued, status="running", trained_tokens=500)
    assert differences(saved, run(d, Actual(files=UPLOADED, jobs=(running,)))) == []

    # other-bot's job finishing (pending -> ok) and a file nobody needs change nothing apply
    # does; bot's new spec and the job someone started for its old one do, said in words.
    succeeded = dataclasses.replace(queued, status="succeeded", fine_tuned_model="ft:o")
    someone = job("ftjob-2", "queued", "bot", fp(d, "bot"))
    extra_file = file("file-o", OTHER, 700)
    now = run(desired(model("bot", seed=2), model("other-bot", training="other")),
              Actual(files=(*UPLOADED, extra_file), jobs=(succeeded, someone)))
    assert differences(saved, now) == [
        "model bot: the plan said train, the specs now say replace (job ftjob-2): "
        "seed unset → 2, job ftjob-2 appeared (running)",
    ]
    changed_data = desired(model("bot"), model("other-bot", training="other"),
                           datasets=datasets(other=DesiredDataset("other", "o", VAL, 300)))
    assert differences(saved, run(changed_data, Actual(files=UPLOADED, jobs=(queued,)))) == [
        "model other-bot: the plan said pending (job ftjob-1), the specs now say replace "
        "(job ftjob-1): training data other changed",
    ]
    assert differences(saved, run(d, Actual(files=UPLOADED, jobs=(queued,)), prune=True)) == [
        "file file-val: the plan said nothing to do, the account now says delete",
        "the plan was made with other prune options",
    ]
