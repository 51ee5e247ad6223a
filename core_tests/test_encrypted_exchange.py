"""Encrypted messages on the one inbound path, from the client, the simulator and the CLI."""

import json
import threading

import pytest
from conftest import NOW, RECEIVER, SENDER, accept_on_search, raw, search_response

from dci import cli, jwe, messages
from dci.client import IbrClient
from dci.errors import EncryptionInvalid, PeerRejected, SignatureInvalid
from dci.keys import KeySet, SigningKey, parse_jwks
from dci.listener import CallbackListener
from dci.messages import SearchQuery
from dci.signatures import sign_envelope
from dci.simulator import IbrSimulator
from dci.trust import TrustedKeys

QUERY = SearchQuery("r1", "NID", "1000000001")


@pytest.fixture(scope="module", params=jwe.ALGORITHMS)
def ours(request):
    return jwe.EncryptionKey.generate(RECEIVER, request.param, key_id="e1")


def callback_header(status="succ", encrypted=False):
    header = messages.callback_header("on-search", SENDER, status=status, receiver_id=RECEIVER)
    return dict(header, is_msg_encrypted=encrypted)


def sealed_on_search(key, ours, message=None):
    """A signed on-search whose message is encrypted to ``ours``, then signed."""
    header = callback_header(encrypted=True)
    sealed = jwe.encrypt(message or search_response(), ours.recipient())
    return sign_envelope(header, sealed, key, now=NOW)


# -- inbound ----------------------------------------------------------------


def test_an_encrypted_callback_is_verified_then_decrypted(ed_key, ours, trust, policy):
    envelope = sealed_on_search(ed_key, ours)
    accepted = accept_on_search(raw(envelope), trust, policy=policy, decryption_keys=[ours])
    assert accepted.encrypted and accepted.signature.kid == ed_key.kid
    assert accepted.message.transaction_id == "txn-1"
    assert accepted.envelope["message"] == envelope["message"]  # kept as received


def test_the_signature_covers_the_encrypted_message(ed_key, ours, trust, policy):
    envelope = sealed_on_search(ed_key, ours)
    other = jwe.encrypt(search_response(reference_id="other"), ours.recipient())
    with pytest.raises(SignatureInvalid):  # a valid ciphertext, swapped in after signing
        accept_on_search(
            raw(dict(envelope, message=other)), trust, policy=policy, decryption_keys=[ours]
        )


def test_an_encrypted_callback_without_our_key_is_refused_with_its_code(
    ed_key, ours, trust, policy
):
    with pytest.raises(EncryptionInvalid) as info:
        accept_on_search(raw(sealed_on_search(ed_key, ours)), trust, policy=policy)
    assert (info.value.code, info.value.http_status) == ("err.encryption.invalid", 400)


def test_a_plain_message_flagged_encrypted_is_refused(ed_key, ours, trust, policy):
    header = callback_header(encrypted=True)
    envelope = sign_envelope(header, search_response(), ed_key, now=NOW)
    with pytest.raises(EncryptionInvalid):
        accept_on_search(raw(envelope), trust, policy=policy, decryption_keys=[ours])


def test_a_ciphertext_not_flagged_encrypted_is_not_read_as_a_message(ed_key, ours, trust, policy):
    header = callback_header()
    sealed = jwe.encrypt(search_response(), ours.recipient())
    with pytest.raises(Exception) as info:
        accept_on_search(
            raw(sign_envelope(header, sealed, ed_key, now=NOW)),
            trust,
            policy=policy,
            decryption_keys=[ours],
        )
    assert info.value.code == "err.request.bad"


@pytest.mark.parametrize("required", [True, lambda sender: sender == SENDER])
def test_a_plain_message_to_whom_encryption_is_due_is_refused(ed_key, trust, policy, required):
    header = callback_header()
    envelope = sign_envelope(header, search_response(), ed_key, now=NOW)
    with pytest.raises(EncryptionInvalid, match="must encrypt"):
        accept_on_search(raw(envelope), trust, policy=policy, require_encryption=required)


def test_the_requirement_is_per_sender(ed_key, trust, policy):
    header = callback_header()
    envelope = sign_envelope(header, search_response(), ed_key, now=NOW)
    accepted = accept_on_search(
        raw(envelope), trust, policy=policy, require_encryption=lambda s: s != SENDER
    )
    assert not accepted.encrypted and accepted.message.transaction_id == "txn-1"


def test_a_rejection_without_a_message_needs_no_encryption(ed_key, trust, policy):
    header = callback_header(status="rjct")
    envelope = sign_envelope(header, {}, ed_key, now=NOW)
    del envelope["message"]
    accepted = accept_on_search(raw(envelope), trust, policy=policy, require_encryption=True)
    assert accepted.message is None


def test_a_decrypted_message_is_validated_like_a_plain_one(ed_key, ours, trust, policy):
    envelope = sealed_on_search(ed_key, ours, message={"transaction_id": "t"})
    with pytest.raises(Exception) as info:
        accept_on_search(raw(envelope), trust, policy=policy, decryption_keys=[ours])
    assert info.value.code == "err.request.bad" and info.value.message.startswith("message.")


# -- client and simulator over HTTP ------------------------------------------


@pytest.fixture(scope="module")
def client_key():
    return SigningKey.generate("client.test", "ed25519")


