"""The provider's calendar: what the real service refuses on the day ``ftops.clock`` says it is.

The dates are the catalog's (``training_stop`` and ``shutdown``) for the provider the emulator's
flavor stands for: "openai" or "azure", each on its own schedule. From a base's training stop on,
new fine-tuning jobs on it, or on a fine-tune of it, are refused; jobs created before keep running
to their end and their models stay listed. From its shutdown on, the base and its fine-tunes no
longer answer chat completions. The day is read on every request, so ``FTOPS_TODAY`` set in the
emulator's environment (or by a test, in-process) takes effect at once.

The error codes and messages below are the emulator's best knowledge, not a recording: neither
provider has published what its API answers after those dates. A refused create is the 400
``model_not_available`` the API gives for a base it does not fine-tune; a retired model is the
404 ``model_not_found`` it gives for a model that does not exist, with the same message.
"""

from __future__ import annotations

from ftops import catalog, clock
from ftops.emulator.common import ApiError, Ctx, invalid


def check_training(ctx: Ctx, model: str, root: str) -> None:
    """Raises the 400 for a new job on ``model`` (whose root base is ``root``) once its
    provider has stopped taking new fine-tuning jobs on that base."""
    stop = catalog.load().training_stop(ctx.flavor, root)
    if stop is None or clock.today() < stop:
        return
    named = model if model == root else f"{model} (a fine-tune of {root})"
    raise invalid(
        f"Fine-tuning jobs can no longer be created on {named}: new fine-tuning jobs are not "
        f"accepted since {stop.isoformat()}.",
        "model",
        "model_not_available",
    )


def check_serving(ctx: Ctx, requested: str, model: str) -> None:
    """Raises the 404 for a chat completion on ``model`` (asked for as ``requested``) once its
    root base has shut down: the model answers as if it had never existed."""
    end = catalog.load().shutdown(ctx.flavor, model)
    if end is None or clock.today() < end:
        return
    raise ApiError(
        404,
        f"The model `{requested}` does not exist or you do not have access to it.",
        code="model_not_found",
    )
