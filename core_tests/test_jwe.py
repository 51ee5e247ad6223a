"""Encrypted messages (dci.jwe): round trips, the spec's shape, an independent
implementation both ways, and every kind of damage refused with its code."""

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_schemas import component, needs_spec, spec, validate  # noqa: F401 - fixture

from dci import jwe
from dci.errors import EncryptionInvalid

jwcrypto_jwe = pytest.importorskip("jwcrypto.jwe")
jwcrypto_jwk = pytest.importorskip("jwcrypto.jwk")

MESSAGE = {"transaction_id": "txn-1", "name": "Zoé Ñandú", "items": [1, 2.5, True, None]}


@pytest.fixture(scope="module", params=jwe.ALGORITHMS)
def key(request):
    return jwe.EncryptionKey.generate("spmis.example", request.param, key_id="k1")


@pytest.fixture(scope="module")
def other_key(key):
    # same kid and algorithm, another key: a message to it must not open with ours
    return jwe.EncryptionKey.generate("spmis.example", key.alg, key_id="k1")


@pytest.fixture
def sealed(key):
    return jwe.encrypt(MESSAGE, key.recipient())


def refused(encrypted, keys, match=None):
    with pytest.raises(EncryptionInvalid, match=match) as info:
        jwe.decrypt(encrypted, keys)
    assert (info.value.code, info.value.http_status) == ("err.encryption.invalid", 400)
    return info.value


