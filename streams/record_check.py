"""A check compiled once per schema that accepts plainly valid records without fastavro.validate.

fastavro.validate interprets the schema for every datum, which costs the producer more than
encoding does. Records built from typed events are almost always exactly typed (str, int, dict,
UUID, aware datetime), and for those one Python expression generated from the schema decides in
a fraction of the time (as fastjsonschema does for JSON Schema). The check is one-sided: True
means fastavro.validate would accept the datum; False means "not sure", and the caller asks
fastavro.validate, which stays the one authority on what is rejected and how the error reads.
Types the check does not cover (bytes, arrays, enums, ...) are never accepted.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from fastavro.const import INT_MAX_VALUE, INT_MIN_VALUE, LONG_MAX_VALUE, LONG_MIN_VALUE

Check = Callable[[Any], bool]
#: What a field absent from a record reads as; every expression rejects it.
MISSING = object()
#: What a type the check does not cover compares its datum with: no datum is it, so it is False.
NOT_COVERED = object()
RANGES = {"int": (INT_MIN_VALUE, INT_MAX_VALUE), "long": (LONG_MIN_VALUE, LONG_MAX_VALUE)}
TIMESTAMPS = {"timestamp-millis", "timestamp-micros"}


def expression(schema: Any, first: str, value: str, names: Iterator[str]) -> str:
    """A Python expression that is True only when ``value`` is a datum fastavro would accept for ``schema``.

    ``first`` is what the expression's first use of the value reads (it may bind ``value`` with :=).
    """
    if isinstance(schema, list):
        branches = [expression(branch, first if n == 0 else value, value, names) for n, branch in enumerate(schema)]
        return "(" + " or ".join(branches) + ")"
    kind, logical = (schema, None) if isinstance(schema, str) else (schema.get("type"), schema.get("logicalType"))
    if kind == "record":
        fields = []
        for field in schema["fields"]:
            name = next(names)
            fields.append(expression(field["type"], f"({name} := {value}.get({field['name']!r}, MISSING))", name, names))
        return f"(type({first}) is dict and '-type' not in {value} and " + " and ".join(fields) + ")"
    if kind == "map":
        key, item = next(names), next(names)
        items = expression(schema["values"], item, item, names)
        return (f"(type({first}) is dict and (not {value} or all(type({key}) is str and {items} "
                f"for {key}, {item} in {value}.items())))")
    if kind == "null":
        return f"{first} is None"
    if kind == "string" and logical in (None, "uuid"):
        return f"(type({first}) is str or type({value}) is UUID)" if logical else f"type({first}) is str"
    if kind in RANGES and (logical is None or (kind == "long" and logical in TIMESTAMPS)):
        low, high = RANGES[kind]
        in_range = f"(type({first}) is int and {low} <= {value} <= {high})"
        if logical is None:
            return in_range
        return f"({in_range} or (type({value}) is datetime and {value}.utcoffset() is not None))"
    return f"{first} is NOT_COVERED"


def compile_check(schema: Any) -> Check:
    """The check for a schema parsed by fastavro.parse_schema."""
    names = (f"v{n}" for n in itertools.count(1))
    source = f"def check(v0):\n    return {expression(schema, 'v0', 'v0', names)}\n"
    namespace: dict[str, Any] = {"MISSING": MISSING, "NOT_COVERED": NOT_COVERED, "UUID": uuid.UUID, "datetime": datetime}
    exec(compile(source, "<record check>", "exec"), namespace)
    return namespace["check"]
