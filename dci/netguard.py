"""Fetching JSON from a peer-supplied URL without being turned against us.

Peers hand us URLs (JWKS locations, registry endpoints). Fetching them must
not reach our own network: every connection resolves the host, refuses
loopback, private, link-local and other non-public addresses (unless the
caller allows them) and connects to the very address it checked, so a DNS
answer cannot change between check and use. Redirects, size, time and
content type are bounded as well.
"""

import ipaddress
import json
import socket
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .errors import DCIError, ServiceUnavailable, UnsafeURL

__all__ = ["FetchPolicy", "check_address", "check_url", "fetch_json", "guarded_session"]

JSON_TYPES = ("application/json", "application/jwk-set+json")


class FetchPolicy:
    """Limits for one kind of fetch."""

    def __init__(
        self,
        *,
        allow_private=False,
        connect_timeout=5,
        read_timeout=10,
        max_bytes=256 * 1024,
        max_redirects=3,
        verify_tls=True,
    ):
        self.allow_private = allow_private
        self.timeout = (connect_timeout, read_timeout)
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.verify_tls = verify_tls


def check_address(address, allow_private=False):
    """Raise :class:`UnsafeURL` unless ``address`` is a public unicast IP."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if allow_private and not (ip.is_multicast or ip.is_unspecified):
        return ip
    if not ip.is_global or ip.is_multicast or ip.is_reserved:
        raise UnsafeURL(f"address {ip} is not a public address")
    return ip


def check_url(url):
    """Refuse anything but http(s) URLs with a host; return the parts."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL(f"only http and https URLs are allowed, not {url!r}")
    if parts.username or parts.password:
        raise UnsafeURL("URLs with credentials are not allowed")
    return parts


def _resolve_checked(host, port, allow_private):
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ServiceUnavailable(f"cannot resolve {host}: {exc.strerror}") from None
    for info in infos:  # every answer must be acceptable, not just the first
        check_address(info[4][0], allow_private)
    return infos


class _GuardMixin:
    allow_private = False

    def _new_conn(self):
        # Connect to the address we checked, not to a fresh DNS answer.
        host = self._dns_host
        self._dns_host = _resolve_checked(host, self.port, self.allow_private)[0][4][0]
        try:
            return super()._new_conn()
        finally:
            self._dns_host = host


def _guarded_pools(allow_private):
    attrs = {"allow_private": allow_private}
    http_conn = type("GuardedHTTPConnection", (_GuardMixin, HTTPConnection), attrs)
    https_conn = type("GuardedHTTPSConnection", (_GuardMixin, HTTPSConnection), attrs)
    return (
        type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
        type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
    )


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, allow_private, **kwargs):
        self._pools = _guarded_pools(allow_private)
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        result = super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": self._pools[0],
            "https": self._pools[1],
        }
        return result


def guarded_session(policy):
    """A ``requests`` session whose every connection is address-checked."""
    session = requests.Session()
    session.max_redirects = policy.max_redirects
    adapter = _GuardedAdapter(policy.allow_private)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def fetch_json(url, policy=None, session=None):
    """GET ``url`` and return its JSON body, or raise a :class:`DCIError`
    whose message says what was wrong (status, timeout, type, size, JSON)."""
    policy = policy or FetchPolicy()
    check_url(url)
    session = session or guarded_session(policy)
    try:
        with session.get(
            url,
            timeout=policy.timeout,
            verify=policy.verify_tls,
            stream=True,
            headers={"Accept": "application/json"},
        ) as response:
            if response.status_code != 200:
                raise DCIError(f"{url} answered HTTP {response.status_code}")
            ctype = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if ctype not in JSON_TYPES and not ctype.endswith("+json"):
                raise DCIError(f"{url} answered {ctype or 'no content type'}, not JSON")
            body = bytearray()
            for chunk in response.iter_content(16384):
                body += chunk
                if len(body) > policy.max_bytes:
                    raise DCIError(f"{url} answered more than {policy.max_bytes} bytes")
    except DCIError:
        raise  # our own refusals (address check, status, size) pass through as they are
    except requests.exceptions.Timeout:
        raise ServiceUnavailable(f"{url} did not answer in time") from None
    except requests.exceptions.TooManyRedirects:
        raise DCIError(f"{url} redirected more than {policy.max_redirects} times") from None
    except requests.exceptions.SSLError as exc:
        raise ServiceUnavailable(f"TLS verification failed for {url}: {exc}") from None
    except requests.exceptions.RequestException:
        raise ServiceUnavailable(f"cannot connect to {url}") from None
    try:
        return json.loads(body)
    except ValueError:
        raise DCIError(f"{url} did not answer valid JSON") from None
