"""The search client against a scripted loopback IBR: never a result without an answer."""

import json
import time

import pytest
import requests

from dci import messages
from dci.auth import MAX_TOKEN_LIFETIME, BearerToken, ClientCredentials
from dci.client import IbrClient
from dci.errors import (
    EnvelopeError,
    PeerRejected,
    PeerServerError,
    ServiceUnavailable,
    SignatureInvalid,
    TooManyRequests,
)
from dci.keys import KeySet, SigningKey
from dci.signatures import sign_envelope

QUERIES = [messages.SearchQuery(f"ref-{i}", "NID", str(i)) for i in range(5)]


def reply(body, status=200):
    return status, {}, json.dumps(body).encode()


def make_client(url, **kwargs):
    return IbrClient(
        url, SigningKey.generate("spmis"), "spmis", receiver_id="ibr", timeout=(1, 1), **kwargs
    )


def test_ack_gives_the_correlation_id_and_batches_in_one_post(loopback):
    server = loopback({"/registry/search": reply(messages.ack("corr-9"))})
    submission = make_client(server.url).search(QUERIES, sender_uri="http://cb.example/x")
    assert submission.correlation_id == "corr-9"
    assert len(server.requests) == 1
    posted = json.loads(server.requests[0][3])
    assert len(posted["message"]["search_request"]) == 5
    assert posted["header"]["sender_uri"] == "http://cb.example/x"
    assert posted["header"]["total_count"] == 5


@pytest.mark.parametrize(
    "route,error,code",
    [
        (
            reply(messages.err_ack(PeerRejected("busy", code="err.service.unavailable"))),
            PeerRejected,
            "err.service.unavailable",
        ),
        (reply(messages.ack(status="NACK")), PeerRejected, "err.request.bad"),
        (reply({"errors": [{"code": "500"}]}, 500), PeerServerError, "err.service.unavailable"),
        (reply({}, 429), TooManyRequests, "err.request.too_many_requests"),
        (
            reply(messages.err_ack(PeerRejected("no", code="err.signature.invalid")), 401),
            PeerRejected,
            "err.signature.invalid",
        ),
        ((200, {}, b"<html>oops"), EnvelopeError, "err.request.bad"),
        (reply({"message": {"ack_status": "maybe"}}), EnvelopeError, "err.request.bad"),
        (
            lambda h, b: (time.sleep(2), reply(messages.ack()))[1],
            ServiceUnavailable,
            "err.service.unavailable",
        ),
    ],
    ids=["err", "nack", "500", "429", "401", "html", "bad-ack", "timeout"],
)
def test_failures_never_look_like_answers(loopback, route, error, code):
    server = loopback({"/registry/search": route})
    client = make_client(server.url, session=requests.Session())
    with pytest.raises(error) as info:
        client.search(QUERIES, sender_uri="http://cb.example/x")
    assert info.value.code == code


def test_unreachable_ibr():
    with pytest.raises(ServiceUnavailable) as info:
        make_client("http://127.0.0.1:9").search(QUERIES, sender_uri="http://x/y")
    assert not isinstance(info.value, PeerServerError)  # not reached is not "failed"
    assert "cannot be reached" in info.value.message


def test_server_error_names_its_status(loopback):
    server = loopback({"/registry/search": reply({}, 500)})
    with pytest.raises(PeerServerError) as info:
        make_client(server.url).search(QUERIES, sender_uri="http://x/y")
    assert info.value.peer_status == 500
    assert "HTTP 500" in info.value.message


def test_a_status_request_can_carry_a_chosen_id(loopback):
    """The caller may record the request's id before the IBR can call back."""
    server = loopback({"/registry/txn/status": reply(messages.ack("corr-s"))})
    submission = make_client(server.url).request_txn_status(
        "t-asked", sender_uri="http://cb.example/x", request_id="t-mine"
    )
    posted = json.loads(server.requests[0][3])["message"]
    assert submission.transaction_id == posted["transaction_id"] == "t-mine"
    assert posted["txnstatus_request"]["attribute_value"] == "t-asked"
    assert submission.correlation_id == "corr-s"


