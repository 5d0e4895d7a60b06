"""What the planner checks of a model that would start a job, so that a mistake is a plan error
at the spec's file:line before any request changes the account: its base is one the provider
can fine-tune, and its estimated cost fits ``max_cost_usd``. Pure: a resolved model and what the
account listed in, diagnostics out.

Which base models a provider can fine-tune is decided by what is known of it:

- OpenAI and Azure (and the emulator, which plays one of them: ``provider_type`` set): the
  catalog lists every base they fine-tune, so a base it does not know is refused, with a "did you
  mean" from it; where the provider's /models listing has entries, the base must also be one of
  them (a fine-tuned base that was deleted, a snapshot this account or region is not offered);
- any other endpoint (``provider_type`` None) may serve bases the catalog has never heard of: its
  listing alone decides, and without a listing nothing is refused, since nothing is known.
"""

from __future__ import annotations

from collections.abc import Iterable, Set

from ftops import catalog
from ftops.cost import format_usd
from ftops.errors import Diagnostic, did_you_mean
from ftops.state import Actual, Job, ResolvedModel


def base_problems(model: ResolvedModel, actual: Actual) -> list[Diagnostic]:
    """Why ``model``'s literal base cannot be fine-tuned where it trains; [] when it can (or
    when it chains on a parent, whose result it trains from)."""
    base = model.base
    if base is None:
        return []
    listed = {m.id for m in actual.models if m.provider == model.provider}
    where = f"models.{model.name}.base"
    if model.provider_type is None:
        if listed and base not in listed:
            return [_at(model, "base", "base_not_listed",
                        f"{where}: {base} is not in provider {model.provider}'s /models "
                        f"listing{did_you_mean(base, listed)}")]
        return []
    known = catalog.load()
    info = known.fine_tunable(model.provider_type, base)
    if info is None:
        choices = [name for m in known.models_of(model.provider_type)
                   for name in (m.id, *m.aliases)]
        if base in listed:
            message = (f"{where}: {base} is listed by provider {model.provider} but is not a "
                       f"base model it can fine-tune{did_you_mean(base, choices)}")
            return [_at(model, "base", "base_not_fine_tunable", message)]
        return [_at(model, "base", "unknown_base_model",
                    f"{where}: unknown base model '{base}'{did_you_mean(base, choices)}")]
    if listed and not _listed_as(base, info, listed):
        return [_at(model, "base", "base_not_listed",
                    f"{where}: {base} is not in provider {model.provider}'s /models listing")]
    return []


def _listed_as(base: str, info: catalog.ModelInfo, listed: Set[str]) -> bool:
    """A fine-tuned base must be listed itself; a base snapshot by its id or any alias (a
    listing may spell it either way)."""
    if catalog.root_base(base) != base:
        return base in listed
    return bool({base, info.id, *info.aliases} & listed)


def budget_problems(model: ResolvedModel) -> list[Diagnostic]:
    """``max_cost_usd`` unchecked for want of a price, or exceeded: worded as ``ftops validate``
    words them (ftops.validate), at the line of ``max_cost_usd``."""
    if model.max_cost_usd is None:
        return []
    where = f"models.{model.name}.max_cost_usd"
    cost = model.estimated_cost_usd
    if cost is None:
        return [_at(model, "max_cost_usd", "no_price",
                    f"{where}: no training price is known for {model.base_model}, so the budget "
                    f"cannot be checked; add `pricing: {{{model.base_model}: "
                    f"{{training_usd_per_1m: ...}}}}`")]
    if cost <= model.max_cost_usd:
        return []
    basis = ""
    if model.cost_basis is not None:
        epochs, tokens = model.cost_basis
        basis = f" ({epochs} epochs x {tokens:,} tokens)"
    return [_at(model, "max_cost_usd", "budget_exceeded",
                f"{where}: estimated cost {usd(cost)} exceeds the budget "
                f"{usd(model.max_cost_usd)}{basis}")]


def superseded_warnings(model: ResolvedModel, fingerprint: str,
                        jobs: Iterable[Job]) -> list[Diagnostic]:
    """This project's live jobs of ``model`` that train an earlier version of it."""
    return [
        Diagnostic("warning", "superseded_job",
                   f"job {job.id} ({job.status}) trains an earlier version of this model "
                   "and keeps running unless cancelled", subject=f"model.{model.name}")
        for job in jobs
        if job.live and job.provider == model.provider
        and job.metadata["ftops_model"] == model.name
        and job.metadata.get("ftops_fingerprint") != fingerprint
    ]


def usd(value: float) -> str:
    """Dollars as validate shows them (``ftops.cost.format_usd``)."""
    return format_usd(value)


def _at(model: ResolvedModel, key: str, code: str, message: str) -> Diagnostic:
    """An error at the line of ``key`` in the model's spec file: a spec-form diagnostic, so the
    plan prints ``file:line: message`` as validate does. A model read from no file (built in
    code) is named by its address instead."""
    if model.file:
        return Diagnostic("error", code, message, path=model.file, line=model.line_of(key))
    return Diagnostic("error", code, message, subject=f"model.{model.name}")
