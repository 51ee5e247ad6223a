"""A synchronous answer counts only as the verified answer to *our* request.

Genuine answers signed by the reference simulator are relayed, replayed and
re-addressed by a loopback man in the middle: a genuine answer about one
person, replayed for another, must never complete a check.
"""

import json

import pytest
import requests
from conftest import raw

from dci import cli, messages
from dci.client import IbrClient
from dci.errors import (
    ConfigurationError,
    EnvelopeError,
    ReceiverInvalid,
    ReplayDetected,
    SignatureInvalid,
    SignatureMissing,
)
from dci.keys import KeySet, SigningKey
from dci.simulator import IbrSimulator

SYNC_CALLS = {
    "/registry/sync/search": lambda c, who: c.sync_search([messages.SearchQuery("r1", "NID", who)]),
    "/registry/sync/enrolled": lambda c, who: c.enrolled("NID", who),
    "/registry/sync/txn/status": lambda c, who: c.txn_status(who),
}


class Relay:
    """Forwards to the simulator and remembers each answer; ``replay`` sends an old one back."""

    def __init__(self, sim):
        self.sim, self.answers, self.replay = sim, [], None

    def __call__(self, handler, body):
        if self.replay is not None:
            return 200, {}, self.replay
        forwarded = requests.post(
            self.sim.url + handler.path, data=body, headers={"Content-Type": "application/json"}
        )
        self.answers.append(forwarded.content)
        return forwarded.status_code, {}, forwarded.content


@pytest.fixture
def sim():
    with IbrSimulator() as running:
        yield running


@pytest.fixture
def relay(sim, loopback):
    relay = Relay(sim)
    relay.server = loopback({path: relay for path in SYNC_CALLS})
    return relay


def client_for(url, sim, **options):
    keys = KeySet([sim.signing_key.public])
    return IbrClient(url, SigningKey.generate("spmis"), "spmis", ibr_keys=keys, **options)


def test_enrolled_answer_for_one_person_replayed_for_another_is_refused(sim, relay):
    client = client_for(relay.server.url, sim)
    not_enrolled = client.enrolled("NID", "1000000003")  # a genuine, signed "no"
    assert not_enrolled.verified
    assert not_enrolled.message.enrolled_response[0].enrolled_status == "no"
    assert (
        client.enrolled("NID", "1000000001").message.enrolled_response[0].enrolled_status == "yes"
    )
    relay.replay = relay.answers[0]  # the "no" for 1000000003, sent back about 1000000001
    with pytest.raises(ReplayDetected):  # this client has seen that answer
        client.enrolled("NID", "1000000001")
    with pytest.raises(EnvelopeError, match="not for our transaction"):  # a fresh one has not
        client_for(relay.server.url, sim).enrolled("NID", "1000000001")


def test_sync_search_answer_replayed_for_another_request_is_refused(sim, relay):
    client = client_for(relay.server.url, sim)
    unknown = client.sync_search([messages.SearchQuery("r1", "NID", "1000000003")])
    assert unknown.message.search_response[0].data.reg_records == []
    relay.replay = relay.answers[0]
    fresh = client_for(relay.server.url, sim)
    with pytest.raises(EnvelopeError, match="not for our transaction"):
        fresh.sync_search([messages.SearchQuery("r1", "NID", "1000000001")])


def test_the_same_answer_twice_is_a_replay(sim, relay):
    client = client_for(relay.server.url, sim)
    query = [messages.SearchQuery("r1", "NID", "1000000003")]
    client.sync_search(query, transaction_id="txn-fixed")
    relay.replay = relay.answers[0]
    with pytest.raises(ReplayDetected):  # even for a request with the same transaction id
        client.sync_search(query, transaction_id="txn-fixed")


def _answering(sim, action="on-search", receiver="spmis", status="succ", transaction=None):
    """A route answering with a genuine simulator signature over a chosen header."""

    def answer(handler, body):
        request = json.loads(body)["message"]
        message = {
            "transaction_id": transaction or request["transaction_id"],
            "correlation_id": "c",
            "search_response": [],
        }
        return 200, {}, raw(sim.signed(action, message, receiver, status=status))

    return answer


@pytest.mark.parametrize(
    "options,error",
    [
        ({"action": "on-subscribe"}, EnvelopeError),
        ({"action": "search"}, EnvelopeError),
        ({"receiver": "someone.else"}, ReceiverInvalid),
        ({"transaction": "another-txn"}, EnvelopeError),
    ],
    ids=["other-action", "request-action", "other-receiver", "other-transaction"],
)
def test_signed_answer_not_bound_to_the_request_is_refused(sim, loopback, options, error):
    server = loopback({"/registry/sync/search": _answering(sim, **options)})
    with pytest.raises(error):
        SYNC_CALLS["/registry/sync/search"](client_for(server.url, sim), "1")
    bound = loopback({"/registry/sync/search": _answering(sim)})
    assert SYNC_CALLS["/registry/sync/search"](client_for(bound.url, sim), "1").verified


def test_answer_signed_by_another_key_is_refused(loopback):
    with IbrSimulator() as impostor, IbrSimulator() as real:
        server = loopback({"/registry/sync/search": _answering(impostor)})
        with pytest.raises(SignatureInvalid):
            SYNC_CALLS["/registry/sync/search"](client_for(server.url, real), "1")


@pytest.mark.parametrize("path", SYNC_CALLS)
def test_unsigned_answers_refused_unless_development_mode(loopback, path):
    with IbrSimulator(failures=["unsigned"]) as sim:
        development = client_for(sim.url, sim, allow_unsigned=True)
        known = [messages.SearchQuery("r1", "NID", "1000000001")]
        development.sync_search(known, transaction_id="1000000001")  # for the status poll
        with pytest.raises(SignatureMissing):
            SYNC_CALLS[path](client_for(sim.url, sim), "1000000001")
        assert SYNC_CALLS[path](development, "1000000001").verified is False


@pytest.mark.parametrize("path", SYNC_CALLS)
def test_no_ibr_keys_no_sync_call(loopback, path):
    server = loopback({path: (200, {}, b"{}")})
    client = IbrClient(server.url, SigningKey.generate("spmis"), "spmis")
    with pytest.raises(ConfigurationError):
        SYNC_CALLS[path](client, "1000000001")
    assert server.requests == []  # refused before anything was sent


def test_cli_sync_refuses_unverifiable_answers(capsys):
    with IbrSimulator(failures=["unsigned"]) as sim:
        argv = ["check", "--registry", sim.url, "--id", "NID:1000000001", "--sync", "--json"]
        argv += ["--jwks", "http://127.0.0.1:9/jwks.json"]  # no keys to verify with
        assert cli.main(argv) == cli.EXIT_INCOMPLETE
        row = json.loads(capsys.readouterr().out)[0]
        assert row["status"] == "failed" and row["result"] is None
        assert "keys" in row["reason"]
        assert cli.main([*argv, "--allow-unsigned"]) == cli.EXIT_OK
        assert json.loads(capsys.readouterr().out)[0]["result"] == "confirmed_match"
