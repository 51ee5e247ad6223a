"""Starting the simulator: its banner, a signing key kept across restarts, a client JWKS
read again when a request names a key it did not have (over real loopback HTTP)."""

import json
import signal
import stat
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from dci import cli
from dci.client import IbrClient
from dci.errors import PeerRejected
from dci.keys import KeySet, SigningKey
from dci.messages import SearchQuery
from dci.simulator import IbrSimulator
from dci.testing import LoopbackServer
from dci.trust import fetch_jwks

ROOT = Path(__file__).resolve().parents[1]
CLIENT_ID = "spmis.test"
UNREACHABLE = "http://127.0.0.1:9/jwks.json"  # the discard port: nothing answers there


@contextmanager
def simulate_process(*argv):
    """``python -m dci simulate`` in a subprocess: ``(banner lines, process)``, then
    stopped as a service manager does (SIGTERM: a background job may ignore Ctrl-C)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "dci", "simulate", "--port", "0", *argv],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(30, process.kill)  # a hung start fails the test, not the run
    watchdog.start()
    try:
        lines = []
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Ctrl-C"):
                break
        yield lines, process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        watchdog.cancel()


def test_banner_gives_sender_id_jwks_and_registry_configuration():
    with simulate_process() as (lines, process):
        assert lines, process.stderr.read()
        url = lines[0].removeprefix("IBR simulator at ")
        jwks_url = f"{url}/.well-known/jwks.json"
        kid = next(iter(fetch_jwks(jwks_url, cli.LOCAL_FETCH))).kid
    assert process.returncode == 0
    assert url.startswith("http://127.0.0.1:")
    assert lines == [
        f"IBR simulator at {url}",
        "sender id: ibr.sim",
        f"JWKS URL: {jwks_url}",
        f"signing key: {kid} (new at every start: see --key-file)",
        "client requests: not verified: see --client-jwks",
        "",
        "Registry side (IBR Checks > Configuration):",
        "  IBR Sender",
        "    Name: IBR simulator",
        "    Sender ID: ibr.sim",
        f"    JWKS URL: {jwks_url}",
        "  IBR Connection",
        f"    IBR Base URL: {url}",
        "    IBR Receiver ID: ibr.sim",
        "    Trusted IBR Sender: IBR simulator",
        "",
        "Ctrl-C stops it.",
    ]


# -- the signing key kept in a file ------------------------------------------


@pytest.mark.parametrize("algorithm", ["ed25519", "rs256"])
def test_key_file_keeps_kid_and_key_across_restarts(tmp_path, algorithm):
    path = tmp_path / "sim-key.pem"
    published = []
    for _ in range(2):
        with IbrSimulator(algorithm=algorithm, key_file=path) as sim:
            published.append(fetch_jwks(sim.jwks_url, cli.LOCAL_FETCH))
            kid = sim.signing_key.kid
    first, second = ([(k.kid, k.fingerprint) for k in keys] for keys in published)
    assert first == second == [(kid, first[0][1])]
    assert kid.startswith("ibr.sim|") and kid.endswith(f"|{algorithm}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with IbrSimulator(algorithm=algorithm) as sim:  # without the file: a new key each time
        assert sim.signing_key.kid != kid


def test_banner_names_the_key_file(tmp_path):
    path = tmp_path / "sim-key.pem"
    with simulate_process("--key-file", str(path)) as (lines, _):
        pass
    kid = SigningKey.from_file(path, "ibr.sim").kid
    assert f"signing key: {kid} (kept in {path})" in lines


@pytest.mark.parametrize(
    "content,message",
    [
        ("rsa", "holds an rs256 key, not ed25519"),
        ("not a key", "not an unencrypted PEM private key"),
        ("directory", "cannot read key file"),
    ],
)
def test_unusable_key_file_is_refused_clearly(tmp_path, content, message):
    path = tmp_path / "sim-key.pem"
    if content == "rsa":
        path.write_text(SigningKey.generate("ibr.sim", "rs256").private_pem())
    elif content == "directory":
        path.mkdir()
    else:
        path.write_text(content)
    before = path.read_bytes() if path.is_file() else None
    done = subprocess.run(  # a subprocess: were the key accepted, it would serve forever
        [sys.executable, "-m", "dci", "simulate", "--port", "0", "--key-file", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == cli.EXIT_USAGE and done.stdout == ""
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    assert message in done.stderr and str(path) in done.stderr
    assert (path.read_bytes() if path.is_file() else None) == before  # left as it was


# -- the client JWKS, read again for a new kid --------------------------------


class Jwks:
    """A client JWKS served on loopback; its keys change as a test says, fetches counted."""

    def __init__(self):
        self.keys = []
        self.server = LoopbackServer({"/jwks.json": self._answer})
        self.url = None

    def _answer(self, handler, body):
        document = {"keys": [key.public.to_jwk() for key in self.keys]}
        return 200, {}, json.dumps(document).encode()

    @property
    def fetches(self):
        return len(self.server.requests)

    def __enter__(self):
        self.server.__enter__()
        self.url = self.server.url + "/jwks.json"
        return self

    def __exit__(self, *exc):
        self.server.__exit__(*exc)


def search(sim, key):
    """One signed sync search as the client with ``key``: the answer, or PeerRejected."""
    client = IbrClient(sim.url, key, CLIENT_ID, ibr_keys=KeySet([sim.signing_key.public]))
    return client.sync_search([SearchQuery("r1", "NID", "1000000001")])


def refused_code(sim, key):
    with pytest.raises(PeerRejected) as info:
        search(sim, key)
    return info.value.code


def test_client_key_published_after_start_is_accepted():
    client_key = SigningKey.generate(CLIENT_ID)
    with Jwks() as jwks, IbrSimulator(client_jwks=jwks.url) as sim:
        assert len(sim.client_keys) == 0 and jwks.fetches == 1
        jwks.keys = [client_key]  # the registry made its key after the simulator started
        assert search(sim, client_key).message
        assert jwks.fetches == 2
        assert search(sim, client_key).message  # a known kid: no fetch
        assert jwks.fetches == 2


def test_jwks_fetched_again_at_most_once_per_interval():
    client_key = SigningKey.generate(CLIENT_ID)
    with Jwks() as jwks, IbrSimulator(client_jwks=jwks.url, jwks_refresh_interval=1) as sim:
        assert refused_code(sim, client_key) == "err.signature.invalid"
        assert jwks.fetches == 2  # at start, and at once for the first unknown kid
        jwks.keys = [client_key]
        for _ in range(3):
            assert refused_code(sim, client_key) == "err.signature.invalid"
        assert jwks.fetches == 2  # not again within the interval
        time.sleep(1.1)
        assert search(sim, client_key).message
        assert jwks.fetches == 3


def test_unreachable_jwks_refuses_requests_without_crashing():
    with IbrSimulator(client_jwks=UNREACHABLE) as sim:
        assert "cannot connect" in sim.client_trust.error
        assert refused_code(sim, SigningKey.generate(CLIENT_ID)) == "err.signature.invalid"
        assert refused_code(sim, SigningKey.generate(CLIENT_ID)) == "err.signature.invalid"


@pytest.mark.parametrize("reachable", [True, False], ids=["empty", "unreachable"])
def test_start_warns_when_client_jwks_has_no_key(reachable):
    with Jwks() as jwks:
        url = jwks.url if reachable else UNREACHABLE
        options = ("--client-jwks", url, "--jwks-refresh-interval", "5")
        with simulate_process(*options) as (lines, process):
            pass
    err = process.stderr.read()
    assert f"client requests: verified with the keys at {url}" in lines
    assert f"warning: no client key from {url} (" in err
    assert "requests will be refused until that JWKS has a key" in err
    assert "fetched again on the first request, then at most every 5 s" in err
    assert ("cannot connect" in err) != reachable


def test_start_is_quiet_when_client_jwks_has_a_key():
    with Jwks() as jwks:
        jwks.keys = [SigningKey.generate(CLIENT_ID)]
        with simulate_process("--client-jwks", jwks.url) as (lines, process):
            pass
    assert lines[-1] == "Ctrl-C stops it."
    assert "warning" not in process.stderr.read()


def test_sigterm_stops_it_promptly_while_callbacks_hang():
    """After serving traffic, one SIGTERM is enough: callbacks still being sent
    (here to a peer that never answers) get a few seconds in all, not each."""
    import socket

    silent = socket.socket()  # accepts connections (backlog), never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    target = f"http://127.0.0.1:{silent.getsockname()[1]}/dci_api/ibr/on-search"
    try:
        with simulate_process() as (lines, process):
            url = lines[0].removeprefix("IBR simulator at ")
            client = IbrClient(url, SigningKey.generate(CLIENT_ID), CLIENT_ID)
            for n in range(4):
                client.search([SearchQuery(f"r{n}", "NID", "1000000001")], sender_uri=target)
            time.sleep(0.5)  # the callbacks are on their way, and hang
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)
            elapsed = time.monotonic() - started
    finally:
        silent.close()
    assert process.returncode == 0, process.stderr.read()
    assert elapsed < 8, f"{elapsed:.1f} s to stop"
