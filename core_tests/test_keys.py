"""JWK/JWKS parsing, key ids, key sets and our own signing keys."""

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa, x25519

from dci.errors import KeyFormatError, UnknownKey
from dci.keys import (
    KeyId,
    KeySet,
    PublicKey,
    SigningKey,
    normalise_algorithm,
    parse_jwks,
    public_key_from_jwk,
    public_key_from_pem,
    sender_keys,
)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "name,expected",
    [
        ("ed25519", "ed25519"),
        ("Ed25519", "ed25519"),
        ("EdDSA", "ed25519"),
        ("EDDSA", "ed25519"),
        ("rs256", "rs256"),
        ("RS256", "rs256"),
        (" rs256 ", "rs256"),
    ],
)
def test_algorithm_names_normalised(name, expected):
    assert normalise_algorithm(name) == expected


@pytest.mark.parametrize("name", ["HS256", "none", "ES256", "", "rsa", "PS256"])
def test_unsupported_algorithm_names(name):
    with pytest.raises(KeyFormatError):
        normalise_algorithm(name)


def test_kid_parsing():
    kid = KeyId.parse("ibr.example|2024-01|EdDSA")
    assert (kid.sender_id, kid.key_id, kid.algorithm) == ("ibr.example", "2024-01", "ed25519")
    assert str(kid) == "ibr.example|2024-01|ed25519"


@pytest.mark.parametrize(
    "kid",
    [
        "",
        "a|b",
        "a|b|c|ed25519",
        "|b|ed25519",
        "a||ed25519",
        "a|b|",
        " a|b|ed25519",
        "a|b |ed25519",
        "a|b|hs256",
        None,
        12,
    ],
)
def test_bad_kids(kid):
    with pytest.raises(KeyFormatError):
        KeyId.parse(kid)


def test_okp_and_rsa_jwks_round_trip(ed_key, rsa_key):
    document = json.dumps({"keys": [ed_key.public.to_jwk(), rsa_key.public.to_jwk()]})
    keys = parse_jwks(document)
    assert [k.kid for k in keys] == [ed_key.kid, rsa_key.kid]
    assert keys.get(ed_key.kid).fingerprint == ed_key.public.fingerprint
    assert keys.get(rsa_key.kid).algorithm == "rs256"
    assert keys.get(ed_key.kid).pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert public_key_from_pem(keys.get(rsa_key.kid).pem).fingerprint == rsa_key.public.fingerprint


def test_hand_built_okp_jwk():
    x = bytes(range(32))
    key = public_key_from_jwk(
        {"kty": "OKP", "crv": "Ed25519", "x": b64url(x), "kid": "s|k|ed25519"}
    )
    assert key.algorithm == "ed25519"
    assert key.to_jwk()["x"] == b64url(x)


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "k"])
def test_private_material_refused(rsa_key, member):
    jwk = dict(rsa_key.public.to_jwk(), **{member: "AQAB"})
    with pytest.raises(KeyFormatError, match="private"):
        public_key_from_jwk(jwk)
    with pytest.raises(KeyFormatError, match="private"):
        parse_jwks({"keys": [jwk]})


def test_private_okp_refused(ed_key):
    jwk = dict(ed_key.public.to_jwk(), d=b64url(b"\1" * 32))
    with pytest.raises(KeyFormatError):
        parse_jwks({"keys": [ed_key.public.to_jwk(), jwk]})


def test_short_rsa_refused():
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    numbers = small.public_numbers()
    jwk = {
        "kty": "RSA",
        "n": b64url(numbers.n.to_bytes(128, "big")),
        "e": "AQAB",
        "kid": "s|k|rs256",
    }
    with pytest.raises(KeyFormatError, match="too short"):
        public_key_from_jwk(jwk)
    with pytest.raises(KeyFormatError):
        PublicKey(kid="x", key=small)


@pytest.mark.parametrize("length", [31, 33, 0])
def test_wrong_ed25519_length(length):
    with pytest.raises(KeyFormatError):
        public_key_from_jwk({"kty": "OKP", "crv": "Ed25519", "x": b64url(b"\1" * length)})


