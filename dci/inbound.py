"""Accepting a message from a peer: parse, authenticate, validate, de-duplicate.

:func:`accept` is the one path every inbound envelope takes (callbacks, the
simulator's requests, the client's synchronous answers), in this order so
that a forgery costs little and nothing is remembered for a message that is
later refused:

1. the body: size cap, a JSON object (the parser's own recursion bound);
2. the header: shape, ``action``, version, ``receiver_id``, and encryption
   when the sender must encrypt;
3. the signature: trusted sender, key by kid (one refresh on unknown kid),
   over the message as sent (encrypted, when it is);
4. decryption with our key (by ``kid``), for an encrypted message;
5. the message: bounded nesting and shape for that action (the walks over a
   large message, paid only for an authentic one);
6. the replay guard: new, duplicate (ack, do nothing) or replay (refuse).

Whatever the bytes, the outcome is :class:`Accepted` or a
:class:`~dci.errors.DCIError`.
"""

import logging
from dataclasses import dataclass

from pydantic import BaseModel, ValidationError

from . import jsontext, jwe
from .canonical import digest
from .cavage import SignatureParams
from .errors import (
    BodyTooLarge,
    DCIError,
    EncryptionInvalid,
    EnvelopeError,
    ReceiverInvalid,
    SenderInvalid,
    SignatureMissing,
    UnknownKey,
    UnsupportedMediaType,
    VersionNotSupported,
)
from .keys import KeyId
from .replay import NEW
from .schemas import CallbackHeader, RequestHeader
from .signatures import SignaturePolicy, VerifiedSignature, is_unsigned, verify_signature

__all__ = [
    "Accepted",
    "MAX_BODY_BYTES",
    "MAX_DEPTH",
    "accept",
    "check_request_headers",
    "claimed_ids",
    "parse_body",
    "validate",
]

_logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 2 * 1024 * 1024
JSON = "application/json"
JSON_ONLY = (JSON,)  # what request bodies may say they are, unless a peer's dialect adds one
MAX_DEPTH = jsontext.MAX_DEPTH
# The spec gives these answers the callback header (``status`` required);
# on-subscribe and on-unsubscribe have the request header, though peers add
# a status to it; notify (and the answer to enrolment updates) the callback one.
CALLBACK_HEADER_ACTIONS = frozenset({"on-search", "txn-on-status", "notify", "on-notify"})


@dataclass(frozen=True)
class Accepted:
    """An envelope that passed every check."""

    envelope: dict
    header: BaseModel
    message: BaseModel | None
    sender_id: str
    signature: VerifiedSignature | None  # None only in development mode
    delivery: str  # replay.NEW or replay.DUPLICATE
    encrypted: bool = False  # the message came encrypted (``envelope`` keeps it so)

    @property
    def is_duplicate(self):
        return self.delivery != NEW


def check_request_headers(
    content_type, content_length, max_bytes=MAX_BODY_BYTES, media_types=JSON_ONLY
):
    """Refuse what the request headers already show; return the declared body length.

    ``media_types``: the content types taken (the body is read as JSON whatever
    it says: a peer's dialect may send JSON under another type).

    Returns ``None`` when no ``Content-Length`` is given (a streamed body, which
    the reader must still cap). Raises an :class:`EnvelopeError` subclass whose
    ``http_status`` fits: 415 not JSON, 413 too large, 400 a malformed length.
    """
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in media_types:
        raise UnsupportedMediaType(
            f"content type must be {' or '.join(media_types)}, not {media or 'none'}"
        )
    if content_length is None or not content_length.strip():
        return None
    declared = content_length.strip()
    # ASCII digits only: str.isdigit() also takes "\u00b2", which int() refuses
    if not (declared.isascii() and declared.isdigit()):
        raise EnvelopeError(f"Content-Length {content_length!r} is not a byte count")
    if len(declared) > 18 or int(declared) > max_bytes:
        raise BodyTooLarge(f"body of {declared[:20]} bytes exceeds the {max_bytes} allowed")
    return int(declared)


def parse_body(raw, *, max_bytes=MAX_BODY_BYTES, max_depth=MAX_DEPTH):
    """Decode a request body into an envelope dict, or raise :class:`EnvelopeError`."""
    if len(raw) > max_bytes:
        raise BodyTooLarge(f"body of {len(raw)} bytes exceeds the {max_bytes} allowed")
    try:
        envelope = jsontext.loads(raw, max_depth)
    except jsontext.NestingTooDeep as exc:
        raise EnvelopeError(str(exc)) from None
    except ValueError:
        raise EnvelopeError("body is not valid JSON") from None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("header"), dict):
        raise EnvelopeError("body is not an envelope with a header object")
    if "message" in envelope and not isinstance(envelope["message"], dict):
        raise EnvelopeError("envelope message must be an object")
    return envelope


