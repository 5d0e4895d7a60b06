"""``ftops schema``: the JSON Schema of spec files, generated from the same models that read
them (a copy is kept in schema/ftops.schema.json for editors)."""

from __future__ import annotations

from ftops.spec import schema_text


def run() -> str:
    return schema_text()
