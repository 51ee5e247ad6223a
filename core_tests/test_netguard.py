"""Fetching peer URLs: address checks, and every way a JWKS fetch can go wrong."""

import json
import time

import pytest

from dci.errors import DCIError, ServiceUnavailable, UnsafeURL
from dci.netguard import FetchPolicy, check_address, check_url, fetch_json


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
    with pytest.raises(UnsafeURL):
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
