"""When the account says a fine-tuned model is gone: the one rule the planner (``retrain``), the
lock (``deleted: true``) and apply (a dead job is no duplicate to keep) share. Pure: what was
read in, a yes or no out.

The only evidence is the provider's /models listing, and its silence is not always evidence. The
rule, stated so that it errs towards "still there" (a false "deleted" would train, and bill, a
model that exists; a missed one only waits for the next plan):

- an empty listing never proves anything: an endpoint without one, or one that lists nothing,
  answers no question about any model;
- OpenAI and Azure (and the emulator, which reports the one it emulates) list the account's
  fine-tuned models beside the base models, so a non-empty listing without the model means it
  was deleted;
- any other endpoint (``provider_type`` None) is believed only once its listing shows that it
  lists fine-tunes at all: at least one fine-tuned model of any job, or an id shaped like one.
"""

from __future__ import annotations

from ftops.modelid import parse_fine_tuned
from ftops.state import Actual, Job

# Provider types whose /models listing is known to include the account's fine-tuned models.
LISTS_FINE_TUNES = frozenset({"openai", "azure"})


def listing_shows_fine_tunes(actual: Actual, provider: str, provider_type: str | None) -> bool:
    """Whether a model missing from ``provider``'s listing in ``actual`` has been deleted."""
    listed = actual.models_named(provider)
    if not listed:
        return False
    if provider_type in LISTS_FINE_TUNES:
        return True
    outputs = {j.fine_tuned_model for j in actual.jobs if j.provider == provider}
    return any(m in outputs or parse_fine_tuned(m) is not None for m in listed)


def model_deleted(actual: Actual, job: Job, provider_type: str | None) -> bool:
    """A succeeded job whose fine-tuned model the listing can tell is no longer there."""
    if job.status != "succeeded" or not job.fine_tuned_model:
        return False
    listed = job.fine_tuned_model in actual.models_named(job.provider)
    return not listed and listing_shows_fine_tunes(actual, job.provider, provider_type)
