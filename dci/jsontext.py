"""Reading JSON text from the wire: fast, and exactly what the json module reads.

The values we verify and act on must be the values that were sent. orjson
reads a small body several times faster than the json module, but it reads
integers beyond 64 bits as floats and, on large bodies, holds a document
many times their size; the json module is the reference for what a body
means. So orjson reads the small bodies it reads exactly, the json module
everything else, and both refuse what RFC 8259 has no value for (NaN,
Infinity, numbers that overflow to infinity): a digest must never see a
value whose serialised forms disagree.
"""

import json
import math

import orjson

__all__ = ["FAST_MAX_BYTES", "loads"]

FAST_MAX_BYTES = 64 * 1024
# -2**63 - 1 already has 19 digits: a body with 19 digits in a row may hold an
# integer orjson would round. A translate + find runs at C speed (a regex scan
# costs more than the parse).
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGIT_RUN = b"0" * 19


def _refuse_constant(name):
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} overflows to infinity")
    return value


def loads(raw):
    """Decode UTF-8 JSON ``raw`` (bytes); raise ``ValueError`` if it is not JSON.

    The result equals ``json.loads(raw)`` whenever that holds only finite numbers.
    """
    if len(raw) <= FAST_MAX_BYTES and _LONG_DIGIT_RUN not in raw.translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # the json module decides (it reads lone surrogates, for one)
    return json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
