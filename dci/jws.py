"""The compact-JWS signature form used by OpenCRVS's DCI API.

There ``signature`` is a compact JWS whose payload is the JSON of
``{"header": ..., "message": ...}``. The key is chosen by the JWS ``kid``;
the payload must equal the header and message that came with it.
"""

import base64
import binascii
import json
import re

from joserfc import jws

from . import jsontext
from .canonical import canonical_bytes
from .errors import KeyFormatError, SignatureInvalid
from .keys import jose_key, normalise_algorithm

__all__ = ["looks_like_jws", "sign", "verify"]

_COMPACT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
_JOSE_NAMES = {"ed25519": "EdDSA", "rs256": "RS256"}


def _registry(algorithm):
    # Peers add claims such as iat/exp to the protected header: accept them,
    # and allow exactly the one algorithm the key itself dictates.
    return jws.JWSRegistry(algorithms=[algorithm], strict_check_header=False)


def looks_like_jws(value):
    return isinstance(value, str) and bool(_COMPACT.match(value.strip()))


def _b64url_json(segment):
    try:
        return jsontext.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError):
        raise SignatureInvalid("JWS segment is not base64url JSON") from None


def _is_unix_time(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _protected_header(value):
    """The protected header, refused unless its members have the types we rely on."""
    protected = _b64url_json(value.split(".", 1)[0])
    if not isinstance(protected, dict):
        raise SignatureInvalid("JWS header is not an object")
    kid, alg = protected.get("kid"), protected.get("alg")
    if not (isinstance(kid, str) and kid and isinstance(alg, str) and alg):
        raise SignatureInvalid("JWS header lacks a kid or alg string")
    if not all(_is_unix_time(protected[claim]) for claim in ("iat", "exp") if claim in protected):
        raise SignatureInvalid("JWS iat/exp are not Unix times")
    return protected


def sign(header, message, signing_key, *, extra_headers=None):
    """Produce a compact JWS over ``{"header", "message"}`` (peers and tests use it)."""
    protected = {"alg": _JOSE_NAMES[signing_key.algorithm], "kid": signing_key.kid}
    protected.update(extra_headers or {})
    payload = json.dumps({"header": header, "message": message}, separators=(",", ":"))
    return jws.serialize_compact(
        protected,
        payload.encode(),
        jose_key(signing_key.private_key, signing_key.algorithm),
        registry=_registry(protected["alg"]),
    )


def verify(value, header, message, key_lookup, policy):
    """Verify a compact JWS signature; return ``(protected_header, key)``."""
    value = value.strip()
    protected = _protected_header(value)
    key = key_lookup(protected["kid"])
    try:
        declared = normalise_algorithm(protected["alg"])
    except KeyFormatError as exc:
        raise SignatureInvalid(exc.message) from None
    if declared != key.algorithm:
        raise SignatureInvalid(f"JWS alg {protected['alg']!r} does not fit key {key.kid!r}")
    if "exp" in protected:  # cheap: before any cryptography
        expires = protected["exp"]
        policy.check_window(protected.get("iat", expires - policy.max_lifetime), expires)
    else:
        policy.check_message_time(header.get("message_ts"))
    try:
        token = jws.deserialize_compact(
            value, jose_key(key.key, key.algorithm), registry=_registry(protected["alg"])
        )
    except Exception as exc:  # joserfc raises its own errors, and others on odd input
        raise SignatureInvalid(f"JWS does not verify: {type(exc).__name__}") from None
    try:
        payload = jsontext.loads(token.payload)
    except ValueError:
        raise SignatureInvalid("JWS payload is not acceptable JSON") from None
    # Compare canonical JSON, not Python values: True == 1 == 1.0 in Python.
    if (
        not isinstance(payload, dict)
        or payload.keys() != {"header", "message"}
        or canonical_bytes(payload["header"], payload["message"])
        != _canonical_or_none(header, message)
    ):
        raise SignatureInvalid("JWS payload differs from the header and message received")
    return protected, key


def _canonical_or_none(header, message):
    try:
        return canonical_bytes(header, message)
    except RecursionError:  # deeper than the (bounded) payload can be
        return None
