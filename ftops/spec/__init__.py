"""Specs: every YAML file under a directory, merged into one namespace, validated and resolved.

``load_specs`` returns a :class:`Spec` of frozen dataclasses or raises one FtopsError carrying every
problem found (``path:line: message``). ``collect_specs`` returns what resolved plus the problems,
for ``ftops validate``. The pydantic models are private; they also generate the JSON Schema.

The layers, each importing only those before it: ``schema`` (the format) and ``types`` (the
resolved view), ``reader`` (files to entries), ``sections`` and ``resolver`` (entries to a Spec).
"""

from ftops.spec.resolver import collect_specs, load_specs, repo_root
from ftops.spec.schema import (
    DEFAULT_ENCODING,
    DEFAULT_PROVIDER,
    METHOD_FORMAT,
    METHOD_HYPERPARAMETERS,
    SCHEMA_PATH,
    json_schema,
    schema_text,
)
from ftops.spec.types import Dataset, Eval, Provider, ResolvedModel, Spec, dump_spec_yaml

__all__ = [
    "DEFAULT_ENCODING",
    "DEFAULT_PROVIDER",
    "METHOD_FORMAT",
    "METHOD_HYPERPARAMETERS",
    "SCHEMA_PATH",
    "Dataset",
    "Eval",
    "Provider",
    "ResolvedModel",
    "Spec",
    "collect_specs",
    "dump_spec_yaml",
    "json_schema",
    "load_specs",
    "repo_root",
    "schema_text",
]
