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
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey, RSAKey

from .canonical import canonical_bytes
from .errors import KeyFormatError, SignatureInvalid
from .keys import ED25519, normalise_algorithm

__all__ = ["looks_like_jws", "sign", "verify"]

_COMPACT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
_JOSE_NAMES = {ED25519: "EdDSA", "rs256": "RS256"}


def _registry(algorithm):
    # Peers add claims such as iat/exp to the protected header: accept them,
    # and allow exactly the one algorithm the key itself dictates.
    return jws.JWSRegistry(algorithms=[algorithm], strict_check_header=False)


def looks_like_jws(value):
    return isinstance(value, str) and bool(_COMPACT.match(value.strip()))


def _b64url_json(segment):
    try:
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError):
        raise SignatureInvalid("JWS segment is not base64url JSON") from None


def _jose_key(public_key):
    cls = OKPKey if public_key.algorithm == ED25519 else RSAKey
    return cls.import_key(public_key.key)


def sign(header, message, signing_key, *, extra_headers=None):
    """Produce a compact JWS over ``{"header", "message"}`` (peers and tests use it)."""
    protected = {"alg": _JOSE_NAMES[signing_key.algorithm], "kid": signing_key.kid}
    protected.update(extra_headers or {})
    cls = OKPKey if signing_key.algorithm == ED25519 else RSAKey
    payload = json.dumps({"header": header, "message": message}, separators=(",", ":"))
    return jws.serialize_compact(
        protected,
        payload.encode(),
        cls.import_key(signing_key.private_key),
        registry=_registry(protected["alg"]),
    )


def verify(value, header, message, key_lookup, policy):
    """Verify a compact JWS signature; return ``(protected_header, key)``."""
    value = value.strip()
    protected = _b64url_json(value.split(".", 1)[0])
    if not isinstance(protected, dict) or not protected.get("kid") or not protected.get("alg"):
        raise SignatureInvalid("JWS header lacks kid or alg")
    key = key_lookup(protected["kid"])
    try:
        declared = normalise_algorithm(protected["alg"])
    except KeyFormatError as exc:
        raise SignatureInvalid(exc.message) from None
    if declared != key.algorithm:
        raise SignatureInvalid(f"JWS alg {protected['alg']!r} does not fit key {key.kid!r}")
    try:
        token = jws.deserialize_compact(value, _jose_key(key), registry=_registry(protected["alg"]))
    except (JoseError, ValueError) as exc:
        raise SignatureInvalid(f"JWS does not verify: {exc}") from None
    try:
        payload = json.loads(token.payload)
    except ValueError:
        raise SignatureInvalid("JWS payload is not JSON") from None
    # Compare canonical JSON, not Python values: True == 1 == 1.0 in Python.
    if (
        not isinstance(payload, dict)
        or payload.keys() != {"header", "message"}
        or canonical_bytes(payload["header"], payload["message"])
        != canonical_bytes(header, message)
    ):
        raise SignatureInvalid("JWS payload differs from the header and message received")
    if "exp" in protected:
        expires = protected["exp"]
        created = protected.get("iat", expires - policy.max_lifetime)
        if not all(type(v) is int for v in (created, expires)):
            raise SignatureInvalid("JWS iat/exp are not Unix times")
        policy.check_window(created, expires)
    else:
        policy.check_message_time(header.get("message_ts"))
    return protected, key
