"""Dates in a model's life, as the planner reasons about them: when its provider stops training
on its base, and when its fine-tunes stop answering. Pure: desired and actual state, the
catalog and a day in; grouped notices out, one line per provider and date rather than per model.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ftops import catalog
from ftops.errors import Diagnostic, Place
from ftops.state import Actual, Desired, ResolvedModel

WARN_DAYS = 90


def days_from(day: dt.date, today: dt.date) -> str:
    days = (day - today).days
    count = f"{abs(days)} day{'s' if abs(days) != 1 else ''}"
    if days < 0:
        return f"{count} ago"
    return "today" if days == 0 else f"in {count}"


def _place(model: ResolvedModel) -> Place:
    source = model.source
    return Place(f"model.{model.name}", source.path if source else "",
                 source.line if source else None)


def _names(models: Iterable[ResolvedModel]) -> str:
    return ", ".join(sorted(m.name for m in models))


def _count(models: list[ResolvedModel]) -> str:
    return f"{len(models)} model{'s' if len(models) != 1 else ''}"


@dataclass(frozen=True)
class _Stop:
    """A provider's last-day fact for one model: the day, and the base it is about when the
    provider retires bases one by one (Azure) rather than all its training at once (OpenAI)."""

    provider: str
    day: dt.date
    base: str | None


class Calendar:
    """What today means for each declared model, and the grouped notices that follow."""

    def __init__(self, desired: Desired, actual: Actual, today: dt.date) -> None:
        self.desired = desired
        self.actual = actual
        self.today = today
        self.catalog = catalog.load()
        self._untrainable: dict[_Stop, list[ResolvedModel]] = defaultdict(list)

    def root_base(self, model: ResolvedModel) -> str:
        """The literal base at the bottom of a chain: the weights every fine-tune starts from."""
        while model.parent is not None:
            parent = self.desired.model(model.parent)
            assert parent is not None  # fingerprints() checked every reference
            model = parent
        assert model.base is not None
        return model.base

    def shutdown(self, model: ResolvedModel) -> dt.date | None:
        """The first day the model's fine-tunes stop answering: the earliest of the catalog's
        date for its provider and the date the provider's own /models listing gives."""
        base = self.root_base(model)
        days = [m.shutdown_date for m in self.actual.models_named(model.provider).get(base, ())
                if m.shutdown_date]
        listed = self.catalog.shutdown(model.provider_type, base)
        return min([*days, *([listed] if listed else [])], default=None)

    def retired_on(self, model: ResolvedModel) -> dt.date | None:
        """The shutdown day once it has come; None while the model still answers."""
        day = self.shutdown(model)
        return day if day is not None and day <= self.today else None

    def _stop(self, model: ResolvedModel) -> _Stop | None:
        base = self.root_base(model)
        day = self.catalog.training_stop(model.provider_type, base)
        if day is None:
            return None
        provider = self.catalog.provider(model.provider_type or "")
        wide = provider is not None and provider.new_jobs_stop_date == day
        info = self.catalog.model(base)
        return _Stop(model.provider, day, None if wide else (info.id if info else base))

    def refuse_training(self, model: ResolvedModel) -> bool:
        """Record that ``model`` needs a new job; True when its provider no longer takes one."""
        stop = self._stop(model)
        if stop is None or self.today < stop.day:
            return False
        self._untrainable[stop].append(model)
        return True

    def errors(self) -> list[Diagnostic]:
        """One error per provider and date, naming every model that cannot be trained."""
        out = []
        for stop, models in sorted(self._untrainable.items(),
                                   key=lambda kv: (kv[0].provider, kv[0].day, kv[0].base or "")):
            on = f" on {stop.base}" if stop.base else ""
            out.append(Diagnostic(
                "error", "provider_closed",
                f"provider {stop.provider} accepts no new fine-tuning jobs{on} since "
                f"{stop.day.isoformat()}: {_count(models)} cannot be trained "
                f"({_names(models)}); see `ftops migrate` or choose another provider",
                subject=f"provider.{stop.provider}",
                places=tuple(_place(m) for m in sorted(models, key=lambda m: m.name))))
        return out

    def warnings(self, retired: Mapping[str, dt.date]) -> list[Diagnostic]:
        return [*self._closing_warnings(), *self._shutdown_warnings(retired)]

    def _closing_warnings(self) -> list[Diagnostic]:
        """Within 90 days of a provider's last day for new jobs (or after it): one line each."""
        groups: dict[_Stop, list[ResolvedModel]] = defaultdict(list)
        for model in self.desired.models:
            stop = self._stop(model)
            if stop is not None and (stop.day - self.today).days <= WARN_DAYS:
                groups[stop].append(model)
        out = []
        for stop, models in sorted(groups.items(),
                                   key=lambda kv: (kv[0].provider, kv[0].day, kv[0].base or "")):
            on = f" on {stop.base}" if stop.base else ""
            when = f"{stop.day.isoformat()} ({days_from(stop.day, self.today)})"
            text = (f"stopped accepting new fine-tuning jobs{on} on {when}; jobs can no longer "
                    "be started" if stop.day <= self.today
                    else f"stops accepting new fine-tuning jobs{on} on {when}")
            out.append(Diagnostic("warning", "provider_closing", text,
                                  subject=f"provider.{stop.provider}",
                                  places=tuple(_place(m) for m in models)))
        return out

    def _shutdown_warnings(self, retired: Mapping[str, dt.date]) -> list[Diagnostic]:
        """Models whose base stops answering within 90 days, one line per provider, base and
        day. Retired models are reported by their own action, not here."""
        groups: dict[tuple[str, str, dt.date], list[ResolvedModel]] = defaultdict(list)
        for model in self.desired.models:
            day = self.shutdown(model)
            if day is None or model.name in retired or (day - self.today).days > WARN_DAYS:
                continue
            info = self.catalog.model(self.root_base(model))
            groups[(model.provider, info.id if info else self.root_base(model), day)].append(model)
        out = []
        for (provider, base, day), models in sorted(groups.items()):
            verb = "stopped answering" if day <= self.today else "stop answering"
            types = {m.provider_type for m in models}
            out.append(Diagnostic(
                "warning", "base_shutdown",
                f"{_count(models)} on {base} {verb} on {day.isoformat()} "
                f"({days_from(day, self.today)}): {_names(models)} — see `ftops migrate`"
                + self._suggested(base, types),
                subject=f"provider.{provider}",
                places=tuple(_place(m) for m in sorted(models, key=lambda m: m.name))))
        return out

    def _suggested(self, base: str, types: set[str | None]) -> str:
        """The catalog's suggested successors of ``base`` on other provider types, once."""
        table = {t: b for t, b in self.catalog.successors_of(base).items() if t not in types}
        if not table:
            return ""
        parts = []
        for kind, successor in table.items():
            stop = self.catalog.training_stop(kind, successor)
            parts.append(f"{kind} {successor}" + (
                f" (new jobs until {(stop - dt.timedelta(days=1)).isoformat()})" if stop else ""))
        return f"; suggested successors: {', '.join(parts)}"

    def alias_warnings(self, aliases: Mapping[str, str],
                       retired: Mapping[str, dt.date]) -> list[Diagnostic]:
        """Promoted aliases (``ftops.lock``) that point at a retired model."""
        return [
            Diagnostic("warning", "alias_retired",
                       f"points at model {name}, which stopped answering on "
                       f"{retired[name].isoformat()}; promote a successor (see `ftops migrate`)",
                       subject=f"alias.{alias}")
            for alias, name in sorted(aliases.items()) if name in retired
        ]
