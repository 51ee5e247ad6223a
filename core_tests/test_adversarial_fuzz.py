"""Over 10,000 mutated envelopes through verification and interpretation.

Oracle: a mutated body may be accepted only when it still carries exactly the
signed content and signature (e.g. a change of ``namespace``, which the scheme
does not sign); everything else must be refused with a typed protocol error.
Nothing may raise anything but :class:`dci.errors.DCIError`.
"""

import json
import random

import pytest
from conftest import NOW, SENDER, accept_on_search, on_search
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dci.canonical import canonical_bytes
from dci.cavage import SignatureParams
from dci.errors import DCIError
from dci.interpret import interpret_item
from dci.keys import normalise_algorithm
from dci.replay import InMemoryReplayGuard
from dci.simulator.dataset import beneficiary

PROCESSED = {"cases": 0, "accepted": 0, "refused": 0}
JSON_VALUES = [None, True, False, 0, -1, 10**30, 1.5, "", "x", "é中🙂", [], {}, [1], {"a": 1}]


# Reproducible property runs; fixtures are read-only, so reusing them is safe.
FUZZ_SETTINGS = settings(
    max_examples=600,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _message():
    return {
        "transaction_id": "txn-1",
        "correlation_id": "corr-1",
        "search_response": [
            {
                "reference_id": "ref-1",
                "timestamp": "2027-01-15T10:00:00Z",
                "status": "succ",
                "data": {"reg_records": [beneficiary("NID", "1000000001", "Cash Transfer")]},
                "pagination": {"page_size": 10, "page_number": 1, "total_count": 1},
            }
        ],
    }


def _signature_identity(value):
    try:
        p = SignatureParams.parse(value)
        return (
            p.kid,
            normalise_algorithm(p.algorithm),
            p.created,
            p.expires,
            p.headers,
            p.signature_bytes(),
        )
    except DCIError:
        return None


def _content(body):
    try:
        envelope = json.loads(body)
        return (
            canonical_bytes(envelope["header"], envelope.get("message", {})),
            _signature_identity(envelope.get("signature")),
        )
    except Exception:  # anything unreadable is not the original content
        return None


def check(body, original, trust, policy):
    """Run one mutated body through the core; enforce the oracle."""
    PROCESSED["cases"] += 1
    try:
        accepted = accept_on_search(body, trust, InMemoryReplayGuard(clock=lambda: NOW), policy)
    except DCIError:
        PROCESSED["refused"] += 1
        return
    PROCESSED["accepted"] += 1
    assert _content(body) == original, "a tampered envelope was accepted"
    for item in accepted.message.search_response:  # interpretation must not crash either
        interpret_item(item, "NID", "1000000001")


def _mutate_bytes(rng, body):
    data = bytearray(body)
    position = rng.randrange(len(data))
    operation = rng.randrange(4)
    if operation == 0:
        data[position] ^= 1 << rng.randrange(8)
    elif operation == 1:
        data[position] = rng.randrange(256)
    elif operation == 2:
        del data[position]
    else:
        data.insert(position, rng.choice(b' "{}[],:\\0aZ9\xff'))
    return bytes(data)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


def _mutate_structure(rng, envelope):
    envelope = json.loads(json.dumps(envelope))
    path = rng.choice([p for p in _paths(envelope) if p])
    parent = envelope
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    choice = rng.randrange(4)
    if choice == 0 and isinstance(parent, dict):
        del parent[last]
    elif choice == 1 and isinstance(parent, dict):
        parent[f"{last}_extra"] = rng.choice(JSON_VALUES)
    elif choice == 2 and isinstance(parent[last], str):
        parent[last] = parent[last] + rng.choice(["x", " ", "é"])
    else:
        parent[last] = rng.choice(JSON_VALUES)
    return json.dumps(envelope).encode()


@pytest.mark.parametrize("seed", range(4))
def test_random_mutations(ed_key, rsa_key, trust, policy, seed):
    rng = random.Random(seed)
    key = rsa_key if seed == 3 else ed_key
    envelope = on_search(key, _message())
    body = json.dumps(envelope).encode()
    original = _content(body)
    check(body, original, trust, policy)  # the untouched envelope is accepted
    assert PROCESSED["accepted"] >= 1
    for _ in range(1400 if seed < 3 else 600):
        check(_mutate_bytes(rng, body), original, trust, policy)
        check(_mutate_structure(rng, envelope), original, trust, policy)


@FUZZ_SETTINGS
@given(
    field=st.sampled_from(
        [
            "message_id",
            "message_ts",
            "action",
            "status",
            "sender_id",
            "receiver_id",
            "version",
            "total_count",
            "new",
        ]
    ),
    value=st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.text(max_size=20),
        st.lists(st.integers(), max_size=3),
    ),
)
def test_header_values(ed_key, trust, policy, field, value):
    envelope = on_search(ed_key, _message())
    original = _content(json.dumps(envelope).encode())
    envelope["header"][field] = value
    check(json.dumps(envelope).encode(), original, trust, policy)


@FUZZ_SETTINGS
@given(
    signature=st.one_of(
        st.text(max_size=300),
        st.builds(
            lambda k, a, c, e, s: (
                f'kidId="{k}", algorithm="{a}", created="{c}", '
                f'expires="{e}", headers="(created) (expires) digest", '
                f'signature="{s}"'
            ),
            st.sampled_from(
                [f"{SENDER}|ed1|ed25519", f"{SENDER}|rsa1|rs256", "x|y|ed25519", "bad"]
            ),
            st.sampled_from(["ed25519", "rs256", "EdDSA", "none", "HS256"]),
            st.integers(0, 2 * NOW),
            st.integers(0, 2 * NOW),
            st.text(alphabet="ABCDEFabcdef0123456789+/=", max_size=90),
        ),
    )
)
def test_forged_signature_values(ed_key, trust, policy, signature):
    envelope = on_search(ed_key, _message())
    original = _content(json.dumps(envelope).encode())
    envelope["signature"] = signature
    check(json.dumps(envelope).encode(), original, trust, policy)


def test_replays_are_never_new(ed_key, trust, policy):
    guard = InMemoryReplayGuard(clock=lambda: NOW)
    envelope = on_search(ed_key, _message())
    verdicts = []
    for _ in range(20):
        verdicts.append(
            accept_on_search(json.dumps(envelope).encode(), trust, guard, policy).delivery
        )
    assert verdicts.count("new") == 1


def test_zz_at_least_ten_thousand_cases():
    """Runs last in this module: the suite really pushed 10,000+ envelopes through."""
    assert PROCESSED["cases"] >= 10_000, PROCESSED
    assert PROCESSED["refused"] > PROCESSED["accepted"] > 0, PROCESSED
