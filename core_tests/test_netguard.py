"""Fetching peer URLs: address checks, and every way a JWKS fetch can go wrong."""

import ipaddress
import json
import socket
import threading
import time

import pytest

from dci.errors import DCIError, PrivateAddress, ServiceUnavailable, UnsafeURL
from dci.netguard import FetchPolicy, check_address, check_url, fetch_json
from dci.testing import LoopbackServer


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.9.9.9",
        "::1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "fc00::1",
        "fe80::1",
        "0.0.0.0",
        "224.0.0.1",
        "::ffff:127.0.0.1",
        "100.64.0.1",
        "::",
    ],
)
def test_non_public_addresses_refused(address):
    with pytest.raises(UnsafeURL):
        check_address(address)


@pytest.mark.parametrize(
    "address,private",
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("::ffff:192.168.1.1", True),
        ("224.0.0.1", False),
        ("0.0.0.0", False),
        ("::", False),
    ],
)
def test_only_private_addresses_are_private(address, private):
    """A PrivateAddress is what allow_private allows: an administrator is told so."""
    with pytest.raises(UnsafeURL) as info:
        check_address(address)
    assert isinstance(info.value, PrivateAddress) is private
    if private:
        check_address(address, allow_private=True)
    else:
        with pytest.raises(UnsafeURL):
            check_address(address, allow_private=True)


@pytest.mark.parametrize("address", ["8.8.8.8", "2001:4860:4860::8888", "1.1.1.1"])
def test_public_addresses_accepted(address):
    assert str(check_address(address)) == address


@pytest.mark.parametrize(
    "url",
    [
        "ftp://x.example/jwks",
        "file:///etc/passwd",
        "http:///nohost",
        "jwks.json",
        "https://user:pw@x.example/jwks",
    ],
)
def test_bad_urls_refused(url):
    with pytest.raises(UnsafeURL):
        check_url(url)


JWKS = json.dumps({"keys": []}).encode()


def test_loopback_refused_before_any_request(loopback):
    server = loopback({"/jwks.json": (200, {}, JWKS)})
    with pytest.raises(PrivateAddress):
        fetch_json(server.url + "/jwks.json")
    with pytest.raises(UnsafeURL):
        fetch_json(server.url.replace("127.0.0.1", "localhost") + "/jwks.json")
    assert server.requests == []
    assert fetch_json(server.url + "/jwks.json", FetchPolicy(allow_private=True)) == {"keys": []}
    assert len(server.requests) == 1


def _slow(handler, body):
    time.sleep(1.5)
    return 200, {}, JWKS


def _redirect_loop(handler, body):
    return 302, {"Location": "/loop"}, b""


@pytest.mark.parametrize(
    "route,error,text",
    [
        ((404, {}, b"{}"), DCIError, "HTTP 404"),
        ((200, {"Content-Type": "text/html"}, b"<html>"), DCIError, "text/html"),
        ((200, {}, b"x" * 5000), DCIError, "more than"),
        ((200, {}, b"{not json"), DCIError, "valid JSON"),
        (_slow, ServiceUnavailable, "in time"),
        (_redirect_loop, DCIError, "redirected"),
    ],
    ids=["status", "content-type", "size", "json", "timeout", "redirects"],
)
def test_fetch_failures_say_what_was_wrong(loopback, route, error, text):
    server = loopback({"/loop": route})
    policy = FetchPolicy(allow_private=True, read_timeout=0.5, max_bytes=4096, max_redirects=3)
    with pytest.raises(error, match=text):
        fetch_json(server.url + "/loop", policy)


def test_unreachable_host():
    policy = FetchPolicy(allow_private=True, connect_timeout=1)
    with pytest.raises(ServiceUnavailable):
        fetch_json("http://127.0.0.1:9/jwks.json", policy)


