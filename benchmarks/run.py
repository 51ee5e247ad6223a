"""Core benchmarks, measured in one run on this machine (they assert nothing).

    python benchmarks/run.py            # all of them
    python benchmarks/run.py verify     # one: verify | forged | batch | keys | memory

1. verify: the full inbound path on a signed 1-item on-search envelope vs the
   raw floor (json.loads + one raw cryptography verify). Reported only: the
   old "<= 1.5x" target is retired, simplicity won over micro-speed.
   forged: refusing a forged ~1 MB on-search (right kid, wrong signature) vs
   accepting the genuine one: authentication runs before the message is
   validated, so the forgery costs less.
2. batch: 1,000 identifiers against the simulator at 20 ms per request, batched
   (100 per signed message) vs one request per identifier. Target >= 20x.
3. keys: JWKS fetches caused by 1,000 callbacks under a rotated / unknown kid.
   Target: at most one fetch per refresh interval.
4. memory: peak traced memory while accepting the largest accepted body,
   as a multiple of the body size.
The Odoo correlation benchmark is benchmarks/odoo_correlation.py (needs Odoo).
"""

import base64
import dataclasses
import json
import sys
import time
import tracemalloc
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dci import messages  # noqa: E402
from dci.canonical import digest  # noqa: E402
from dci.cavage import SignatureParams, build_signing_string  # noqa: E402
from dci.client import IbrClient  # noqa: E402
from dci.errors import SignatureInvalid  # noqa: E402
from dci.inbound import MAX_BODY_BYTES, accept  # noqa: E402
from dci.keys import KeySet, SigningKey  # noqa: E402
from dci.replay import InMemoryReplayGuard  # noqa: E402
from dci.schemas import SearchResponse  # noqa: E402
from dci.signatures import sign_envelope  # noqa: E402
from dci.simulator import IbrSimulator, beneficiary  # noqa: E402
from dci.trust import RefreshLimiter, StaticTrustStore  # noqa: E402

ROWS = []


def report(name, value, baseline, unit, target):
    ratio = value / baseline if baseline else float("inf")
    ROWS.append((name, f"{value:.1f} {unit}", f"{baseline:.1f} {unit}", f"{ratio:.2f}x", target))
    print(
        f"{name}: {value:.1f} {unit} vs {baseline:.1f} {unit} -> {ratio:.2f}x (target {target})",
        flush=True,
    )


def _callback(key, records=1):
    items = [
        {
            "reference_id": "ref-1",
            "timestamp": messages.now_iso(),
            "status": "succ",
            "data": {
                "reg_records": [
                    beneficiary("NID", f"{i:010d}", "Cash Transfer") for i in range(records)
                ]
            },
        }
    ]
    header = messages.callback_header("on-search", key.kid.split("|")[0], status="succ")
    message = {"transaction_id": "t", "correlation_id": "c", "search_response": items}
    return json.dumps(sign_envelope(header, message, key)).encode()


def _accept(body, trust, guard):
    return accept(
        body,
        action="on-search",
        message_model=SearchResponse,
        our_id=None,
        trust=trust,
        replay_guard=guard,
    )


def _raw_verifier(public_key, algorithm):
    """One plain ``cryptography`` verify call: the floor has no wrapper of ours."""
    if algorithm == "ed25519":
        return public_key.verify
    return lambda signature, data: public_key.verify(
        signature, data, padding.PKCS1v15(), hashes.SHA256()
    )


def bench_verify(iterations=2000, repeats=7):
    for algorithm in ("ed25519", "rs256"):
        key = SigningKey.generate("ibr.bench", algorithm)
        trust = StaticTrustStore({"ibr.bench": KeySet([key.public])})
        bodies = [_callback(key) for _ in range(iterations)]  # fresh message ids
        envelope = json.loads(bodies[0])
        params = SignatureParams.parse(envelope["signature"])
        signing = build_signing_string(params, digest(envelope["header"], envelope["message"]))
        raw_signature = params.signature_bytes()
        raw_verify = _raw_verifier(key.public.key, algorithm)
        ours, floor = [], []
        for _ in range(repeats):
            guard = InMemoryReplayGuard()
            start = time.perf_counter_ns()
            for body in bodies:
                _accept(body, trust, guard)
            ours.append((time.perf_counter_ns() - start) / iterations / 1000)
            start = time.perf_counter_ns()
            for body in bodies:
                json.loads(body)
                raw_verify(raw_signature, signing)
            floor.append((time.perf_counter_ns() - start) / iterations / 1000)
        # the fastest repeat of each: the least disturbed by other work on the machine
        report(f"verify+parse {algorithm}", min(ours), min(floor), "us", "reported")


