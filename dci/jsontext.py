"""Reading JSON text from the wire: fast, bounded, and exactly what the json module reads.

The values we verify and act on must be the values that were sent. orjson
reads a small body several times faster than the json module, but it reads
integers beyond 64 bits as floats and, on large bodies, holds a document
many times their size; the json module is the reference for what a body
means. So orjson reads the small bodies it reads exactly, the json module
everything else, and both refuse what RFC 8259 has no value for (NaN,
Infinity, numbers that overflow to infinity): a digest must never see a
value whose serialised forms disagree. Containers nested deeper than the
caller allows are refused too.
"""

import json
import math

import orjson

__all__ = ["FAST_MAX_BYTES", "NestingTooDeep", "loads"]

FAST_MAX_BYTES = 64 * 1024
# One C-speed pass over a small body answers both questions asked of it:
# digits become "0" (-2**63 - 1 already has 19 digits: a run of 19 may hold
# an integer orjson would round) and "[" becomes "{" (one count of opening
# brackets bounds the nesting). A regex scan would cost more than the parse.
_SCAN = bytes.maketrans(b"123456789[", b"000000000{")
_LONG_DIGIT_RUN = b"0" * 19


class NestingTooDeep(ValueError):
    """Containers nest deeper than allowed."""


def _refuse_constant(name):
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} overflows to infinity")
    return value


def _exact(raw):
    return json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)


def _nests_deeper(value, limit):
    """True when containers in ``value`` nest deeper than ``limit`` (breadth-first)."""
    level = [value]
    for _ in range(limit):
        deeper = []
        for node in level:
            children = node.values() if type(node) is dict else node
            deeper.extend(c for c in children if type(c) is dict or type(c) is list)
        if not deeper:
            return False
        level = deeper
    return True


def loads(raw, max_depth=None):
    """Decode UTF-8 JSON ``raw`` (bytes); raise ``ValueError`` if it is not JSON.

    The result equals ``json.loads(raw)`` whenever that holds only finite
    numbers. With ``max_depth``, containers nested deeper raise
    :class:`NestingTooDeep` (a ``ValueError``).
    """
    value = None
    if len(raw) <= FAST_MAX_BYTES:
        scan = raw.translate(_SCAN)
        if _LONG_DIGIT_RUN not in scan:
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError:
                pass  # the json module decides (it reads lone surrogates, for one)
        openings = scan.count(b"{")
    else:  # no copy of a large body: count in place
        openings = raw.count(b"{") + raw.count(b"[")
    if value is None:
        value = _exact(raw)
    # fewer opening brackets than the limit cannot nest that deep: no walk
    if max_depth is not None and openings > max_depth and _nests_deeper(value, max_depth):
        raise NestingTooDeep(f"JSON nesting deeper than {max_depth} levels")
    return value
