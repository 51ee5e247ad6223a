"""Whose keys we trust: the sender registry the verifier consults.

The Odoo shell implements :class:`TrustStore` over its sender records; the
CLI, the simulator and the client trust the one peer they talk to through
:class:`TrustedKeys` (or :class:`JwksKeys`, read from its JWKS), or several through
:class:`StaticTrustStore`. A store may refresh a sender's keys when a signature names a
kid it does not know, at most once per ``min_interval`` seconds per sender
(:class:`RefreshLimiter`).
"""

import threading
import time
from abc import ABC, abstractmethod

from .errors import DCIError, SenderInvalid
from .keys import KeySet, parse_jwks
from .netguard import fetch_json

__all__ = [
    "JwksKeys",
    "RefreshLimiter",
    "StaticTrustStore",
    "TrustStore",
    "TrustedKeys",
    "fetch_jwks",
]


def fetch_jwks(url, policy=None):
    """The :class:`~dci.keys.KeySet` published at ``url`` (a :class:`DCIError` if none)."""
    return parse_jwks(fetch_json(url, policy))


class TrustStore(ABC):
    @abstractmethod
    def keys_for(self, sender_id):
        """The :class:`~dci.keys.KeySet` of an active trusted sender, or raise SenderInvalid."""

    def refresh(self, sender_id):
        """Fetch the sender's keys again if allowed now; return the new KeySet or ``None``."""
        return None


class RefreshLimiter:
    """Allows one refresh per key per ``min_interval`` seconds."""

    def __init__(self, min_interval=300, clock=time.monotonic):
        self.min_interval = min_interval
        self._clock = clock
        self._last = {}
        self._lock = threading.Lock()

    def allow(self, key):
        with self._lock:
            now = self._clock()
            last = self._last.get(key)
            if last is not None and now - last < self.min_interval:
                return False
            self._last[key] = now
            return True

    def wait(self, key):
        """Seconds until :meth:`allow` would allow ``key`` (0: now)."""
        with self._lock:
            last = self._last.get(key)
            if last is None:
                return 0
            return max(0, self.min_interval - (self._clock() - last))


class StaticTrustStore(TrustStore):
    """Senders and their key sets held in memory, optionally refreshable.

    ``fetch(sender_id)`` returns a fresh :class:`~dci.keys.KeySet` (for
    example from the sender's JWKS); it is called at most once per interval.
    """

    def __init__(self, senders=None, fetch=None, limiter=None):
        self._senders = dict(senders or {})
        self._fetch = fetch
        self.limiter = limiter or RefreshLimiter()

    def keys_for(self, sender_id):
        try:
            return self._senders[sender_id]
        except KeyError:
            raise SenderInvalid(f"sender {sender_id!r} is not trusted") from None

    def refresh(self, sender_id):
        if self._fetch is None or sender_id not in self._senders:
            return None
        if not self.limiter.allow(sender_id):
            return None
        self._senders[sender_id] = self._fetch(sender_id)
        return self._senders[sender_id]


class TrustedKeys(TrustStore):
    """The one peer we talk to directly: its key set verifies whatever sender id it names.

    (The CLI trusts its registry's JWKS, the simulator its client's, an
    :class:`~dci.client.IbrClient` its IBR's keys.)
    """

    def __init__(self, keys):
        self.keys = keys

    def keys_for(self, sender_id):
        return self.keys


class JwksKeys(TrustedKeys):
    """The one peer we talk to, its keys read from its JWKS at ``url``.

    Read when made, and again when a signature names a kid not in it: at most once per
    ``min_interval`` seconds, the first time at once (a peer often makes its key after we
    started). A failed read keeps the keys we had and says why in ``error``.
    """

    def __init__(self, url, min_interval=300, policy=None):
        super().__init__(KeySet())
        self.url = url
        self.policy = policy
        self.limiter = RefreshLimiter(min_interval)
        self.error = None
        self._read()

    def refresh(self, sender_id):
        if self.limiter.allow(self.url) and self._read():
            return self.keys
        return None

    def _read(self):
        try:
            self.keys = fetch_jwks(self.url, self.policy)
        except DCIError as exc:  # unreachable or unusable: signatures stay unverifiable
            self.error = exc.message
            return False
        self.error = None
        return True