def encrypted_client(sim, client_key, ours, **options):
    options = {
        "ibr_keys": KeySet([sim.signing_key.public]),
        "encrypt_to": jwe.recipient_from_jwks(sim.jwks),
        "decryption_keys": [ours],
        "require_encryption": True,
        **options,
    }
    return IbrClient(sim.url, client_key, "client.test", **options)


def encrypting_simulator(client_key, ours, **options):
    return IbrSimulator(
        client_jwks=KeySet([client_key.public]),
        encryption=ours.alg,
        require_encryption=True,
        encrypt_answers=True,
        client_encryption_key=ours.recipient(),
        **options,
    )


def test_the_simulator_publishes_its_encryption_key_beside_its_signing_key(client_key, ours):
    with encrypting_simulator(client_key, ours) as sim:
        jwks = sim.jwks
    assert [k["use"] for k in jwks["keys"]] == ["sig", "enc"]
    assert [k.kid for k in parse_jwks(jwks)] == [sim.signing_key.kid]  # enc keys do not verify
    assert jwe.recipient_from_jwks(jwks).kid == sim.encryption_key.kid


def test_an_encrypted_sync_search_both_ways(client_key, ours):
    with encrypting_simulator(client_key, ours) as sim:
        answer = encrypted_client(sim, client_key, ours).sync_search([QUERY])
        ((_path, body),) = sim.requests
    assert answer.raw["header"]["is_msg_encrypted"] is True
    assert jwe.is_encrypted(answer.raw["message"])
    assert answer.message.search_response[0].reference_id == "r1"
    sent = json.loads(body)
    assert sent["header"]["is_msg_encrypted"] is True and jwe.is_encrypted(sent["message"])
    assert b"1000000001" not in body  # the identifier travels encrypted


def test_an_encrypted_async_search_and_callback(client_key, ours):
    got, refused = [], []
    arrived = threading.Event()

    def on_accept(accepted):
        got.append(accepted)
        arrived.set()

    with encrypting_simulator(client_key, ours) as sim:
        with CallbackListener(
            TrustedKeys(KeySet([sim.signing_key.public])),
            our_id="client.test",
            on_accept=on_accept,
            on_refuse=refused.append,
            decryption_keys=[ours],
            require_encryption=True,
        ) as listener:
            client = encrypted_client(sim, client_key, ours)
            submission = client.search([QUERY], sender_uri=listener.url)
            assert arrived.wait(10), refused
    (accepted,) = got
    assert accepted.encrypted and accepted.message.transaction_id == submission.transaction_id
    assert accepted.message.search_response[0].reference_id == "r1"


def test_the_simulator_refuses_a_plain_request_when_it_requires_encryption(client_key, ours):
    with encrypting_simulator(client_key, ours) as sim:
        plain = IbrClient(
            sim.url, client_key, "client.test", ibr_keys=KeySet([sim.signing_key.public])
        )
        with pytest.raises(PeerRejected) as info:
            plain.sync_search([QUERY])
    assert info.value.code == "err.encryption.invalid"


def test_the_client_refuses_a_plain_answer_when_it_requires_encryption(client_key, ours):
    with IbrSimulator(client_jwks=KeySet([client_key.public]), encryption=ours.alg) as sim:
        with pytest.raises(EncryptionInvalid, match="must encrypt"):
            encrypted_client(sim, client_key, ours).sync_search([QUERY])


def test_an_answer_encrypted_to_another_key_is_refused_by_the_client(client_key, ours):
    stranger = jwe.EncryptionKey.generate("client.test", ours.alg)
    with encrypting_simulator(client_key, stranger) as sim:
        with pytest.raises(EncryptionInvalid, match="no decryption key"):
            encrypted_client(sim, client_key, ours).sync_search([QUERY])


def test_the_simulator_encrypts_to_the_key_of_the_client_jwks_url(client_key, ours, loopback):
    document = {"keys": [client_key.public.to_jwk(), ours.public_jwk()]}
    server = loopback({"/jwks.json": (200, {}, json.dumps(document).encode())})
    with IbrSimulator(
        client_jwks=server.url + "/jwks.json", encryption=ours.alg, encrypt_answers=True
    ) as sim:
        answer = encrypted_client(sim, client_key, ours).sync_search([QUERY])
    assert answer.raw["message"]["header"]["kid"] == ours.kid


def test_the_cli_checks_with_encryption_both_ways(capsys):
    assert cli.main(["check", "--id", "NID:1000000001", "--encrypt", "--timeout", "10"]) == 0
    assert "encrypting to the registry's key" in capsys.readouterr().err


def test_the_cli_sync_check_with_encryption(capsys):
    assert cli.main(["check", "--id", "NID:1000000001", "--encrypt", "--sync"]) == 0
    assert "confirmed_match" in capsys.readouterr().out


def test_an_unverifying_simulator_still_opens_and_requires_encryption(client_key, ours):
    with IbrSimulator(require_encryption=True, encryption=ours.alg) as sim:
        answer = encrypted_client(sim, client_key, ours, require_encryption=False).sync_search(
            [QUERY]
        )
        plain = IbrClient(
            sim.url, client_key, "client.test", ibr_keys=KeySet([sim.signing_key.public])
        )
        with pytest.raises(PeerRejected) as info:
            plain.sync_search([QUERY])
    assert answer.message.search_response[0].reference_id == "r1"
    assert info.value.code == "err.encryption.invalid"
