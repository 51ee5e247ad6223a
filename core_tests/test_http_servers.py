"""The core's HTTP servers (CLI callback listener, IBR simulator) refuse a
request by its headers with a 4xx ERR ack, before reading the body, and keep
serving afterwards."""

import http.client
import json
from urllib.parse import urlsplit

import pytest
from conftest import NOW, SENDER, on_search, raw

from dci.client import IbrClient
from dci.errors import BodyTooLarge, EnvelopeError, UnsupportedMediaType
from dci.inbound import MAX_BODY_BYTES, check_request_headers
from dci.keys import KeySet
from dci.listener import CallbackListener
from dci.messages import SearchQuery
from dci.signatures import SignaturePolicy
from dci.simulator import IbrSimulator
from dci.trust import StaticTrustStore

LIMIT = 1000


@pytest.mark.parametrize(
    "content_type,content_length,expected",
    [
        ("application/json", "12", 12),
        ("Application/JSON; charset=utf-8", " 12 ", 12),
        ("application/json", None, None),  # streamed: the reader caps it
        ("application/json", "", None),
        ("application/json", str(LIMIT), LIMIT),
        ("application/json", str(LIMIT + 1), BodyTooLarge),
        ("application/json", "9" * 40, BodyTooLarge),
        ("application/json", "-1", EnvelopeError),
        ("application/json", "1e3", EnvelopeError),
        ("application/json", "\u00b2", EnvelopeError),  # isdigit() yet not for int()
        ("application/json", "\u0663", EnvelopeError),  # an Arabic-Indic three
        ("text/plain", "12", UnsupportedMediaType),
        ("application/jsonp", "12", UnsupportedMediaType),
        (None, "12", UnsupportedMediaType),
    ],
)
def test_request_headers(content_type, content_length, expected):
    if isinstance(expected, type):
        with pytest.raises(expected) as info:
            check_request_headers(content_type, content_length, LIMIT)
        assert info.value.code == "err.request.bad"
        assert type(info.value) is expected
    else:
        assert check_request_headers(content_type, content_length, LIMIT) == expected


def _post(url, headers, body=b""):
    """One POST with exactly these headers (values may be raw bytes)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.putrequest("POST", parts.path, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.getheader("Connection"), json.loads(response.read())
    finally:
        connection.close()


REFUSALS = [
    ({"Content-Type": "text/plain", "Content-Length": "2"}, b"{}", 415),
    ({"Content-Type": "application/json", "Content-Length": b"\xb2"}, b"{}", 400),
    ({"Content-Type": "application/json"}, b"", 411),
    # declared far larger than allowed: answered without waiting for the body
    ({"Content-Type": "application/json", "Content-Length": str(10 * MAX_BODY_BYTES)}, b"", 413),
]


def _accepted_callback(url, key):
    envelope = raw(on_search(key))
    headers = {"Content-Type": "application/json", "Content-Length": str(len(envelope))}
    return _post(url, headers, envelope)[0] == 200


def _answered_search(url, key):
    client = IbrClient(url.removesuffix("/registry/search"), key, "client.test")
    return bool(client.sync_search([SearchQuery("r1", "NID", "1000000001")]).message)


@pytest.fixture(params=["listener", "simulator"])
def server(request, ed_key):
    """``(url, still_serving)``: a POST route and a check that a good request works."""
    if request.param == "simulator":
        with IbrSimulator() as sim:
            yield sim.url + "/registry/search", lambda: _answered_search(sim.url, ed_key)
    else:
        trust = StaticTrustStore({SENDER: KeySet([ed_key.public])})
        with CallbackListener(
            trust,
            our_id=None,
            on_accept=lambda _: None,
            on_refuse=lambda _: None,
            policy=SignaturePolicy(clock=lambda: NOW),
        ) as listener:
            yield listener.url, lambda: _accepted_callback(listener.url, ed_key)


@pytest.mark.parametrize("headers,body,status", REFUSALS, ids=["415", "400", "411", "413"])
def test_refused_by_headers_then_still_serving(server, headers, body, status):
    url, still_serving = server
    got, connection, ack = _post(url, headers, body)
    assert got == status
    assert connection == "close"  # an unread body must not be read as the next request
    assert (ack["message"]["ack_status"], ack["message"]["error"]["code"]) == (
        "ERR",
        "err.request.bad",
    )
    assert still_serving()
