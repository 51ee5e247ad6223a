"""Each peer dialect end to end: our client against the simulator set to it
(operation paths, sender_uri form, signature scheme, kid style)."""

import base64
import json
import threading

import pytest

from dci import dialects
from dci.client import IbrClient
from dci.errors import ConfigurationError
from dci.jws import looks_like_jws
from dci.keys import KeySet, SigningKey, parse_jwks, sender_keys
from dci.listener import ALL_ROUTES, CallbackListener
from dci.messages import SearchQuery
from dci.simulator import IbrSimulator
from dci.trust import TrustedKeys

QUERY = SearchQuery("r1", "NID", "1000000001")
PRESETS = sorted(dialects.DIALECTS)


@pytest.fixture(scope="module", params=["ed25519", "rs256"])
def client_key(request):
    return SigningKey.generate("client.test", request.param)


def run(preset, client_key, *, sync):
    """``(simulator, answer)`` of one search through ``preset``, both sides set to it
    (the answer: the sync answer's raw envelope, or the accepted callback's)."""
    dialect = dialects.dialect(preset)
    ours = KeySet([dialect.key_for(client_key).public])  # what the peer reads from our JWKS
    got, arrived = [], threading.Event()
    with IbrSimulator(client_jwks=ours, dialect=dialect) as sim:
        client = IbrClient(
            sim.url, client_key, "client.test", ibr_keys=parse_jwks(sim.jwks), dialect=preset
        )
        if sync:
            return sim, client.sync_search([QUERY]).raw
        with CallbackListener(
            TrustedKeys(parse_jwks(sim.jwks)),
            our_id="client.test",
            on_accept=lambda accepted: (got.append(accepted), arrived.set()),
            on_refuse=got.append,
            routes=ALL_ROUTES,  # a peer posting to the wrong path is not answered
            media_types=dialect.callback_media_types,  # OpenCRVS posts text/plain
        ) as listener:
            client.search([QUERY], sender_uri=listener.url)
            assert arrived.wait(10), got
    return sim, got[0].envelope


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
def test_a_search_through_each_dialect(preset, client_key, sync):
    dialect = dialects.DIALECTS[preset]
    sim, answer = run(preset, client_key, sync=sync)
    assert answer["message"]["search_response"][0]["reference_id"] == "r1"
    assert looks_like_jws(answer["signature"]) == (dialect.signature == dialects.JWS)
    (path, body), *_ = sim.requests
    assert path == dialect.path("sync/search" if sync else "search")
    sent = json.loads(body)
    assert looks_like_jws(sent["signature"]) == (dialect.signature == dialects.JWS)
    if not sync:
        uri = sent["header"]["sender_uri"]
        assert uri.endswith("/on-search") == (dialect.callback_style == dialects.FULL_URL)


def test_the_opencrvs_kid_is_the_jwk_thumbprint(client_key):
    sim, _answer = run("opencrvs", client_key, sync=True)
    (_path, body), *_ = sim.requests
    segment = json.loads(body)["signature"].split(".")[0]
    protected = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    assert protected["kid"] == dialects.thumbprint(client_key)
    assert [k["kid"] for k in sim.jwks["keys"]] == [dialects.thumbprint(sim.signing_key)]


def test_a_thumbprint_kid_is_the_senders_own_key_in_its_jwks():
    key = SigningKey.generate("ibr.crvs", "rs256")
    jwk = dialects.dialect("opencrvs").key_for(key).public.to_jwk()
    stranger = dict(SigningKey.generate("other").public.to_jwk(), kid="not-a-thumbprint")
    keys = sender_keys({"keys": [jwk, stranger]}, "ibr.crvs")
    assert [k.kid for k in keys] == [jwk["kid"]]


def test_a_peer_that_reads_another_dialect_refuses_us(client_key):
    with IbrSimulator(
        client_jwks=KeySet([client_key.public]), dialect="spdci"
    ) as sim:  # /ibr/... only
        client = IbrClient(
            sim.url, client_key, "client.test", ibr_keys=parse_jwks(sim.jwks), dialect="openspp2"
        )
        with pytest.raises(Exception) as info:
            client.sync_search([QUERY])
    assert getattr(info.value, "http_status", None) == 404


def test_sender_uri_and_callback_target_agree():
    base = dialects.dialect("openg2p")
    sent = base.sender_uri("https://us.example/dci_api/ibr/on-search")
    assert sent == "https://us.example/dci_api/ibr"
    assert dialects.callback_target(sent, "on-search", base.callback_style) == (
        "https://us.example/dci_api/ibr/on-search"
    )
    full = dialects.dialect("openspp2")
    assert full.sender_uri("https://us.example/cb/on-search") == "https://us.example/cb/on-search"


def test_custom_dialects_are_checked():
    custom = dialects.dialect("openspp2").with_(operation_path="/api/v1/{op}")
    assert (custom.name, custom.path("sync/search")) == ("custom", "/api/v1/sync/search")
    with pytest.raises(ConfigurationError):
        dialects.dialect("openspp2").with_(operation_path="/no-placeholder")
    with pytest.raises(ConfigurationError):
        dialects.dialect("martian")


@pytest.mark.parametrize("preset", PRESETS)
def test_the_cli_checks_through_each_dialect(preset, capsys):
    from dci import cli

    assert (
        cli.main(["check", "--id", "NID:1000000001", "--dialect", preset, "--timeout", "10"]) == 0
    )
    assert "confirmed_match" in capsys.readouterr().out


def test_an_appending_peer_given_our_full_url_still_reaches_our_route(client_key):
    """Our routes answer both forms: a base-style peer given ``.../on-search`` posts to
    ``.../on-search/on-search``, which the listener (like the Odoo routes) serves."""
    got, arrived = [], threading.Event()
    with IbrSimulator(client_jwks=KeySet([client_key.public]), dialect="openg2p") as sim:
        client = IbrClient(  # a connection left on the default dialect: sends the full URL
            sim.url, client_key, "client.test", ibr_keys=parse_jwks(sim.jwks)
        )
        with CallbackListener(
            TrustedKeys(parse_jwks(sim.jwks)),
            our_id="client.test",
            on_accept=lambda accepted: (got.append(accepted), arrived.set()),
            on_refuse=got.append,
            routes=ALL_ROUTES,
        ) as listener:
            client.search([QUERY], sender_uri=listener.url)
            assert arrived.wait(10), got
    assert got[0].message.search_response[0].reference_id == "r1"
