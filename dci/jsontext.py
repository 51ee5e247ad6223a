"""Reading JSON text from a peer: bounded, and only values every serialiser agrees on.

Every JSON document a peer sends us (envelopes, answers, JWKS, token answers,
JWS segments) is read here. RFC 8259 has no value for NaN, Infinity or a
number that overflows to infinity, and a digest must never see a value whose
serialised forms disagree, so those are refused; containers nested deeper
than the caller allows are refused too. Whatever goes wrong is a
``ValueError`` (the parser's own ``RecursionError`` included).
"""

import json
import math

__all__ = ["MAX_DEPTH", "NestingTooDeep", "check_depth", "loads"]

MAX_DEPTH = 32


class NestingTooDeep(ValueError):
    """Containers nest deeper than allowed."""


def _refuse_constant(name):
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} overflows to infinity")
    return value


def check_depth(value, limit=MAX_DEPTH):
    """Raise :class:`NestingTooDeep` when containers in ``value`` nest deeper than ``limit``."""
    level = [value] if isinstance(value, (dict, list)) else []
    for _ in range(limit):  # breadth-first: no recursion, whatever the depth
        deeper = []
        for node in level:
            children = node.values() if isinstance(node, dict) else node
            deeper.extend(c for c in children if isinstance(c, (dict, list)))
        if not deeper:
            return
        level = deeper
    raise NestingTooDeep(f"JSON nesting deeper than {limit} levels")


def loads(raw, max_depth=MAX_DEPTH):
    """Decode JSON ``raw`` (bytes or str); raise ``ValueError`` if it is not acceptable JSON.

    Integers longer than Python's conversion limit, non-finite numbers and
    invalid UTF-8 are refused; with ``max_depth`` (``None``: unbounded),
    containers nested deeper raise :class:`NestingTooDeep`.
    """
    try:
        value = json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise NestingTooDeep("JSON nesting too deep to read") from None
    except TypeError:  # not bytes or text at all
        raise ValueError("JSON text must be bytes or a string") from None
    if max_depth is not None:
        check_depth(value, max_depth)
    return value
