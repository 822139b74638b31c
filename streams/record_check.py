"""What fastavro's strict writer lets through, checked by one expression compiled once per schema.

fastavro.validate interprets the schema for every datum and cost the producer more than encoding
did. The strict writer (``schemaless_writer(..., strict=True)``) already refuses most bad data as
it writes: a string field that holds no str, a missing or unknown field, a map key that is no
str, a union value that fits no branch (it picks branches by validating). It lets numbers
through, though (1.5, True or 2**40 are written as an Avro int), and an empty string as an
empty map. So a record is taken as valid when the strict writer writes it and this check passes:
int and long fields are exact ints in range (or aware datetimes for timestamps), records and
maps are dicts, and a null outside a union is None. Types the check does not cover (boolean, float,
double, bytes, enum, fixed, array) make it False. False means "not sure", and the caller asks
fastavro.validate, which stays the one authority on what is rejected and how the error reads.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from fastavro.const import INT_MAX_VALUE, INT_MIN_VALUE, LONG_MAX_VALUE, LONG_MIN_VALUE

Check = Callable[[Any], bool]
#: What a field absent from a record reads as: the checks of numbers and containers refuse it, the
#: strict writer refuses the rest.
MISSING = object()
#: What a type the check does not cover compares its datum with: no datum is it, so it is False.
NOT_COVERED = object()
RANGES = {"int": (INT_MIN_VALUE, INT_MAX_VALUE), "long": (LONG_MIN_VALUE, LONG_MAX_VALUE)}
TIMESTAMPS = {"timestamp-millis", "timestamp-micros"}


def expression(schema: Any, first: str, value: str, names: Iterator[str]) -> str | None:
    """A Python expression that is True when ``value`` holds nothing the strict writer would let through
    wrongly for ``schema``, or None when the writer checks all of it.

    ``first`` is what the expression's first use of the value reads (it may bind ``value`` with :=).
    """
    if isinstance(schema, list):
        return None
    kind, logical = (schema, None) if isinstance(schema, str) else (schema.get("type"), schema.get("logicalType"))
    if kind == "record":
        fields = []
        for field in schema["fields"]:
            name = next(names)
            check = expression(field["type"], f"({name} := {value}.get({field['name']!r}, MISSING))", name, names)
            if check is not None:
                fields.append(check)
        return f"(type({first}) is dict" + "".join(f" and {check}" for check in fields) + ")"
    if kind == "map":
        key, item = next(names), next(names)
        items = expression(schema["values"], item, item, names)
        if items is None:
            return f"type({first}) is dict"
        return f"(type({first}) is dict and all({items} for {key}, {item} in {value}.items()))"
    if kind == "string":
        return None
    if kind == "null":
        return f"{first} is None"
    if kind in RANGES and (logical is None or (kind == "long" and logical in TIMESTAMPS)):
        low, high = RANGES[kind]
        if logical is None:
            return f"(type({first}) is int and {low} <= {value} <= {high})"
        return (f"((type({first}) is datetime and {value}.utcoffset() is not None) "
                f"or (type({value}) is int and {low} <= {value} <= {high}))")
    return f"{first} is NOT_COVERED"


def compile_check(schema: Any) -> Check:
    """The check for a schema parsed by fastavro.parse_schema."""
    names = (f"v{n}" for n in itertools.count(1))
    body = expression(schema, "v0", "v0", names) or "True"
    namespace: dict[str, Any] = {"MISSING": MISSING, "NOT_COVERED": NOT_COVERED, "datetime": datetime}
    exec(compile(f"def check(v0):\n    return {body}\n", "<record check>", "exec"), namespace)
    return namespace["check"]
