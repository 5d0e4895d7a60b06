"""Train/validation overlap: validation lines that repeat an example of the training file."""

from __future__ import annotations

from array import array
from pathlib import Path

from ftops import datacache, formats
from ftops.datasets.index import DigestIndex
from ftops.datasets.lines import example_digest, loads
from ftops.errors import DataError, Diagnostic


def _file_digests(path: Path, identity: datacache.Identity,
                  cache_dir: Path | None) -> tuple[array[int], array[int]]:
    """Digest and line of every JSON-object line, from the cache when the file is unchanged."""
    cached = datacache.load_digests(cache_dir, identity) if cache_dir is not None else None
    if cached is not None:
        return cached
    digests, lines = array("Q"), array("Q")
    with path.open("rb") as stream:
        for number, raw in enumerate(stream, 1):
            try:
                example = loads(raw.decode("utf-8"))
            except (ValueError, RecursionError):  # also UnicodeDecodeError; analyze reports these
                continue
            if isinstance(example, dict):
                digests.append(example_digest(example))
                lines.append(number)
    if cache_dir is not None:
        datacache.save_digests(cache_dir, identity, digests, lines)
    return digests, lines


def find_overlap(
    train: Path,
    validation: Path,
    *,
    fmt: str = "chat",
    cache_dir: Path | None = None,
    max_findings: int = 50,
) -> tuple[Diagnostic, ...]:
    """``train_validation_overlap`` warnings on the lines of ``validation`` that repeat an
    example of ``train`` (same canonical JSON). Past ``max_findings``, one line-0 finding says how
    many more there are. With ``cache_dir``, digests and results of unchanged files are reused."""
    train, validation = Path(train), Path(validation)
    if fmt not in formats.FORMATS:
        raise DataError(f"unknown dataset format '{fmt}'",
                        hint=f"expected one of {', '.join(formats.FORMATS)}")
    ids = (datacache.identify(train, settle=cache_dir is not None),
           datacache.identify(validation, settle=cache_dir is not None))
    entry = f"overlap-{datacache.key(ids[0].path, ids[1].path, max_findings)}"
    if cache_dir is not None:
        cached = datacache.load(cache_dir, entry, *ids)
        if cached is not None:
            return tuple(Diagnostic.from_dict(f, severity="warning") for f in cached)
    seen = DigestIndex()
    for digest, line in zip(*_file_digests(train, ids[0], cache_dir), strict=True):
        seen.add(digest, line)
    findings: list[Diagnostic] = []
    more = 0
    for digest, line in zip(*_file_digests(validation, ids[1], cache_dir), strict=True):
        earlier = seen.get(digest)
        if earlier is None:
            continue
        if len(findings) < max_findings:
            findings.append(Diagnostic("warning", "train_validation_overlap",
                                       f"same example as line {earlier} of {train.name}; "
                                       "validation data should be held out", line=line))
        else:
            more += 1
    if more:
        findings.append(Diagnostic("warning", "train_validation_overlap",
                                   f"{more} more example(s) also appear in {train.name}", line=0))
    if cache_dir is not None:
        datacache.save(cache_dir, entry, [f.to_dict() for f in findings], *ids)
    return tuple(findings)
