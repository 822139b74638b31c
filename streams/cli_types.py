"""Argument types the ``streams`` commands share, so a bad value is a usage error, not a traceback."""

from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    return whole_number(text, least=1)


def non_negative_int(text: str) -> int:
    return whole_number(text, least=0)


def whole_number(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
    return value


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value
