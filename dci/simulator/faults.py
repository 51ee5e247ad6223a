"""The simulator's fault plan: a bad network and a misbehaving IBR, reproducibly.

    FaultPlan.parse("seed=7,drop=0.02,duplicate=0.1,http-503=0.05,reset=0.05")

Each kind of fault has a rate between 0 and 1. Whether a fault hits a
transaction is decided by a hash of the seed, the kind and the transaction
id, not by a shared random stream: the same plan picks the same
transactions whatever order the threads run in, so a run can be repeated.
Faults "on the first try" hit only the first request carrying a transaction
id; the client's resend under the same id then goes through.
"""

import hashlib
from dataclasses import dataclass, field

__all__ = ["FAULT_KINDS", "FaultPlan"]

FAULT_KINDS = {
    "drop": "the answer is never called back (a status request still finds it)",
    "duplicate": "every callback is sent twice, one after the other",
    "concurrent-duplicate": "every callback is sent twice at the same moment",
    "reorder": "the pages of an answer are called back last page first",
    "delay": "the callbacks are sent late (after delay-seconds)",
    "early": "the callbacks are sent before the request is acknowledged",
    "http-503": "the first try of a request is answered HTTP 503 (with Retry-After)",
    "http-429": "the first try of a request is answered HTTP 429 (with Retry-After)",
    "reset": "the first try of a request is cut off: the connection closes without an answer",
    "stall": "the first try is processed, but acknowledged only after stall-seconds",
    "bad-signature": "every callback is sent first with a broken signature, then genuine",
}
FIRST_TRY = frozenset({"http-503", "http-429", "reset", "stall"})
# settings beside the rates: name -> (attribute, type)
_SETTINGS = {
    "seed": ("seed", int),
    "delay-seconds": ("delay", float),
    "stall-seconds": ("stall", float),
    "retry-after": ("retry_after", int),
}


@dataclass(frozen=True)
class FaultPlan:
    """Rates per fault kind (``FAULT_KINDS``), a seed, and the faults' timings."""

    rates: dict = field(default_factory=dict)
    seed: int = 0
    delay: float = 2.0  # seconds a delayed callback waits
    stall: float = 3.0  # seconds a stalled acknowledgement waits (above the client's timeout)
    retry_after: int = 1  # seconds the 503 and 429 answers ask for

    def __post_init__(self):
        unknown = set(self.rates) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds: {', '.join(sorted(unknown))}")
        for kind, rate in self.rates.items():
            if not 0 <= rate <= 1:
                raise ValueError(f"the rate of {kind} must be between 0 and 1, not {rate}")

    @classmethod
    def parse(cls, text):
        """``"seed=7,drop=0.1,reset=0.05,delay-seconds=2"``: rates per kind, and
        the settings ``seed``, ``delay-seconds``, ``stall-seconds``, ``retry-after``."""
        rates, settings = {}, {}
        for part in filter(None, (p.strip() for p in (text or "").split(","))):
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep:
                raise ValueError(f"{part!r} is not name=value")
            try:
                if name in _SETTINGS:
                    attribute, kind = _SETTINGS[name]
                    settings[attribute] = kind(value)
                else:
                    rates[name] = float(value)
            except ValueError:
                raise ValueError(f"{part!r}: {value!r} is not a number") from None
        return cls(rates=rates, **settings)

    def __bool__(self):
        return any(self.rates.values())

    def hits(self, kind, key):
        """Whether fault ``kind`` hits the transaction ``key`` (deterministic)."""
        rate = self.rates.get(kind, 0)
        if rate <= 0:
            return False
        if rate >= 1:
            return True
        digest = hashlib.sha256(f"{self.seed}|{kind}|{key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < rate

    def describe(self):
        """One line: the rates and settings of this plan."""
        rates = ", ".join(f"{kind} {rate:g}" for kind, rate in sorted(self.rates.items()))
        return (
            f"faults (seed {self.seed}): {rates or 'none'}; delay {self.delay:g} s, "
            f"stall {self.stall:g} s, Retry-After {self.retry_after} s"
        )
