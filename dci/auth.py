"""Bearer credentials for outgoing requests: a fixed token or OAuth2 client credentials."""

import threading
import time

import requests

from .errors import PeerRejected, ServiceUnavailable

__all__ = ["BearerToken", "ClientCredentials", "MAX_TOKEN_LIFETIME"]

MAX_TOKEN_LIFETIME = 24 * 3600


class BearerToken:
    """A fixed bearer token."""

    def __init__(self, token):
        self.token = token

    def headers(self):
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


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
        self._session = session or requests.Session()
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
            body = response.json()
            token, lifetime = body["access_token"], int(body.get("expires_in", 300))
        except (ValueError, KeyError, TypeError, OverflowError):  # OverflowError: Infinity
            raise PeerRejected("the OAuth2 token endpoint gave no usable token") from None
        if not isinstance(token, str) or not token.strip():
            raise PeerRejected("the OAuth2 token endpoint gave no usable token")
        # a token said to last for ever is still asked for again now and then
        return token, min(max(lifetime, 0), MAX_TOKEN_LIFETIME)
