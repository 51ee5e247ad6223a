"""Peer dialects: the small ways real DCI peers differ, as named presets.

A :class:`Dialect` says where a peer serves its operations (``/registry/{op}``
or ``/ibr/{op}``), what it does with our ``sender_uri`` (posts to it as given,
or appends ``/on-<action>`` to it), which signature form it reads and writes
(the DCI parameter list, or a compact JWS) and how our key ids look to it
(``sender|key|alg``, or the key's RFC 7638 JWK thumbprint). Facts behind the
presets: readme "Peers we interoperate with" and shared DCI notes.
"""

from dataclasses import dataclass, replace

from joserfc.jwk import OKPKey, RSAKey

from . import jws
from .errors import ConfigurationError
from .inbound import JSON
from .keys import ED25519, SigningKey
from .signatures import sign_envelope

__all__ = ["DIALECTS", "Dialect", "callback_target", "dialect", "thumbprint"]

FULL_URL = "full"  # the peer posts to sender_uri as given
BASE_URL = "base"  # the peer posts to sender_uri + "/on-<action>"
CAVAGE, JWS = "cavage", "jws"
DCI_KID, THUMBPRINT_KID = "dci", "thumbprint"


@dataclass(frozen=True)
class Dialect:
    name: str
    label: str
    operation_path: str = "/registry/{op}"
    callback_style: str = FULL_URL
    signature: str = CAVAGE
    kid_style: str = DCI_KID
    # what its callbacks say they are: OpenCRVS posts JSON without setting a
    # content type, so it arrives as text/plain
    callback_content_type: str = JSON
    explanation: str = ""

    def __post_init__(self):
        if "{op}" not in self.operation_path or not self.operation_path.startswith("/"):
            raise ConfigurationError(f"operation path {self.operation_path!r} lacks /...{{op}}")
        if self.callback_style not in (FULL_URL, BASE_URL):
            raise ConfigurationError(f"unknown callback style {self.callback_style!r}")
        if self.signature not in (CAVAGE, JWS) or self.kid_style not in (DCI_KID, THUMBPRINT_KID):
            raise ConfigurationError("unknown signature scheme or kid style")

    @property
    def callback_media_types(self):
        """What callbacks from this peer may declare (anything else: HTTP 415)."""
        return tuple(dict.fromkeys((JSON, self.callback_content_type.split(";")[0])))

    def path(self, operation):
        """The URL path of ``operation`` (``search``, ``sync/search``, ``txn/status`` ...)."""
        return self.operation_path.format(op=operation.strip("/"))

    def sender_uri(self, callback_url):
        """What to put in ``sender_uri`` for answers wanted at ``callback_url``
        (``.../on-search``): the URL itself, or the base the peer appends to."""
        if self.callback_style == FULL_URL or not callback_url:
            return callback_url
        base, _sep, _last = callback_url.rstrip("/").rpartition("/")
        return base

    def key_for(self, signing_key):
        """``signing_key`` under the kid this peer looks up."""
        if self.kid_style == DCI_KID:
            return signing_key
        return SigningKey(signing_key.private_key, thumbprint(signing_key))

    def sign(self, header, message, signing_key):
        """The signed envelope, in this peer's signature form."""
        key = self.key_for(signing_key)
        if self.signature == CAVAGE:
            return sign_envelope(header, message, key)
        return {"signature": jws.sign(header, message, key), "header": header, "message": message}

    def with_(self, **changes):
        """A custom dialect from this one."""
        return replace(self, name="custom", label="Custom", **changes)


def thumbprint(signing_key):
    """The RFC 7638 thumbprint of ``signing_key``'s public JWK (OpenCRVS's kid)."""
    jose = (OKPKey if signing_key.algorithm == ED25519 else RSAKey).import_key(
        signing_key.public.key
    )
    return jose.thumbprint()


def callback_target(sender_uri, action, style):
    """Where a peer of ``style`` posts its ``action`` (``on-search`` ...) answer."""
    if style == FULL_URL:
        return sender_uri
    return sender_uri.rstrip("/") + "/" + action


DIALECTS = {
    d.name: d
    for d in (
        Dialect(
            "openspp2",
            "OpenSPP 2 / SPDCI API",
            explanation="Operations under /registry/..., callbacks to the full URL we send, "
            "the DCI signature, key ids sender|key|algorithm.",
        ),
        Dialect(
            "spdci",
            "SPDCI reference IBR (mock-up)",
            operation_path="/ibr/{op}",
            explanation="Like OpenSPP 2, with the operations under /ibr/... "
            "(ibr/search, ibr/sync/search) as the SPDCI IBR mock-up serves them.",
        ),
        Dialect(
            "opencrvs",
            "OpenCRVS DCI API",
            signature=JWS,
            kid_style=THUMBPRINT_KID,
            callback_content_type="text/plain;charset=UTF-8",
            explanation="Requests signed as a compact JWS whose kid is our key's JWK "
            "thumbprint; OpenCRVS fetches our keys at <our sender id>/.well-known/jwks.json, "
            "so our sender id must be the URL of our API (ending in /dci_api). Its callbacks "
            "carry no content type (they arrive as text/plain): accepted from it as JSON.",
        ),
        Dialect(
            "openg2p",
            "OpenG2P G2P-Connect",
            callback_style=BASE_URL,
            explanation="The peer appends /on-<action> to the sender_uri we send, so we send "
            "our callback base (…/ibr); its callbacks are unsigned: refused unless the "
            "development switch is on.",
        ),
    )
}


def dialect(name):
    """The preset ``name`` (``openspp2`` when empty), or :class:`ConfigurationError`."""
    try:
        return DIALECTS[name or "openspp2"]
    except KeyError:
        raise ConfigurationError(f"unknown peer dialect {name!r}") from None