def test_other_types_are_skipped_not_fatal(ed_key):
    x_key = x25519.X25519PrivateKey.generate().public_key().public_bytes_raw()
    document = {
        "keys": [
            ed_key.public.to_jwk(),
            {"kty": "OKP", "crv": "X25519", "x": b64url(x_key), "kid": "enc-1"},
            {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": "ec-1"},
            dict(ed_key.public.to_jwk(), kid="enc-2", use="enc"),
            "not a jwk",
        ]
    }
    keys = parse_jwks(document)
    assert [k.kid for k in keys] == [ed_key.kid]
    assert {kid for kid, _ in keys.skipped} == {"enc-1", "ec-1", "enc-2", None}


@pytest.mark.parametrize("document", [b"not json", "[]", {"no": "keys"}, {"keys": "x"}])
def test_bad_documents(document):
    with pytest.raises(KeyFormatError):
        parse_jwks(document)


def test_declared_alg_must_fit_the_key(ed_key):
    with pytest.raises(KeyFormatError):
        public_key_from_jwk(dict(ed_key.public.to_jwk(), alg="RS256"))


def test_keyset_lookup_and_filtering(ed_key, rsa_key):
    other = SigningKey.generate("ibr.other", key_id="o1")
    keys = KeySet([ed_key.public, rsa_key.public, other.public])
    with pytest.raises(UnknownKey) as info:
        keys.get("ibr.example|missing|ed25519")
    assert info.value.code == "err.signature.invalid"
    assert [k.kid for k in keys.for_sender("ibr.other")] == [other.kid]
    assert len(keys.for_sender("ibr.exam")) == 0  # prefix must be a whole sender id
    fallback = KeySet(default=ed_key.public)
    assert fallback.get("anything|x|ed25519") is ed_key.public
    assert len(fallback) == 0


@pytest.mark.parametrize("algorithm", ["ed25519", "rs256"])
def test_signing_key_generation_and_pem_round_trip(algorithm):
    key = SigningKey.generate("spmis.example", algorithm, key_id="k9")
    assert key.kid == f"spmis.example|k9|{algorithm}"
    again = SigningKey.from_pem(key.private_pem(), key.kid)
    assert again.public.fingerprint == key.public.fingerprint
    reimported = parse_jwks(key.jwks()).get(key.kid)
    assert reimported.fingerprint == key.public.fingerprint
    assert not {"d", "p", "q", "dp", "dq", "qi"} & key.jwks()["keys"][0].keys()


def test_pem_loading_errors(ed_key):
    with pytest.raises(KeyFormatError):
        public_key_from_pem("not a pem")
    with pytest.raises(KeyFormatError):
        public_key_from_pem(ed_key.private_pem())
    with pytest.raises(KeyFormatError):
        SigningKey.from_pem("-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----", "k")


def _jwks(*jwks):
    return {"keys": list(jwks)}


def test_sender_keys_keeps_only_that_senders_signature_keys(ed_key, rsa_key):
    other = SigningKey.generate("someone.else", "ed25519", key_id="x")
    document = _jwks(ed_key.public.to_jwk(), rsa_key.public.to_jwk(), other.public.to_jwk())
    kids = [key.kid for key in sender_keys(document, ed_key.kid.split("|")[0])]
    assert kids == [ed_key.kid, rsa_key.kid]


def test_sender_keys_names_each_unusable_key_when_none_is_left(ed_key):
    encryption = dict(ed_key.public.to_jwk(), use="enc")
    broken = dict(ed_key.public.to_jwk(), kid=ed_key.kid + "2", x="AAAA")
    with pytest.raises(KeyFormatError) as refused:
        sender_keys(_jwks(encryption, broken), ed_key.kid.split("|")[0])
    assert "not a signature key" in refused.value.message
    assert ed_key.kid + "2" in refused.value.message


def test_sender_keys_says_when_no_kid_is_the_senders(ed_key):
    with pytest.raises(KeyFormatError, match="no key id starts with 'nobody|'"):
        sender_keys(_jwks(ed_key.public.to_jwk()), "nobody")


def test_sender_keys_refuses_private_material_whatever_the_kid(ed_key):
    leaked = dict(ed_key.public.to_jwk(), kid="other|k|ed25519", d="AAAA")
    with pytest.raises(KeyFormatError, match="private key material"):
        sender_keys(_jwks(ed_key.public.to_jwk(), leaked), ed_key.kid.split("|")[0])


def test_sender_keys_reads_with_the_given_reader(ed_key):
    read = []
    sender_keys(
        _jwks(ed_key.public.to_jwk()), ed_key.kid.split("|")[0], read=lambda j: read.append(j) or j
    )
    assert [jwk["kid"] for jwk in read] == [ed_key.kid]
