"""The canonical digest of a DCI envelope.

The digest covers ``{"header": ..., "message": ...}`` as received (parsed
JSON values, never a re-serialised model), serialised with sorted keys and
no whitespace, so key order and formatting of the wire JSON do not matter
while every value does.
"""

import base64
import hashlib
import json

import orjson

__all__ = ["canonical_bytes", "digest", "matching_digest"]


_ENCODERS = {
    ascii_only: json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=ascii_only)
    for ascii_only in (True, False)
}


def canonical_bytes(header, message, *, ascii_only=True):
    """The bytes that are hashed. ``ascii_only`` is the Python/OpenSPP2 form."""
    return _ENCODERS[ascii_only].encode({"header": header, "message": message}).encode()


def _b64_sha256(data):
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def digest(header, message, *, ascii_only=True):
    """base64(SHA-256(canonical JSON)) as the signature scheme expects."""
    return _b64_sha256(canonical_bytes(header, message, ascii_only=ascii_only))


def _orjson_form(content):
    # orjson's sorted, compact output is byte-for-byte the Python form for the
    # usual ASCII content without floats, at a tenth of the cost; it is still a
    # faithful encoding of the content, so trying it first costs no integrity.
    try:
        return orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # integers beyond 64 bits: only the standard forms apply
        return None


# Cheapest first; each builds its bytes only when the ones before did not match.
_FORMS = (
    _orjson_form,
    lambda content: _ENCODERS[True].encode(content).encode(),  # Python signers
    lambda content: _ENCODERS[False].encode(content).encode(),  # UTF-8 signers
)


def matching_digest(header, message, accepts):
    """The first digest a genuine signer may have produced that ``accepts(digest)`` takes.

    Returns ``None`` when no form is accepted. ``header`` and ``message`` are
    JSON values as :func:`dci.jsontext.loads` reads them (finite numbers only:
    orjson writes NaN and infinities as ``null``, which would let two contents
    share a form).

    Python signers escape non-ASCII (``\\u00e9``); JavaScript and Java signers
    emit UTF-8. Every form is a deterministic, faithful encoding of the same
    content, so accepting any of them widens interoperability without
    weakening integrity. A plain loop, not a generator: this runs on every
    callback, and an abandoned generator costs more than the hashing.
    """
    content = {"header": header, "message": message}
    tried = []
    for form in _FORMS:
        encoded = form(content)
        if encoded is None or encoded in tried:
            continue
        tried.append(encoded)
        candidate = _b64_sha256(encoded)
        if accepts(candidate):
            return candidate
    return None
