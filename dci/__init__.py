"""Protocol core of the SPDCI IBR client: no Odoo here.

Modules, one job each:

- :mod:`.schemas`    envelope models (pydantic v2) after the IBR OpenAPI
- :mod:`.messages`   builders for what we send (headers, searches, acks)
- :mod:`.canonical`  the canonical digest of header + message
- :mod:`.cavage`     the DCI parameter-list signature scheme
- :mod:`.jws`        the compact-JWS signature form (OpenCRVS family)
- :mod:`.jwe`        encrypted messages (the spec's ``EncryptedMessage``)
- :mod:`.dialects`   the small ways real peers differ, as presets
- :mod:`.signatures` scheme dispatch and the time policy
- :mod:`.keys`       JWK/JWKS, key ids, key sets, our signing keys
- :mod:`.trust`      trusted senders and rate-limited key refresh
- :mod:`.replay`     replay guard (interface + in-memory)
- :mod:`.inbound`    the one path every received envelope takes
- :mod:`.interpret`  what an IBR answer means for a duplicate check
- :mod:`.client`     signed requests to an IBR
- :mod:`.netguard`   fetching peer URLs without reaching private networks
- :mod:`.auth`       bearer token / OAuth2 client credentials
- :mod:`.errors`     one error hierarchy with spec ``err.*`` codes
"""

from .errors import *  # noqa: F403 - the error classes are part of the public API
from .errors import __all__ as _errors_all
from .inbound import Accepted, accept, parse_body
from .interpret import (
    CONFIRMED_MATCH,
    NO_MATCH,
    POSSIBLE_MATCH,
    Interpretation,
    classify,
    interpret_item,
)
from .keys import (
    KeyId,
    KeySet,
    PublicKey,
    SigningKey,
    normalise_algorithm,
    parse_jwks,
    public_key_from_jwk,
    public_key_from_pem,
)
from .messages import SearchQuery
from .replay import InMemoryReplayGuard, ReplayGuard
from .signatures import SignaturePolicy, sign_envelope, verify_signature
from .trust import StaticTrustStore, TrustStore

__all__ = [
    *_errors_all,
    "Accepted",
    "CONFIRMED_MATCH",
    "InMemoryReplayGuard",
    "Interpretation",
    "KeyId",
    "KeySet",
    "NO_MATCH",
    "POSSIBLE_MATCH",
    "PublicKey",
    "ReplayGuard",
    "SearchQuery",
    "SignaturePolicy",
    "SigningKey",
    "StaticTrustStore",
    "TrustStore",
    "accept",
    "classify",
    "interpret_item",
    "normalise_algorithm",
    "parse_body",
    "parse_jwks",
    "public_key_from_jwk",
    "public_key_from_pem",
    "sign_envelope",
    "verify_signature",
]
