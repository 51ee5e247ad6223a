"""The core's HTTP servers (CLI callback listener, IBR simulator) refuse a
request by its headers with a 4xx ERR ack, before reading the body, let slow
and idle clients go, and keep serving afterwards; the simulator is no open relay."""

import http.client
import json
import socket
import time
from http.server import ThreadingHTTPServer
from threading import Thread
from urllib.parse import urlsplit

import pytest
from conftest import NOW, SENDER, on_search, raw

from dci import dialects, messages
from dci.client import IbrClient
from dci.errors import BodyTooLarge, EnvelopeError, PeerRejected, UnsupportedMediaType
from dci.httpserver import JsonRequestHandler
from dci.inbound import MAX_BODY_BYTES, check_request_headers
from dci.keys import KeySet, SigningKey
from dci.listener import CallbackListener
from dci.messages import SearchQuery
from dci.signatures import SignaturePolicy
from dci.simulator import IbrSimulator
from dci.testing import LoopbackServer
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


def test_request_headers_of_a_peer_that_posts_json_as_text():
    crvs = dialects.dialect("opencrvs")
    taken = crvs.callback_media_types
    assert check_request_headers(crvs.callback_content_type, "12", LIMIT, taken) == 12
    assert check_request_headers("application/json", "12", LIMIT, taken) == 12
    with pytest.raises(UnsupportedMediaType):
        check_request_headers("text/html", "12", LIMIT, taken)
    with pytest.raises(UnsupportedMediaType):  # the others' callbacks are JSON only
        check_request_headers(crvs.callback_content_type, "12", LIMIT)
    assert dialects.dialect("openspp2").callback_media_types == ("application/json",)


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


def _answered_search(sim, key):
    client = IbrClient(sim.url, key, "client.test", ibr_keys=KeySet([sim.signing_key.public]))
    return bool(client.sync_search([SearchQuery("r1", "NID", "1000000001")]).message)


@pytest.fixture(params=["listener", "simulator"])
def server(request, ed_key):
    """``(url, still_serving)``: a POST route and a check that a good request works."""
    if request.param == "simulator":
        with IbrSimulator() as sim:
            yield sim.url + "/registry/search", lambda: _answered_search(sim, ed_key)
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


# -- slow and idle clients hold no thread for longer than allowed ----------------------------


@pytest.fixture
def short_timeouts(monkeypatch):
    monkeypatch.setattr(JsonRequestHandler, "timeout", 0.5)
    monkeypatch.setattr(JsonRequestHandler, "body_seconds", 1.0)


