"""The canonical digest of a DCI envelope.

The digest covers ``{"header": ..., "message": ...}`` as received (parsed
JSON values, never a re-serialised model), serialised with sorted keys and
no whitespace, so key order and formatting of the wire JSON do not matter
while every value does.
"""

import base64
import hashlib
import json

__all__ = ["canonical_bytes", "digest", "digest_candidates"]


_ENCODERS = {
    ascii_only: json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=ascii_only)
    for ascii_only in (True, False)
}


def canonical_bytes(header, message, *, ascii_only=True):
    """The bytes that are hashed. ``ascii_only`` is the Python/OpenSPP2 form."""
    return _ENCODERS[ascii_only].encode({"header": header, "message": message}).encode()


def digest(header, message, *, ascii_only=True):
    """base64(SHA-256(canonical JSON)) as the signature scheme expects."""
    raw = hashlib.sha256(canonical_bytes(header, message, ascii_only=ascii_only)).digest()
    return base64.b64encode(raw).decode()


def digest_candidates(header, message):
    """Digests a genuine signer may have produced for this content.

    Python signers escape non-ASCII (``\\u00e9``); JavaScript and Java signers
    emit UTF-8. Both forms are a deterministic function of the same content,
    so accepting either widens interoperability without weakening integrity.
    """
    ascii_form = canonical_bytes(header, message)
    yield base64.b64encode(hashlib.sha256(ascii_form).digest()).decode()
    utf8_form = canonical_bytes(header, message, ascii_only=False)
    if utf8_form != ascii_form:
        yield base64.b64encode(hashlib.sha256(utf8_form).digest()).decode()