def _sync_answer(ibr_key, tamper=False):
    def answer(handler, body):
        request = json.loads(body)
        items = [
            {
                "reference_id": i["reference_id"],
                "timestamp": messages.now_iso(),
                "status": "succ",
                "data": {"reg_records": []},
            }
            for i in request["message"]["search_request"]
        ]
        message = {
            "transaction_id": request["message"]["transaction_id"],
            "correlation_id": "c",
            "search_response": items,
        }
        header = messages.callback_header("on-search", "ibr", status="succ")
        envelope = sign_envelope(header, message, ibr_key)
        if tamper:
            envelope["message"]["correlation_id"] = "changed"
        return reply(envelope)

    return answer


def test_sync_search_verifies_the_answer(loopback):
    ibr_key = SigningKey.generate("ibr")
    server = loopback({"/registry/sync/search": _sync_answer(ibr_key)})
    answer = make_client(server.url, ibr_keys=KeySet([ibr_key.public])).sync_search(QUERIES)
    assert answer.verified
    assert [i.reference_id for i in answer.message.search_response] == [
        q.reference_id for q in QUERIES
    ]
    tampered = loopback({"/registry/sync/search": _sync_answer(ibr_key, tamper=True)})
    with pytest.raises(SignatureInvalid):
        make_client(tampered.url, ibr_keys=KeySet([ibr_key.public])).sync_search(QUERIES)


def test_sync_rejection_in_header(loopback):
    header = messages.callback_header(
        "on-search",
        "ibr",
        status="rjct",
        reason_code="rjct.action.not_supported",
        reason_message="no sync here",
    )
    server = loopback({"/registry/sync/search": reply({"header": header})})
    with pytest.raises(PeerRejected, match="no sync here"):
        make_client(server.url, allow_unsigned=True).sync_search(QUERIES)


def test_bearer_and_client_credentials(loopback):
    tokens = []

    def token(handler, body):
        tokens.append(body)
        return reply({"access_token": "tok-1", "expires_in": 300})

    server = loopback({"/token": token, "/registry/search": reply(messages.ack())})
    credentials = ClientCredentials(server.url + "/token", "id", "secret")
    client = make_client(server.url, auth=credentials)
    client.search(QUERIES, sender_uri="http://x/y")
    client.search(QUERIES, sender_uri="http://x/y")
    assert len(tokens) == 1 and b"grant_type=client_credentials" in tokens[0]
    searches = [r for r in server.requests if r[1] == "/registry/search"]
    assert all(r[2]["Authorization"] == "Bearer tok-1" for r in searches)
    make_client(server.url, auth=BearerToken("fixed")).search(QUERIES, sender_uri="http://x/y")
    assert server.requests[-1][2]["Authorization"] == "Bearer fixed"


@pytest.mark.parametrize(
    "payload",
    [
        b'{"access_token": "t", "expires_in": Infinity}',
        b'{"access_token": "t", "expires_in": NaN}',
        b'{"access_token": "t", "expires_in": "soon"}',
        b'{"access_token": 5}',
        b'{"access_token": "  "}',
        b'{"token": "t"}',
        b'["t"]',
        b"<html>",
        b"[" * 5000,  # the json module's RecursionError
        b'{"access_token": "t", "expires_in": ' + b"9" * 5000 + b"}",
        b'{"access_token": "t\u00e9"}',  # no header can carry it
    ],
)
def test_unusable_token_answer_is_a_clear_refusal(loopback, payload):
    server = loopback({"/token": (200, {}, payload)})
    with pytest.raises(PeerRejected, match="no usable token"):
        ClientCredentials(server.url + "/token", "id", "secret").headers()


def test_token_lifetime_is_bounded(loopback):
    fetched, now = [], [0.0]

    def token(handler, body):
        fetched.append(body)
        return reply({"access_token": f"tok-{len(fetched)}", "expires_in": 10**30})

    server = loopback({"/token": token})
    credentials = ClientCredentials(server.url + "/token", "id", "secret", clock=lambda: now[0])
    assert credentials.headers()["Authorization"] == "Bearer tok-1"
    now[0] = MAX_TOKEN_LIFETIME - 60
    assert credentials.headers()["Authorization"] == "Bearer tok-1"
    now[0] = MAX_TOKEN_LIFETIME
    assert credentials.headers()["Authorization"] == "Bearer tok-2"


def test_signed_request_is_fresh(loopback):
    server = loopback({"/registry/search": reply(messages.ack())})
    make_client(server.url).search(QUERIES, sender_uri="http://x/y")
    envelope = json.loads(server.requests[0][3])
    assert 'algorithm="ed25519"' in envelope["signature"]
    assert envelope["header"]["receiver_id"] == "ibr"
