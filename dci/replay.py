"""Replay guard: has this sender already used this ``message_id``?

A redelivery of the same content (an IBR retrying after a lost ack) is a
*duplicate*: acknowledge it, apply nothing. The same ``message_id`` with
different content is a *replay* and is refused. Entries are kept until the
signature that carried them expires, after which the signature check
itself refuses the message.
"""

import threading
import time
from abc import ABC, abstractmethod

from .errors import ReplayDetected

__all__ = ["NEW", "DUPLICATE", "InMemoryReplayGuard", "ReplayGuard"]

NEW = "new"
DUPLICATE = "duplicate"


class ReplayGuard(ABC):
    """Persistence of seen ``(sender_id, message_id)`` pairs within a window."""

    @abstractmethod
    def lookup(self, sender_id, message_id):
        """The content digest remembered for this pair, or ``None``."""

    @abstractmethod
    def remember(self, sender_id, message_id, digest, keep_until):
        """Remember the pair until ``keep_until`` (Unix time)."""

    def register(self, sender_id, message_id, digest, keep_until):
        """Return :data:`NEW` or :data:`DUPLICATE`; raise :class:`ReplayDetected`."""
        seen = self.lookup(sender_id, message_id)
        if seen is None:
            self.remember(sender_id, message_id, digest, keep_until)
            return NEW
        if seen == digest:
            return DUPLICATE
        raise ReplayDetected(f"message_id {message_id!r} was already used with other content")


class InMemoryReplayGuard(ReplayGuard):
    """Process-local guard for the CLI, the simulator and tests."""

    def __init__(self, clock=time.time):
        self._seen = {}
        self._lock = threading.Lock()
        self._clock = clock

    def lookup(self, sender_id, message_id):
        entry = self._seen.get((sender_id, message_id))
        if entry and entry[1] >= self._clock():
            return entry[0]
        return None

    def remember(self, sender_id, message_id, digest, keep_until):
        # callers go through register(), which holds the lock
        if len(self._seen) > 10_000:  # bound memory: drop what has expired
            now = self._clock()
            self._seen = {k: v for k, v in self._seen.items() if v[1] >= now}
        self._seen[(sender_id, message_id)] = (digest, keep_until)

    def register(self, sender_id, message_id, digest, keep_until):
        with self._lock:  # lookup+remember must be atomic across threads
            return super().register(sender_id, message_id, digest, keep_until)
