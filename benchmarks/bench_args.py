"""Flag types the benchmark scripts share."""

from __future__ import annotations

import argparse


def positive(text: str) -> int:
    """An int flag that counts rounds, runs, repeats or threads: at least 1 (a median of no
    rounds is no figure), else argparse's usage error naming the flag."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value
