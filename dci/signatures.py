"""Signing and verifying envelopes, whichever scheme the peer uses.

:func:`verify_signature` looks at the ``signature`` value and hands it to
the scheme that produced it (a compact JWS, or a cavage parameter list);
:class:`SignaturePolicy` holds the time rules every scheme obeys.
"""

import time
from dataclasses import dataclass, field

from . import cavage, jws
from .canonical import digest
from .errors import SignatureExpired, SignatureInvalid, SignatureMissing, SignatureNotYetValid
from .schemas import parse_timestamp

__all__ = [
    "SignaturePolicy",
    "VerifiedSignature",
    "is_unsigned",
    "sign_envelope",
    "verify_signature",
]

DEFAULT_LIFETIME = 300
# What peers put in ``signature`` when they do not sign (OpenSPP2 writes the stub).
UNSIGNED_VALUES = frozenset({"", "unsigned-stub"})


def is_unsigned(value):
    """True when ``value`` says "no signature" rather than carrying a bad one."""
    return value is None or (isinstance(value, str) and value.strip() in UNSIGNED_VALUES)


@dataclass(frozen=True)
class SignaturePolicy:
    """Time rules: clock skew tolerated for ``created``, longest lifetime allowed."""

    skew: int = 60
    max_lifetime: int = 3600
    clock: object = field(default=time.time, compare=False)

    def check_window(self, created, expires):
        now = self.clock()
        if expires < created:
            raise SignatureInvalid("signature expires before it is created")
        if expires - created > self.max_lifetime:
            raise SignatureInvalid(
                f"signature lifetime {expires - created}s exceeds the {self.max_lifetime}s allowed"
            )
        if created > now + self.skew:
            raise SignatureNotYetValid()
        if now > expires:
            raise SignatureExpired()

    def check_message_time(self, message_ts):
        """For schemes without created/expires: bound the header's ``message_ts``."""
        try:
            sent = parse_timestamp(message_ts).timestamp()
        except ValueError:
            raise SignatureInvalid("message_ts is not an ISO 8601 timestamp") from None
        self.check_window(sent, sent + self.max_lifetime)


@dataclass(frozen=True)
class VerifiedSignature:
    """What a successful verification established."""

    scheme: str
    kid: str
    algorithm: str
    digest: str  # canonical digest of the content: tells a retry from a replay


def verify_signature(value, header, message, key_lookup, policy=None):
    """Verify ``value`` over ``header`` and ``message`` (JSON objects, as received).

    ``key_lookup(kid)`` returns a :class:`~dci.keys.PublicKey` or raises
    :class:`~dci.errors.UnknownKey`. Raises a :class:`~dci.errors.DCIError`.
    """
    policy = policy or SignaturePolicy()
    if is_unsigned(value):
        raise SignatureMissing()
    if not isinstance(value, str):
        raise SignatureInvalid("signature must be a string")
    if not isinstance(header, dict) or not isinstance(message, dict):
        raise SignatureInvalid("a signature covers a header object and a message object")
    if jws.looks_like_jws(value):
        _, key = jws.verify(value, header, message, key_lookup, policy)
        return VerifiedSignature("jws", key.kid, key.algorithm, digest(header, message))
    key, content_digest = cavage.verify(value, header, message, key_lookup, policy)
    return VerifiedSignature("cavage", key.kid, key.algorithm, content_digest)


def sign_envelope(header, message, signing_key, *, now=None, lifetime=DEFAULT_LIFETIME):
    """Return a complete signed envelope dict for ``header`` and ``message``."""
    created = int(time.time() if now is None else now)
    signature = cavage.sign(header, message, signing_key, created=created, lifetime=lifetime)
    return {"signature": signature, "header": header, "message": message}