def _forged(body):
    """The same body under a wrong signature of the right form and kid."""
    envelope = json.loads(body)
    params = SignatureParams.parse(envelope["signature"])
    flipped = bytearray(params.signature_bytes())
    flipped[0] ^= 0xFF
    forged = dataclasses.replace(params, signature=base64.b64encode(bytes(flipped)).decode())
    envelope["signature"] = forged.format()
    return json.dumps(envelope).encode()


def bench_forged(size=1_000_000, repeats=7):
    key = SigningKey.generate("ibr.bench")
    trust = StaticTrustStore({"ibr.bench": KeySet([key.public])})
    records = 1
    while len(_callback(key, records)) < size:
        records *= 2
    genuine = _callback(key, records)
    forged = _forged(genuine)
    accepted, refused = [], []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        _accept(genuine, trust, InMemoryReplayGuard())
        accepted.append((time.perf_counter_ns() - start) / 1e6)
        start = time.perf_counter_ns()
        try:
            _accept(forged, trust, InMemoryReplayGuard())
        except SignatureInvalid:
            pass
        refused.append((time.perf_counter_ns() - start) / 1e6)
    print(f"forged: bodies of {len(genuine) / 1e6:.2f} MB ({records} records)", flush=True)
    report("refuse forged ~1 MB vs accept genuine", min(refused), min(accepted), "ms", "< 1x")


def bench_batch(identifiers=1000, batch=100, latency=0.020):
    queries = [messages.SearchQuery(f"r{i}", "NID", f"{i:010d}") for i in range(identifiers)]
    with IbrSimulator(latency=latency) as sim:
        client = IbrClient(
            sim.url,
            SigningKey.generate("bench"),
            "bench",
            ibr_keys=KeySet([sim.signing_key.public]),
        )
        start = time.perf_counter()
        for i in range(0, identifiers, batch):
            client.sync_search(queries[i : i + batch])
        batched = time.perf_counter() - start
        start = time.perf_counter()
        for query in queries:
            client.sync_search([query])
        sequential = time.perf_counter() - start
        requests_seen = sim.stats["requests"]
    print(f"batch: {requests_seen} requests in all", flush=True)
    report("1,000 ids: one request each vs batched", sequential, batched, "s", ">= 20x")


def bench_keys(callbacks=1000):
    old = SigningKey.generate("ibr.bench", key_id="old")
    new = SigningKey.generate("ibr.bench", key_id="new")
    fetches = []

    def fetch(sender_id):
        fetches.append(sender_id)
        return KeySet([old.public, new.public])

    trust = StaticTrustStore(
        {"ibr.bench": KeySet([old.public])}, fetch=fetch, limiter=RefreshLimiter(min_interval=300)
    )
    guard = InMemoryReplayGuard()
    for _ in range(callbacks):
        _accept(_callback(new), trust, guard)
    rotated = len(fetches)
    stranger = SigningKey.generate("ibr.bench", key_id="never-published")
    refused = 0
    for _ in range(callbacks):
        try:
            _accept(_callback(stranger), trust, guard)
        except SignatureInvalid:
            refused += 1
    print(
        f"keys: {callbacks} callbacks under a rotated kid -> {rotated} JWKS fetch(es); "
        f"{callbacks} more under an unknown kid -> {len(fetches) - rotated} more fetch(es), "
        f"{refused} refused (target: <= 1 fetch per interval)",
        flush=True,
    )
    ROWS.append(
        ("JWKS fetches for 2x1,000 callbacks", str(len(fetches)), "-", "-", "<= 1 per interval")
    )


def bench_memory():
    key = SigningKey.generate("ibr.bench")
    records = 1
    while len(_callback(key, records * 2)) < MAX_BODY_BYTES:
        records *= 2
    body = _callback(key, records)
    while len(_callback(key, records + 200)) < MAX_BODY_BYTES:
        records += 200
        body = _callback(key, records)
    trust = StaticTrustStore({"ibr.bench": KeySet([key.public])})
    tracemalloc.start()
    _accept(body, trust, InMemoryReplayGuard())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    size = len(body)
    print(
        f"memory: body {size / 1e6:.2f} MB ({records} records), peak {peak / 1e6:.2f} MB "
        f"= {peak / size:.1f}x the body",
        flush=True,
    )
    ROWS.append(
        (
            "peak memory / largest body",
            f"{peak / 1e6:.1f} MB",
            f"{size / 1e6:.1f} MB",
            f"{peak / size:.1f}x",
            "stated multiple",
        )
    )


BENCHMARKS = {
    "verify": bench_verify,
    "forged": bench_forged,
    "batch": bench_batch,
    "keys": bench_keys,
    "memory": bench_memory,
}


def main(names):
    for name in names or BENCHMARKS:
        BENCHMARKS[name]()
    print("\n| benchmark | measured | baseline | ratio | target |\n|---|---|---|---|---|")
    for row in ROWS:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