# -- IPv6 forms that carry an IPv4 address --------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "::ffff:10.0.0.1",  # IPv4-mapped
        "::127.0.0.1",  # IPv4-compatible (deprecated)
        "::169.254.169.254",
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 of the metadata address
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b:1::a00:1",  # local-use NAT64
        "64:ff9b:1::808:808",  # local-use NAT64, even of a public address
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    ],
)
def test_ipv6_forms_embedding_ipv4_refused(address):
    with pytest.raises(UnsafeURL):
        check_address(address)


@pytest.mark.parametrize("address", ["64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8"])
def test_ipv6_forms_embedding_public_ipv4_accepted(address):
    assert str(check_address(address)) == str(ipaddress.ip_address(address))


# -- environment proxies never carry a fetch ---------------------------------------------


def recording_proxy():
    """A loopback "proxy" that answers every request itself (a proxy is asked for
    absolute URLs, so no route matches) and records it."""
    return LoopbackServer({}, default=(200, {}, b'{"keys": [], "via": "proxy"}'))


@pytest.fixture
def env_proxy(monkeypatch):
    with recording_proxy() as proxy:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
            monkeypatch.setenv(name, proxy.url)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        yield proxy


def test_fetch_ignores_environment_proxies(loopback, env_proxy):
    server = loopback({"/jwks.json": (200, {}, JWKS)})
    assert fetch_json(server.url + "/jwks.json", FetchPolicy(allow_private=True)) == {"keys": []}
    assert env_proxy.requests == [] and len(server.requests) == 1


def test_private_target_refused_whatever_the_proxy_says(env_proxy):
    with pytest.raises(UnsafeURL):
        fetch_json("http://169.254.169.254/latest/meta-data")
    assert env_proxy.requests == []


def test_client_and_token_requests_ignore_environment_proxies(loopback, env_proxy):
    from dci import messages
    from dci.auth import ClientCredentials
    from dci.client import IbrClient
    from dci.keys import SigningKey

    token = json.dumps({"access_token": "t", "expires_in": 60}).encode()
    server = loopback(
        {
            "/token": (200, {}, token),
            "/registry/search": (200, {}, json.dumps(messages.ack()).encode()),
        }
    )
    auth = ClientCredentials(server.url + "/token", "id", "secret")
    client = IbrClient(server.url, SigningKey.generate("s"), "s", auth=auth)
    client.search([messages.SearchQuery("r", "NID", "1")], sender_uri="http://127.0.0.1:9/cb")
    assert env_proxy.requests == []
    assert [r[1] for r in server.requests] == ["/token", "/registry/search"]


# -- a total deadline per fetch, however slowly the answer trickles -----------------------


class DrippingServer:
    """A raw loopback server that sends its answer one byte at a time."""

    def __init__(self, where, interval=0.05):
        self.where, self.interval = where, interval
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/jwks.json"
        self.stop = threading.Event()

    def _serve(self):
        try:
            connection, _ = self.sock.accept()
        except OSError:
            return
        with connection:
            connection.recv(65536)
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            head += b"Content-Length: 100000\r\n\r\n"
            if self.where == "body":
                connection.sendall(head)
                head = b" " * 100000
            for byte in head:
                if self.stop.wait(self.interval):
                    return
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    return

    def __enter__(self):
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.sock.close()


@pytest.mark.parametrize("where", ["headers", "body"])
def test_a_dripping_answer_hits_the_total_deadline(where):
    # each byte comes well within the read timeout: only a deadline for the whole fetch ends it
    policy = FetchPolicy(allow_private=True, read_timeout=2, total_timeout=1)
    outcome = []

    def fetch():
        try:
            fetch_json(server.url, policy)
        except DCIError as exc:
            outcome.append(exc)

    with DrippingServer(where) as server:
        started = time.monotonic()
        worker = threading.Thread(target=fetch, daemon=True)
        worker.start()
        worker.join(timeout=6)
        elapsed = time.monotonic() - started
    assert not worker.is_alive(), "the fetch outlived its deadline"
    assert isinstance(outcome[0], ServiceUnavailable) and "within 1 s" in outcome[0].message
    assert elapsed < 3
