"""Signing and verifying envelopes, whichever scheme the peer uses.

:func:`verify_signature` looks at the ``signature`` value and hands it to
the scheme that produced it (a cavage parameter list, or a compact JWS);
:class:`SignaturePolicy` holds the time rules every scheme obeys.
"""

import time
from dataclasses import dataclass, field
from datetime import datetime

from . import cavage, jws
from .canonical import digest
from .errors import SignatureExpired, SignatureInvalid

__all__ = [
    "SCHEMES",
    "SignaturePolicy",
    "VerifiedSignature",
    "register_scheme",
    "sign_envelope",
    "verify_signature",
]

DEFAULT_LIFETIME = 300


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
            raise SignatureExpired("signature is created in the future")
        if now > expires:
            raise SignatureExpired("signature has expired")

    def check_message_time(self, message_ts):
        """For schemes without created/expires: bound the header's ``message_ts``."""
        try:
            sent = datetime.fromisoformat(str(message_ts).replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise SignatureInvalid("message_ts is not an ISO 8601 timestamp") from None
        self.check_window(sent, sent + self.max_lifetime)


@dataclass(slots=True)  # not frozen: built on every callback, and freezing costs
class VerifiedSignature:
    """What a successful verification established."""

    scheme: str
    kid: str
    algorithm: str
    digest: str  # canonical digest of the content: tells a retry from a replay


def _verify_jws(value, header, message, key_lookup, policy):
    _, key = jws.verify(value, header, message, key_lookup, policy)
    return key, digest(header, message)


# Signature schemes, tried in order: (name, matches(value), verify(...) -> (key, digest)).
# The DCI parameter list comes last: it is the default and reports malformed input.
SCHEMES = [
    ("jws", jws.looks_like_jws, _verify_jws),
    ("cavage", lambda value: True, cavage.verify),
]


def register_scheme(name, matches, verify):
    """Accept one more signature form (tried before the built-in ones)."""
    SCHEMES.insert(0, (name, matches, verify))


def verify_signature(value, header, message, key_lookup, policy=None):
    """Verify ``value`` over ``header`` and ``message`` (as received).

    ``key_lookup(kid)`` returns a :class:`~dci.keys.PublicKey` or raises
    :class:`~dci.errors.UnknownKey`. Raises a :class:`~dci.errors.DCIError`.
    """
    policy = policy or SignaturePolicy()
    for name, matches, verify in SCHEMES:
        if matches(value):
            key, content_digest = verify(value, header, message, key_lookup, policy)
            return VerifiedSignature(name, key.kid, key.algorithm, content_digest)
    raise SignatureInvalid("no signature scheme accepts this signature")  # pragma: no cover


def sign_envelope(header, message, signing_key, *, now=None, lifetime=DEFAULT_LIFETIME):
    """Return a complete signed envelope dict for ``header`` and ``message``."""
    created = int(time.time() if now is None else now)
    signature = cavage.sign(header, message, signing_key, created=created, lifetime=lifetime)
    return {"signature": signature, "header": header, "message": message}
