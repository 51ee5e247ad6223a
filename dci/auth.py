"""Bearer credentials: a fixed token or OAuth2 client credentials for outgoing
requests, and the comparison of an incoming ``Authorization`` header."""

import hmac
import threading
import time

import requests

from . import jsontext
from .errors import ConfigurationError, PeerRejected, ServiceUnavailable

__all__ = ["BearerToken", "ClientCredentials", "MAX_TOKEN_LIFETIME", "bearer_matches"]

MAX_TOKEN_LIFETIME = 24 * 3600


def _utf8(text):
    # surrogatepass: even text that is not valid Unicode compares, as bytes
    return text.encode("utf-8", "surrogatepass")


def _header_safe(token):
    """A token an HTTP header can carry as it is."""
    return (
        isinstance(token, str) and bool(token.strip()) and token.isascii() and token.isprintable()
    )


def bearer_matches(header_value, token):
    """True when the ``Authorization`` value is ``Bearer <token>``, compared in constant time.

    Any value compares (``hmac.compare_digest`` raises ``TypeError`` on
    non-ASCII text, so both sides are compared as UTF-8 bytes).
    """
    if not isinstance(header_value, str) or not isinstance(token, str) or not token:
        return False
    scheme, _, credentials = header_value.strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        _utf8(credentials.strip()), _utf8(token)
    )


class BearerToken:
    """A fixed bearer token."""

    def __init__(self, token):
        self.token = token

    def headers(self):
        if not self.token:
            return {}
        if not _header_safe(self.token):
            raise ConfigurationError("the bearer token must be printable ASCII")
        return {"Authorization": f"Bearer {self.token}"}


class ClientCredentials:
    """OAuth2 client-credentials grant, token cached until shortly before expiry."""

    def __init__(
        self,
        token_url,
        client_id,
        client_secret,
        *,
        scope=None,
        session=None,
        timeout=10,
        clock=time.monotonic,
    ):
        self.token_url = token_url
        self._form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        }
        if scope:
            self._form["scope"] = scope
        self._session = session or _session()
        self._timeout = timeout
        self._clock = clock
        self._token = None
        self._valid_until = 0.0
        self._lock = threading.Lock()

    def headers(self):
        with self._lock:
            if self._token is None or self._clock() >= self._valid_until:
                self._token, lifetime = self._request_token()
                self._valid_until = self._clock() + max(lifetime - 30, 0)
        return {"Authorization": f"Bearer {self._token}"}

    def _request_token(self):
        try:
            response = self._session.post(self.token_url, data=self._form, timeout=self._timeout)
        except requests.RequestException:
            raise ServiceUnavailable("the OAuth2 token endpoint cannot be reached") from None
        if response.status_code != 200:
            raise PeerRejected(
                f"the OAuth2 token endpoint answered HTTP {response.status_code}",
                code="err.request.unauthorized",
                http_status=401,
            )
        try:
            body = jsontext.loads(response.content)
            token, lifetime = body["access_token"], int(body.get("expires_in", 300))
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError):
            raise PeerRejected("the OAuth2 token endpoint gave no usable token") from None
        if not _header_safe(token):
            raise PeerRejected("the OAuth2 token endpoint gave no usable token")
        # a token said to last for ever is still asked for again now and then
        return token, min(max(lifetime, 0), MAX_TOKEN_LIFETIME)


def _session():
    session = requests.Session()
    session.trust_env = False  # like every core request: no proxy from the environment
    return session
