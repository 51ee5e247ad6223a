"""One error hierarchy for the protocol core.

Every error carries a machine ``code`` taken from the SPDCI acknowledgement
error enum (``err.*``), so callers can answer an ``ERR`` ack without a
translation table, and an HTTP status that fits it.

It is also classified once, here: ``kind`` (one of ``FAILURE_KINDS``) says
what went wrong in a word a caller can map to its own text, and
``transient`` whether sending the same message again later may succeed (a
network blip, an overloaded or failing IBR) or not (a coded refusal, an
answer we cannot trust). ``retry_after`` is the peer's own "try again in"
(seconds), when it gave one.
"""

__all__ = [
    "FAILURE_KINDS",
    "BodyTooLarge",
    "ConfigurationError",
    "DCIError",
    "EncryptionInvalid",
    "EnvelopeError",
    "KeyFormatError",
    "LengthRequired",
    "PeerRejected",
    "PeerUnreachable",
    "PrivateAddress",
    "ReceiverInvalid",
    "ReplayDetected",
    "RequestTimeout",
    "SenderInvalid",
    "SenderUriInvalid",
    "PeerServerError",
    "ServiceUnavailable",
    "SignatureExpired",
    "SignatureInvalid",
    "SignatureMissing",
    "SignatureNotYetValid",
    "TooManyRequests",
    "Unauthorized",
    "UnknownKey",
    "UnreadableAnswer",
    "UnsafeURL",
    "UnsupportedMediaType",
    "VersionNotSupported",
]

# Every ``kind`` an error can have. Transient: unreachable, ibr_error, throttled
# and (an answer to our request that cannot be read) unreadable.
FAILURE_KINDS = (
    "unreachable",  # no connection, reset, or no acknowledgement in time
    "ibr_error",  # the IBR answered HTTP 5xx
    "throttled",  # the IBR answered HTTP 429
    "unreadable",  # what arrived is not a readable DCI message
    "credentials",  # the IBR refused our token (HTTP 401/403, err.request.unauthorized/forbidden)
    "not_trusted",  # the IBR does not know our sender id or key (err.signature.*, err.sender_id.*)
    "misaddressed",  # wrong receiver id, callback address or URL (HTTP 404)
    "refused",  # any other coded refusal (ERR / NACK acknowledgement, HTTP 4xx)
    "answer_refused",  # an answer we cannot trust (signature, sender, replay)
    "configuration",  # our side cannot do it as configured
)

# PeerRejected's kind, by the refusal's err.* code
_KIND_OF_CODE = {
    "err.request.unauthorized": "credentials",
    "err.request.forbidden": "credentials",
    "err.sender_id.invalid": "not_trusted",
    "err.receiver_id.invalid": "misaddressed",
    "err.sender_uri.invalid": "misaddressed",
}


class DCIError(Exception):
    """Root of every protocol error; ``code`` is a spec ``err.*`` code."""

    code = "err.request.bad"
    http_status = 400
    kind = "refused"
    transient = False
    retry_after = None  # seconds, as the peer asked

    def __init__(self, message=None):
        text = str(message) if message else self.__doc__.strip().splitlines()[0]
        # Messages quote peer text; lone surrogates in it would break every
        # UTF-8 writer downstream (logs, JSON answers), so escape them here, once.
        self.message = text.encode("utf-8", "backslashreplace").decode("utf-8")
        super().__init__(self.message)

    def __repr__(self):
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"


class EnvelopeError(DCIError):
    """The message is not a valid DCI envelope."""

    kind = "unreadable"


class UnreadableAnswer(EnvelopeError):
    """The peer's answer to our request cannot be read (not JSON, not an acknowledgement)."""

    transient = True  # a proxy's error page, a truncated answer: the next try may be fine


class BodyTooLarge(EnvelopeError):
    """The body is larger than this receiver accepts."""

    http_status = 413


class UnsupportedMediaType(EnvelopeError):
    """The body is not declared as JSON."""

    http_status = 415


class LengthRequired(EnvelopeError):
    """The request does not declare its body length."""

    http_status = 411