def claimed_ids(raw, max_bytes=MAX_BODY_BYTES):
    """The ids a refused body claims (``sender_id``, ``message_id``,
    ``transaction_id``), to say what was refused; ``{}`` when it has none.

    Nothing here is verified: use them to point at what the message says it
    is, never to apply it. Each is a short single-line text or absent.
    """
    try:
        envelope = parse_body(raw, max_bytes=max_bytes)
    except EnvelopeError:
        return {}
    message = envelope.get("message")
    found = {
        "sender_id": envelope["header"].get("sender_id"),
        "message_id": envelope["header"].get("message_id"),
        "transaction_id": message.get("transaction_id") if isinstance(message, dict) else None,
    }
    return {
        name: value
        for name, value in found.items()
        if isinstance(value, str) and 0 < len(value) <= 99 and value.isprintable()
    }


def validate(model, data, what):
    """``model`` validated from ``data``, or :class:`EnvelopeError` naming the first problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or what
        raise EnvelopeError(f"{what}.{where}: {first['msg']}") from None


def _check_header(header, action, our_id):
    if header.action != action:
        raise EnvelopeError(f"header.action {header.action!r} does not belong on {action!r}")
    if header.version.partition(".")[0] != "1":
        raise VersionNotSupported(f"protocol version {header.version!r} is not supported")
    if header.receiver_id and our_id:
        ours = {our_id} if isinstance(our_id, str) else set(our_id)
        if ours and header.receiver_id not in ours:
            raise ReceiverInvalid(f"message is addressed to {header.receiver_id!r}")


def _per_sender(value, sender_id):
    return value(sender_id) if callable(value) else value


def accept(
    raw,
    *,
    action,
    message_model,
    our_id,
    trust,
    replay_guard,
    policy=None,
    allow_unsigned=False,
    callback=True,
    max_bytes=MAX_BODY_BYTES,
    decryption_keys=(),
    require_encryption=False,
):
    """Run every inbound check on ``raw`` (bytes) and return :class:`Accepted`.

    ``message_model`` validates the message; it may be absent when the header
    reports a rejection (``status: rjct``). ``our_id`` is our receiver id (or a
    collection of them); ``callback`` picks the header schema (``"auto"``: the
    callback header for :data:`CALLBACK_HEADER_ACTIONS`, otherwise by the
    presence of ``status``). ``decryption_keys`` are our
    :class:`~dci.jwe.EncryptionKey` objects, ``require_encryption`` refuses a
    plain message; either may be a function of the (trusted) sender id.
    Raises a :class:`~dci.errors.DCIError`.
    """
    policy = policy or SignaturePolicy()
    envelope = parse_body(raw, max_bytes=max_bytes, max_depth=None)
    if callback == "auto":
        callback = action in CALLBACK_HEADER_ACTIONS or "status" in envelope["header"]
    header = validate(CallbackHeader if callback else RequestHeader, envelope["header"], "header")
    _check_header(header, action, our_id)

    signature = envelope.get("signature")
    sender_id = header.sender_id or _sender_from_kid(signature)
    if not sender_id:
        raise SenderInvalid("the message names no sender")
    keys = trust.keys_for(sender_id)
    content = envelope.get("message", {})
    encrypted = header.is_msg_encrypted
    if not encrypted and content and _per_sender(require_encryption, sender_id):
        raise EncryptionInvalid("this sender must encrypt its messages (is_msg_encrypted)")
    if is_unsigned(signature):
        if not allow_unsigned:
            raise SignatureMissing()
        _logger.warning("DEVELOPMENT MODE: accepting an unsigned %s from %s", action, sender_id)
        _check_depth(envelope)
        verified = None
        content_digest = digest(envelope["header"], content)
        keep_until = policy.clock() + policy.max_lifetime
    else:
        verified = _verify(signature, envelope["header"], content, keys, trust, sender_id, policy)
        _check_depth(envelope)
        content_digest = verified.digest
        keep_until = policy.clock() + policy.max_lifetime + policy.skew

    if encrypted:  # after the signature: a forgery costs no decryption
        content = jwe.decrypt(content, _per_sender(decryption_keys, sender_id) or ())
    message = None
    if content or getattr(header, "status", "succ") != "rjct":
        message = validate(message_model, content, "message")
    delivery = replay_guard.register(sender_id, header.message_id, content_digest, keep_until)
    return Accepted(envelope, header, message, sender_id, verified, delivery, encrypted)


def _check_depth(envelope):
    try:
        jsontext.check_depth(envelope, MAX_DEPTH)
    except jsontext.NestingTooDeep as exc:
        raise EnvelopeError(str(exc)) from None


def _sender_from_kid(signature):
    try:
        return KeyId.parse(SignatureParams.parse(signature).kid).sender_id
    except DCIError:  # no usable kid: the caller reports "no sender"
        return None


def _verify(signature, header, message, keys, trust, sender_id, policy):
    try:
        return verify_signature(signature, header, message, keys.get, policy)
    except UnknownKey:
        refreshed = trust.refresh(sender_id)
        if refreshed is None:
            raise
        return verify_signature(signature, header, message, refreshed.get, policy)