def flip(value, at=0):
    raw = bytearray(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    raw[at] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


# -- what we make -----------------------------------------------------------


def test_round_trip(key, sealed):
    assert jwe.decrypt(sealed, [key]) == MESSAGE


def test_each_message_has_its_own_key_and_iv(key):
    first, second = (jwe.encrypt(MESSAGE, key.recipient()) for _ in range(2))
    assert first["encrypted_key"] != second["encrypted_key"] and first["iv"] != second["iv"]


def test_the_shape_is_the_spec_encrypted_message(key, sealed):
    assert sorted(sealed) == ["ciphertext", "encrypted_key", "header", "iv", "tag"]
    assert {k: sealed["header"][k] for k in ("alg", "enc", "kid")} == {
        "alg": key.alg,
        "enc": "A256GCM",
        "kid": key.kid,
    }
    assert ("epk" in sealed["header"]) == (key.alg == jwe.ECDH_ES_A256KW)
    assert "spmis" not in base64.urlsafe_b64decode(sealed["ciphertext"] + "==").decode("latin-1")


@needs_spec
def test_the_shape_validates_against_the_spec(spec, sealed):  # noqa: F811 - fixture
    validate(spec, component("EncryptedMessage"), sealed)


def test_our_public_jwk_says_use_enc(key):
    jwk = key.public_jwk()
    assert (jwk["use"], jwk["alg"], jwk["kid"]) == ("enc", key.alg, key.kid)
    assert not {"d", "p", "q", "dp", "dq", "qi"} & jwk.keys()


def test_our_key_survives_its_pem(key, sealed):
    again = jwe.EncryptionKey.from_pem(key.private_pem(), key.kid)
    assert (again.alg, jwe.decrypt(sealed, [again])) == (key.alg, MESSAGE)


# -- an independent implementation (jwcrypto), both ways --------------------


def test_jwcrypto_decrypts_ours(key, sealed):
    token = jwcrypto_jwe.JWE()
    token.deserialize(json.dumps(sealed), key=jwcrypto_jwk.JWK.from_pem(key.private_pem().encode()))
    assert json.loads(token.payload) == MESSAGE


@pytest.mark.parametrize("where", ["header", "protected"])
def test_we_decrypt_jwcrypto(key, where):
    public = jwcrypto_jwk.JWK(**key.public_jwk())
    params = json.dumps({"alg": key.alg, "enc": "A256GCM", "kid": key.kid})
    if where == "header":  # the spec's form: a per-recipient header, no protected one
        token = jwcrypto_jwe.JWE(json.dumps(MESSAGE).encode(), recipient=public, header=params)
    else:  # what JOSE libraries write by default
        token = jwcrypto_jwe.JWE(json.dumps(MESSAGE).encode(), protected=params)
        token.add_recipient(public)
    assert jwe.decrypt(json.loads(token.serialize()), [key]) == MESSAGE


def test_jwcrypto_payload_that_is_not_an_object_is_refused(key):
    token = jwcrypto_jwe.JWE(
        b"[1, 2]",
        recipient=jwcrypto_jwk.JWK(**key.public_jwk()),
        header=json.dumps({"alg": key.alg, "enc": "A256GCM", "kid": key.kid}),
    )
    refused(json.loads(token.serialize()), [key], "not an object")


# -- damage -----------------------------------------------------------------


@pytest.mark.parametrize("member", ["ciphertext", "tag", "iv", "encrypted_key"])
def test_a_tampered_member_is_refused(key, sealed, member):
    refused(dict(sealed, **{member: flip(sealed[member])}), [key], "does not decrypt")


@pytest.mark.parametrize("member", ["ciphertext", "tag", "iv", "encrypted_key", "header"])
def test_a_missing_member_is_refused(key, sealed, member):
    refused({k: v for k, v in sealed.items() if k != member}, [key])


@pytest.mark.parametrize("member", ["ciphertext", "tag", "iv", "encrypted_key"])
def test_a_truncated_member_is_refused(key, sealed, member):
    refused(dict(sealed, **{member: sealed[member][:-4]}), [key])


@pytest.mark.parametrize("value", ["a+b/", "abc=", "é", 12, None])
def test_a_member_that_is_not_base64url_text_is_refused(key, sealed, value):
    refused(dict(sealed, iv=value), [key], "not base64url text")


def test_an_empty_iv_is_refused(key, sealed):
    refused(dict(sealed, iv=""), [key], "does not decrypt")


def test_a_wrong_kid_is_refused(key, sealed):
    refused(sealed, [jwe.EncryptionKey.generate("spmis.example", key.alg, key_id="k2")], "no decr")


def test_the_wrong_key_under_the_right_kid_is_refused(other_key, sealed):
    refused(sealed, [other_key], "does not decrypt")


def test_the_kid_picks_the_key_among_several(key, other_key, sealed):
    spare = jwe.EncryptionKey.generate("spmis.example", key.alg, key_id="k0")
    assert jwe.decrypt(sealed, [spare, key]) == MESSAGE


@pytest.mark.parametrize(
    "change, match",
    [
        ({"alg": "RSA1_5"}, "unsupported key encryption"),
        ({"alg": "dir"}, "unsupported key encryption"),
        ({"enc": "A128CBC-HS256"}, "unsupported content encryption"),
        ({"enc": "A128GCM"}, "unsupported content encryption"),
        ({"kid": ""}, "lacks 'kid'"),
        ({"zip": "DEF"}, "compressed"),
    ],
)
def test_an_unknown_or_unsafe_header_is_refused(key, sealed, change, match):
    refused(dict(sealed, header=dict(sealed["header"], **change)), [key], match)


def test_a_header_naming_the_other_algorithm_is_refused(key, sealed):
    other = next(a for a in jwe.ALGORITHMS if a != key.alg)
    refused(dict(sealed, header=dict(sealed["header"], alg=other)), [key], "is for")


def test_an_unexpected_member_is_refused(key, sealed):
    refused(dict(sealed, aad="AAAA"), [key], "unexpected members")


def test_a_protected_header_cannot_repeat_the_header(key, sealed):
    segment = base64.urlsafe_b64encode(b'{"alg":"RSA-OAEP-256"}').rstrip(b"=").decode()
    refused(dict(sealed, protected=segment), [key], "distinct")


def test_an_ephemeral_key_on_another_curve_is_refused():
    key = jwe.EncryptionKey.generate("spmis.example", jwe.ECDH_ES_A256KW)
    sealed = jwe.encrypt(MESSAGE, key.recipient())
    other = jwcrypto_jwk.JWK.generate(kty="EC", crv="P-384").export_public(as_dict=True)
    refused(dict(sealed, header=dict(sealed["header"], epk=other)), [key])
    refused(dict(sealed, header={k: v for k, v in sealed["header"].items() if k != "epk"}), [key])


@pytest.mark.parametrize("value", [None, [], "text", {"header": "x", "ciphertext": "AA"}])
def test_what_is_not_an_encrypted_message_is_refused(key, value):
    refused(value, [key])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_damage_gives_the_message_or_the_coded_error(key, sealed, data):
    member = data.draw(st.sampled_from(["ciphertext", "tag", "iv", "encrypted_key"]))
    raw = bytearray(base64.urlsafe_b64decode(sealed[member] + "=" * (-len(sealed[member]) % 4)))
    at = data.draw(st.integers(0, len(raw) - 1))
    raw[at] ^= data.draw(st.integers(1, 255))
    changed = dict(sealed, **{member: base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()})
    refused(changed, [key])


# -- the peer's key, from its JWKS ------------------------------------------


def test_the_first_encryption_key_of_a_jwks_is_the_recipient(key):
    signing = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    later = jwe.EncryptionKey.generate("ibr.example", key.alg, key_id="later").public_jwk()
    document = {"keys": [dict(signing, use="sig", kid="s"), key.public_jwk(), later]}
    recipient = jwe.recipient_from_jwks(json.dumps(document))
    assert (recipient.kid, recipient.alg) == (key.kid, key.alg)
    assert jwe.decrypt(jwe.encrypt(MESSAGE, recipient), [key]) == MESSAGE


def test_a_jwks_key_without_alg_gets_the_one_its_type_fits(key):
    jwk = {k: v for k, v in key.public_jwk().items() if k != "alg"}
    assert jwe.recipient_from_jwks({"keys": [jwk]}).alg == key.alg


@pytest.mark.parametrize(
    "document, match",
    [
        ({"keys": []}, "no encryption key"),
        ({"nokeys": 1}, "no 'keys' list"),
        ("{not json", "not acceptable JSON"),
        ({"keys": [{"kty": "RSA", "use": "enc", "kid": "x", "n": "AQAB", "e": "AQ"}]}, "malformed"),
        ({"keys": [{"kty": "oct", "use": "enc", "kid": "x", "k": "AAAA"}]}, "private"),
        ({"keys": [{"kty": "EC", "use": "enc", "alg": "ECDH-ES", "kid": "x"}]}, "unsupported"),
    ],
)
def test_an_unusable_jwks_is_refused(document, match):
    with pytest.raises(EncryptionInvalid, match=match):
        jwe.recipient_from_jwks(document)


def test_a_short_rsa_or_private_or_other_curve_key_is_refused():
    small = jwcrypto_jwk.JWK.generate(kty="RSA", size=1024).export_public(as_dict=True)
    p384 = jwcrypto_jwk.JWK.generate(kty="EC", crv="P-384").export_public(as_dict=True)
    private = jwcrypto_jwk.JWK.generate(kty="EC", crv="P-256").export_private(as_dict=True)
    for jwk, match in ((small, "shorter"), (p384, "P-384"), (private, "private")):
        with pytest.raises(EncryptionInvalid, match=match):
            jwe.recipient_from_jwks({"keys": [dict(jwk, use="enc", kid="x")]})


def test_is_encrypted_tells_the_two_message_forms_apart(sealed):
    assert jwe.is_encrypted(sealed) and not jwe.is_encrypted(MESSAGE)