class RequestTimeout(EnvelopeError):
    """The request did not arrive in time."""

    code = "err.request.timeout"
    http_status = 408


class EncryptionInvalid(EnvelopeError):
    """Encrypted messages are not supported here."""

    code = "err.encryption.invalid"


class VersionNotSupported(DCIError):
    """The protocol version is not supported."""

    code = "err.version.not_supported"


class SignatureMissing(DCIError):
    """The message carries no signature."""

    code = "err.signature.missing"
    http_status = 401
    kind = "answer_refused"


class SignatureInvalid(DCIError):
    """The signature does not verify."""

    code = "err.signature.invalid"
    http_status = 401
    kind = "answer_refused"


class SignatureExpired(SignatureInvalid):
    """The signature has expired."""


class SignatureNotYetValid(SignatureInvalid):
    """The signature is created in the future (beyond the clock skew allowed)."""


class UnknownKey(SignatureInvalid):
    """No trusted key has the signature's key id."""


class ReplayDetected(DCIError):
    """This message id was already used with different content."""

    # The spec's ERR codes have none for a replay: it is a bad request, and
    # 409 says "conflicts with what was received before", not "sign again".
    http_status = 409
    kind = "answer_refused"


class SenderInvalid(DCIError):
    """The sender is unknown, inactive or not allowed here."""

    code = "err.sender_id.invalid"
    http_status = 403
    kind = "answer_refused"


class SenderUriInvalid(DCIError):
    """The callback address (sender_uri) is not allowed."""

    code = "err.sender_uri.invalid"


class ReceiverInvalid(DCIError):
    """The message is addressed to another receiver."""

    code = "err.receiver_id.invalid"
    http_status = 403
    kind = "answer_refused"


class KeyFormatError(DCIError):
    """A key or key set is malformed or not acceptable."""

    kind = "configuration"


class UnsafeURL(DCIError):
    """The URL may not be fetched (scheme or address not allowed)."""

    kind = "configuration"


class PrivateAddress(UnsafeURL):
    """The URL leads to a loopback, private or otherwise non-public address."""


class ConfigurationError(DCIError):
    """This configuration cannot do what was asked (for example: no key to verify answers)."""

    kind = "configuration"


class TooManyRequests(DCIError):
    """Too many requests; try again later."""

    code = "err.request.too_many_requests"
    http_status = 429
    kind = "throttled"
    transient = True

    def __init__(self, message=None, retry_after=None):
        super().__init__(message)
        self.retry_after = retry_after


class ServiceUnavailable(DCIError):
    """The peer or this service is unavailable; try again later."""

    code = "err.service.unavailable"
    http_status = 503
    kind = "unreachable"
    transient = True


class PeerUnreachable(ServiceUnavailable):
    """The peer could not be reached, reset the connection or did not answer in time."""


class PeerServerError(ServiceUnavailable):
    """The peer was reached but failed: it answered HTTP 5xx (``peer_status``)."""

    kind = "ibr_error"

    def __init__(self, peer_status, retry_after=None):
        super().__init__(f"the IBR answered HTTP {peer_status} (server error)")
        self.peer_status = peer_status
        self.retry_after = retry_after


class PeerRejected(DCIError):
    """The peer refused our message (an ERR or NACK acknowledgement, HTTP 4xx)."""

    def __init__(self, message=None, code=None, http_status=None):
        super().__init__(message)
        if isinstance(code, str) and code.strip():  # peers send anything: keep only text
            self.code = code.strip()[:99]
        if http_status:
            self.http_status = http_status
        self.kind = _refusal_kind(self.code, http_status)


def _refusal_kind(code, http_status):
    """What a peer's coded refusal is about (always permanent: resending will not help)."""
    if code in _KIND_OF_CODE:
        return _KIND_OF_CODE[code]
    if code.startswith("err.signature."):
        return "not_trusted"
    if http_status in (401, 403):
        return "credentials"
    if http_status in (404, 405):
        return "misaddressed"
    return "refused"


class Unauthorized(DCIError):
    """The request lacks the credentials this receiver requires."""

    code = "err.request.unauthorized"
    http_status = 401
    kind = "credentials"
