"""The canonical digest of a DCI envelope.

The digest covers ``{"header": ..., "message": ...}`` as received (parsed
JSON values, never a re-serialised model), serialised with sorted keys and
no whitespace, so key order and formatting of the wire JSON do not matter
while every value does.
"""

import base64
import hashlib
import json

__all__ = ["canonical_bytes", "digest", "matching_digest"]


_ENCODERS = {
    ascii_only: json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=ascii_only)
    for ascii_only in (True, False)
}


def canonical_bytes(header, message, *, ascii_only=True):
    """The bytes that are hashed. ``ascii_only`` is the Python/OpenSPP2 form.

    The UTF-8 form of text holding a lone surrogate does not exist: it raises
    ``UnicodeEncodeError`` (the ASCII form escapes it and always exists).
    """
    return _ENCODERS[ascii_only].encode({"header": header, "message": message}).encode()


def _b64_sha256(data):
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def digest(header, message, *, ascii_only=True):
    """base64(SHA-256(canonical JSON)) as the signature scheme expects."""
    return _b64_sha256(canonical_bytes(header, message, ascii_only=ascii_only))


def _signer_forms(header, message):
    """The canonical bytes a genuine signer may have hashed, Python's form first."""
    python_form = canonical_bytes(header, message)
    yield python_form
    if b"\\u" not in python_form:  # nothing escaped: the UTF-8 form is the same bytes
        return
    try:
        yield canonical_bytes(header, message, ascii_only=False)
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8 signer can have written it
        return


def matching_digest(header, message, accepts):
    """The first digest a genuine signer may have produced that ``accepts(digest)`` takes.

    Returns ``None`` when no form is accepted. Python signers escape non-ASCII
    (``\\u00e9``); JavaScript and Java signers emit UTF-8. Each form is a
    deterministic, faithful encoding of the same content, so accepting either
    widens interoperability without weakening integrity.
    """
    try:
        for form in _signer_forms(header, message):
            candidate = _b64_sha256(form)
            if accepts(candidate):
                return candidate
    except RecursionError:  # nested beyond what any of our readers accepts: no genuine form
        pass
    return None
