"""Fetching JSON from a peer-supplied URL without being turned against us.

Peers hand us URLs (JWKS locations, registry endpoints). Fetching them must
not reach our own network: every connection resolves the host, refuses
loopback, private, link-local and other non-public addresses (unless the
caller allows them) and connects to the very address it checked, so a DNS
answer cannot change between check and use. Environment proxies are
ignored (through one, the checked address is not the one reached).
Redirects, size, time (each read and the whole fetch) and content type are
bounded as well.
"""

import contextlib
import ipaddress
import socket
import threading
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from . import jsontext
from .errors import BodyTooLarge, DCIError, PrivateAddress, ServiceUnavailable, UnsafeURL

__all__ = [
    "FetchPolicy",
    "check_address",
    "check_url",
    "fetch_json",
    "guarded_session",
    "read_capped",
]

JSON_TYPES = ("application/json", "application/jwk-set+json")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the last 32 bits


class FetchPolicy:
    """Limits for one kind of fetch; ``total_timeout`` bounds the whole fetch, however slow."""

    def __init__(
        self,
        *,
        allow_private=False,
        connect_timeout=5,
        read_timeout=10,
        total_timeout=20,
        max_bytes=256 * 1024,
        max_redirects=3,
        verify_tls=True,
    ):
        self.allow_private = allow_private
        self.timeout = (connect_timeout, read_timeout)
        self.total_timeout = total_timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.verify_tls = verify_tls


def _embedded_ipv4(ip):
    """The IPv4 addresses an IPv6 transition form carries (they decide where it goes)."""
    if ip.ipv4_mapped:
        return [ip.ipv4_mapped]
    if ip.sixtofour:
        return [ip.sixtofour]
    if ip.teredo:
        return list(ip.teredo)  # server and (de-obfuscated) client
    if ip in _NAT64 or int(ip) >> 32 == 0:  # NAT64, or the old IPv4-compatible ::a.b.c.d
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    return []


def check_address(address, allow_private=False):
    """Raise :class:`UnsafeURL` unless ``address`` is a public unicast IP
    (:class:`PrivateAddress` for a non-public one, which ``allow_private`` allows).

    IPv6 forms that carry an IPv4 address (mapped, compatible, 6to4, Teredo,
    NAT64) are judged by that address, so none of them reaches a private one.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if allow_private:
        if ip.is_multicast or ip.is_unspecified:
            raise UnsafeURL(f"address {ip} is not a unicast address")
        return ip
    # a transition form goes where its IPv4 address says
    # A transition form goes where its IPv4 address says; other IPv6 addresses
    # are judged themselves (local-use NAT64, 64:ff9b:1::/48, lies in reserved ::/8).
    for candidate in (_embedded_ipv4(ip) if ip.version == 6 else []) or [ip]:
        if candidate.is_multicast or candidate.is_unspecified:  # no setting allows these
            raise UnsafeURL(f"address {ip} is not a unicast address")
        if not candidate.is_global or candidate.is_reserved:
            raise PrivateAddress(f"address {ip} is not a public address")
    return ip


def check_url(url):
    """Refuse anything but http(s) URLs with a host; return the parts."""
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except (ValueError, TypeError):  # e.g. an unclosed IPv6 bracket
        raise UnsafeURL(f"{url!r} is not a URL") from None
    if parts.scheme not in ("http", "https") or not hostname:
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
    opened = None  # the adapter's list: a handle on every socket, to cut them at the deadline

    def _new_conn(self):
        # Connect to the address we checked, not to a fresh DNS answer.
        host = self._dns_host
        self._dns_host = _resolve_checked(host, self.port, self.allow_private)[0][4][0]
        try:
            sock = super()._new_conn()
        finally:
            self._dns_host = host
        self.opened.append(sock.dup())  # the dup still reaches the socket once TLS wraps it
        return sock


def _guarded_pools(allow_private, opened):
    attrs = {"allow_private": allow_private, "opened": opened}
    http_conn = type("GuardedHTTPConnection", (_GuardMixin, HTTPConnection), attrs)
    https_conn = type("GuardedHTTPSConnection", (_GuardMixin, HTTPSConnection), attrs)
    return (
        type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
        type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
    )


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, allow_private, **kwargs):
        self._opened = []
        self._pools = _guarded_pools(allow_private, self._opened)
        self.was_cut = False
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        result = super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": self._pools[0],
            "https": self._pools[1],
        }
        return result

    def cut(self):
        """Shut every connection down: a read blocked on a slow peer returns at once."""
        self.was_cut = True
        for sock in list(self._opened):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self):
        super().close()
        for sock in self._opened:
            sock.close()
        self._opened.clear()


def guarded_session(policy):
    """A ``requests`` session whose every connection is address-checked.

    Environment settings (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``,
    ``NO_PROXY``, ``.netrc``) are ignored: through a proxy, the address we
    check would not be the one the request reaches.
    """
    session = requests.Session()
    session.trust_env = False
    session.max_redirects = policy.max_redirects
    adapter = _GuardedAdapter(policy.allow_private)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def read_capped(response, max_bytes, what):
    """The body of a streamed ``requests`` response; :class:`BodyTooLarge` past ``max_bytes``."""
    body = bytearray()
    for chunk in response.iter_content(16384):
        body += chunk
        if len(body) > max_bytes:
            raise BodyTooLarge(f"{what} answered more than {max_bytes} bytes")
    return bytes(body)


def fetch_json(url, policy=None):
    """GET ``url`` and return its JSON body, or raise a :class:`DCIError`
    whose message says what was wrong (status, timeout, type, size, JSON)."""
    policy = policy or FetchPolicy()
    check_url(url)
    session = guarded_session(policy)
    adapter = session.get_adapter(url)
    # Timeouts of requests bound each read; this bounds the fetch, however it trickles.
    watchdog = threading.Timer(policy.total_timeout, adapter.cut)
    watchdog.daemon = True
    watchdog.start()
    try:
        body = _get(session, url, policy)
    except (DCIError, requests.exceptions.RequestException) as exc:
        if adapter.was_cut:  # whatever the cut connection looked like
            raise ServiceUnavailable(
                f"{url} did not answer within {policy.total_timeout:g} s"
            ) from None
        if isinstance(exc, DCIError):
            raise
        raise ServiceUnavailable(f"cannot connect to {url}") from None
    finally:
        watchdog.cancel()
        session.close()
    if adapter.was_cut:  # a cut connection may read as a short body
        raise ServiceUnavailable(f"{url} did not answer within {policy.total_timeout:g} s")
    try:
        return jsontext.loads(body)
    except ValueError:
        raise DCIError(f"{url} did not answer valid JSON") from None


def _get(session, url, policy):
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
            return read_capped(response, policy.max_bytes, url)
    except DCIError:
        raise  # our own refusals (address check, status, size) pass through as they are
    except requests.exceptions.Timeout:
        raise ServiceUnavailable(f"{url} did not answer in time") from None
    except requests.exceptions.TooManyRedirects:
        raise DCIError(f"{url} redirected more than {policy.max_redirects} times") from None
    except requests.exceptions.SSLError as exc:
        raise ServiceUnavailable(f"TLS verification failed for {url}: {exc}") from None