def _stalled_post(url, body_sent, declared, drip=None):
    """Send headers and part of a body (optionally dripping more); return what comes back."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
    try:
        sock.sendall(
            f"POST {parts.path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {declared}\r\n\r\n".encode()
            + body_sent
        )
        started = time.monotonic()
        if drip:  # one byte well within the idle timeout, for ever
            sock.settimeout(0.01)
            while time.monotonic() - started < 4:
                try:
                    sock.sendall(b" ")
                    answer = sock.recv(65536)
                    if answer:
                        return _rest(sock, answer), time.monotonic() - started
                except TimeoutError:
                    continue
                except OSError:
                    break
                time.sleep(drip)
            return b"", time.monotonic() - started
        answer = sock.recv(65536)
        return _rest(sock, answer), time.monotonic() - started
    finally:
        sock.close()


def _rest(sock, received):
    """Read on until the server closes the connection."""
    sock.settimeout(2)
    while chunk := sock.recv(65536):
        received += chunk
    return received


@pytest.mark.parametrize("drip", [None, 0.2], ids=["short-body", "dripping-body"])
def test_slow_client_gets_408_and_is_let_go(server, short_timeouts, drip):
    url, still_serving = server
    answer, elapsed = _stalled_post(url, b'{"header"', 1000, drip)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
    assert b'"err.request.timeout"' in answer
    assert elapsed < 2.5
    assert still_serving()


def test_servers_bound_idle_and_slow_clients_by_default():
    assert 0 < JsonRequestHandler.timeout <= 30
    assert 0 < JsonRequestHandler.body_seconds <= 120


def test_idle_connection_is_closed(server, short_timeouts):
    url, still_serving = server
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        started = time.monotonic()
        assert sock.recv(100) == b""  # closed by the server, not by our timeout
        assert time.monotonic() - started < 2
    assert still_serving()


# -- the simulator calls back only where it is allowed to -------------------------------------


def _search_to(sim, sender_uri):
    client = IbrClient(sim.url, SigningKey.generate("spmis"), "spmis")
    return client.search([SearchQuery("r1", "NID", "1000000001")], sender_uri=sender_uri)


@pytest.mark.parametrize(
    "sender_uri",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/cb",
        "http://example.org/cb",
        "ftp://127.0.0.1/cb",
        "http://[::1/cb",
    ],
)
def test_simulator_is_no_open_relay(sender_uri):
    with IbrSimulator() as sim:
        with pytest.raises(PeerRejected) as info:
            _search_to(sim, sender_uri)
        assert info.value.code == "err.sender_uri.invalid"
        assert sim.stats["callbacks_sent"] + sim.stats["callbacks_failed"] == 0


def test_simulator_calls_back_to_loopback_and_allowed_hosts():
    with IbrSimulator(failures=["drop"]) as sim:
        assert _search_to(sim, "http://127.0.0.1:9/cb").correlation_id
        assert _search_to(sim, "http://localhost:9/cb").correlation_id
        assert _search_to(sim, "http://[::1]:9/cb").correlation_id
    with IbrSimulator(failures=["drop"], callback_hosts=["cb.example"]) as sim:
        assert _search_to(sim, "https://cb.example/on-search").correlation_id


def _envelope_with(message, action):
    header = messages.request_header(action, "spmis", total_count=1)
    return json.dumps({"signature": "", "header": header, **message}).encode()


@pytest.mark.parametrize(
    "path,action,message",
    [
        ("/registry/sync/txn/status", "txn-status", {}),
        ("/registry/sync/txn/status", "txn-status", {"message": {"transaction_id": "t"}}),
        (
            "/registry/txn/status",
            "txn-status",
            {"message": {"transaction_id": "t", "txnstatus_request": ["not", "an", "object"]}},
        ),
        ("/registry/sync/enrolled", "search", {"message": {"enrolled_criteria": "x"}}),
        ("/registry/sync/search", "search", {"message": {"search_request": []}}),
        ("/registry/sync/search", "txn-status", {"message": {}}),
    ],
    ids=["no-message", "no-query", "query-list", "criteria-text", "no-items", "wrong-action"],
)
def test_simulator_answers_malformed_requests_with_an_err_ack(path, action, message):
    with IbrSimulator() as sim:
        body = _envelope_with(message, action)
        status, _, ack = _post(
            sim.url + path,
            {"Content-Type": "application/json", "Content-Length": str(len(body))},
            body,
        )
        assert (status, ack["message"]["ack_status"]) == (400, "ERR")
        assert _answered_search(sim, SigningKey.generate("spmis"))


class _NagleProbe(JsonRequestHandler):
    """Answers with whether its own socket sends small writes at once."""

    def do_GET(self):
        nodelay = self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        self.reply(200, {"nodelay": bool(nodelay)})


def test_replies_are_not_held_back_by_nagles_algorithm():
    # a reply is written as headers, then body: with Nagle's algorithm on, the body
    # waits for the client's delayed ACK (about 40 ms a request on a kept connection)
    probe = ThreadingHTTPServer(("127.0.0.1", 0), _NagleProbe)
    Thread(target=probe.serve_forever, daemon=True).start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", probe.server_address[1], timeout=10)
        connection.request("GET", "/")
        assert json.loads(connection.getresponse().read()) == {"nodelay": True}
    finally:
        probe.shutdown()
        probe.server_close()
    # the simulator's, the callback listener's and the test loopback's handlers are such
    with (
        IbrSimulator() as sim,
        CallbackListener(
            StaticTrustStore(), our_id="spmis", on_accept=print, on_refuse=print
        ) as listener,
        LoopbackServer({}) as loopback,
    ):
        for server in (sim._server, listener._server, loopback.httpd):
            assert issubclass(server.RequestHandlerClass, JsonRequestHandler)
