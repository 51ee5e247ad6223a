"""Shared fixtures of the core suite: keys, a fixed clock, signed callbacks."""

import json

import pytest

from dci.inbound import accept
from dci.keys import KeySet, SigningKey
from dci.replay import InMemoryReplayGuard
from dci.schemas import SearchResponse
from dci.signatures import SignaturePolicy
from dci.testing import LoopbackServer, answer_item, signed_callback
from dci.trust import StaticTrustStore

SENDER = "ibr.example"
RECEIVER = "spmis.example"
NOW = 1_800_000_000


@pytest.fixture(scope="session")
def ed_key():
    return SigningKey.generate(SENDER, "ed25519", key_id="ed1")


@pytest.fixture(scope="session")
def rsa_key():
    return SigningKey.generate(SENDER, "rs256", key_id="rsa1")


@pytest.fixture(params=["ed25519", "rs256"])
def any_key(request, ed_key, rsa_key):
    return ed_key if request.param == "ed25519" else rsa_key


@pytest.fixture
def policy():
    return SignaturePolicy(skew=60, max_lifetime=3600, clock=lambda: NOW)


@pytest.fixture
def keyset(ed_key, rsa_key):
    return KeySet([ed_key.public, rsa_key.public])


@pytest.fixture
def trust(keyset):
    return StaticTrustStore({SENDER: keyset})


@pytest.fixture
def guard():
    return InMemoryReplayGuard(clock=lambda: NOW)


def search_response(reference_id="ref-1", records=(), status="succ"):
    item = answer_item(reference_id, records, status, timestamp="2027-01-15T10:00:00Z")
    return {"transaction_id": "txn-1", "correlation_id": "corr-1", "search_response": [item]}


def on_search(key, message=None, *, now=NOW, sender_id=SENDER, **header_extra):
    """A signed on-search envelope (dict) created at ``now``."""
    return signed_callback(
        key,
        message or search_response(),
        sender_id=sender_id,
        receiver_id=RECEIVER,
        now=now,
        **header_extra,
    )


def accept_on_search(body, trust, guard=None, policy=None, **options):
    """Run ``dci.inbound.accept`` as our on-search route does (receiver RECEIVER)."""
    return accept(
        body,
        **{
            "action": "on-search",
            "message_model": SearchResponse,
            "our_id": RECEIVER,
            "trust": trust,
            "replay_guard": guard if guard is not None else InMemoryReplayGuard(),
            "policy": policy,
            **options,
        },
    )


def raw(envelope):
    return json.dumps(envelope).encode()


@pytest.fixture
def loopback():
    servers = []

    def start(routes):
        server = LoopbackServer(routes).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__()
