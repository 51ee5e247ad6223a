"""One error hierarchy for the protocol core.

Every error carries a machine ``code`` taken from the SPDCI acknowledgement
error enum (``err.*``), so callers can answer an ``ERR`` ack without a
translation table, and an HTTP status that fits it.
"""

__all__ = [
    "BodyTooLarge",
    "ConfigurationError",
    "DCIError",
    "EncryptionInvalid",
    "EnvelopeError",
    "KeyFormatError",
    "LengthRequired",
    "PeerRejected",
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
    "UnsafeURL",
    "UnsupportedMediaType",
    "VersionNotSupported",
]


class DCIError(Exception):
    """Root of every protocol error; ``code`` is a spec ``err.*`` code."""

    code = "err.request.bad"
    http_status = 400

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


class SignatureInvalid(DCIError):
    """The signature does not verify."""

    code = "err.signature.invalid"
    http_status = 401


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


class SenderInvalid(DCIError):
    """The sender is unknown, inactive or not allowed here."""

    code = "err.sender_id.invalid"
    http_status = 403


class SenderUriInvalid(DCIError):
    """The callback address (sender_uri) is not allowed."""

    code = "err.sender_uri.invalid"


class ReceiverInvalid(DCIError):
    """The message is addressed to another receiver."""

    code = "err.receiver_id.invalid"
    http_status = 403


class KeyFormatError(DCIError):
    """A key or key set is malformed or not acceptable."""


class UnsafeURL(DCIError):
    """The URL may not be fetched (scheme or address not allowed)."""


class PrivateAddress(UnsafeURL):
    """The URL leads to a loopback, private or otherwise non-public address."""


class ConfigurationError(DCIError):
    """This configuration cannot do what was asked (for example: no key to verify answers)."""


class TooManyRequests(DCIError):
    """Too many requests; try again later."""

    code = "err.request.too_many_requests"
    http_status = 429


class ServiceUnavailable(DCIError):
    """The peer or this service is unavailable; try again later."""

    code = "err.service.unavailable"
    http_status = 503


class PeerServerError(ServiceUnavailable):
    """The peer was reached but failed: it answered HTTP 5xx (``peer_status``)."""

    def __init__(self, peer_status):
        super().__init__(f"the IBR answered HTTP {peer_status} (server error)")
        self.peer_status = peer_status


class PeerRejected(DCIError):
    """The peer refused our message (an ERR or NACK acknowledgement, HTTP 4xx)."""

    def __init__(self, message=None, code=None, http_status=None):
        super().__init__(message)
        if isinstance(code, str) and code.strip():  # peers send anything: keep only text
            self.code = code.strip()[:99]
        if http_status:
            self.http_status = http_status


class Unauthorized(DCIError):
    """The request lacks the credentials this receiver requires."""

    code = "err.request.unauthorized"
    http_status = 401
