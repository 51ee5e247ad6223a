"""Signatures: round trips, interop with an independent implementation of the
DCI-NOTES scheme in both directions, RFC 8032 vectors, and every tampering."""

import base64
import copy
import dataclasses
import hashlib
import json

import pytest
from conftest import NOW, RECEIVER, SENDER, on_search, search_response
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding
from hypothesis import given, settings
from hypothesis import strategies as st

from dci import jws
from dci.cavage import SIGNED_HEADERS, SignatureParams, build_signing_string
from dci.errors import (
    DCIError,
    SignatureExpired,
    SignatureInvalid,
    SignatureMissing,
    SignatureNotYetValid,
    UnknownKey,
)
from dci.keys import KeySet, PublicKey, SigningKey
from dci.messages import callback_header
from dci.signatures import sign_envelope, verify_signature

# -- an independent implementation of the scheme (hashlib + cryptography only) --


def ref_digest(header, message, ensure_ascii=True):
    text = json.dumps(
        {"header": header, "message": message},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=ensure_ascii,
    )
    return base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


def ref_sign(header, message, private_key, kid, alg, created, expires, ensure_ascii=True):
    signing = (
        f"(created): {created}\n(expires): {expires}\n"
        f"digest: {ref_digest(header, message, ensure_ascii)}"
    ).encode()
    if alg == "ed25519":
        raw = private_key.sign(signing)
    else:
        raw = private_key.sign(signing, padding.PKCS1v15(), hashes.SHA256())
    return (
        f'namespace="dci", kidId="{kid}", algorithm="{alg}", created="{created}", '
        f'expires="{expires}", headers="(created) (expires) digest", '
        f'signature="{base64.b64encode(raw).decode()}"'
    )


def ref_verify(signature, header, message, public_key):
    params = dict(part.strip().split("=", 1) for part in signature.split('", ') if "=" in part)
    params = {k: v.strip('"') for k, v in params.items()}
    signing = (
        f"(created): {params['created']}\n(expires): {params['expires']}\n"
        f"digest: {ref_digest(header, message)}"
    ).encode()
    raw = base64.b64decode(params["signature"])
    if params["algorithm"] == "ed25519":
        public_key.verify(raw, signing)
    else:
        public_key.verify(raw, signing, padding.PKCS1v15(), hashes.SHA256())


UNICODE_MESSAGE = search_response(
    records=[{"name": "Zoé Ünal", "city": "北京", "note": "🙂 ok", "quote": 'a "b" \\ c'}]
)


def _header():
    return callback_header("on-search", SENDER, status="succ", receiver_id=RECEIVER)


# -- round trips and interop ----------------------------------------------------


@pytest.mark.parametrize("message", [search_response(), UNICODE_MESSAGE])
def test_round_trip(any_key, keyset, policy, message):
    envelope = sign_envelope(_header(), message, any_key, now=NOW)
    verified = verify_signature(
        envelope["signature"], envelope["header"], envelope["message"], keyset.get, policy
    )
    assert verified.kid == any_key.kid
    assert verified.algorithm == any_key.algorithm
    assert verified.scheme == "cavage"


@pytest.mark.parametrize("message", [search_response(), UNICODE_MESSAGE])
def test_ours_verifies_with_independent_implementation(any_key, message):
    header = _header()
    envelope = sign_envelope(header, message, any_key, now=NOW)
    wire = json.loads(json.dumps(envelope, ensure_ascii=False, indent=3))
    ref_verify(wire["signature"], wire["header"], wire["message"], any_key.public.key)


@pytest.mark.parametrize("ensure_ascii", [True, False], ids=["python-signer", "utf8-signer"])
@pytest.mark.parametrize("message", [search_response(), UNICODE_MESSAGE])
def test_independent_signature_verifies_with_ours(any_key, keyset, policy, message, ensure_ascii):
    header = _header()
    signature = ref_sign(
        header,
        message,
        any_key.private_key,
        any_key.kid,
        any_key.algorithm,
        NOW,
        NOW + 300,
        ensure_ascii,
    )
    wire = json.loads(json.dumps({"signature": signature, "header": header, "message": message}))
    verified = verify_signature(signature, wire["header"], wire["message"], keyset.get, policy)
    assert verified.kid == any_key.kid


def test_spec_prefix_and_namespace_parse():
    value = (
        'Signature:  namespace="spdci", kidId="a|b|ed25519", algorithm="ed25519", '
        'created="1606970629", expires="1607030629", headers="(created) (expires) digest", '
        'signature="YWJj"'
    )
    params = SignatureParams.parse(value)
    assert (params.namespace, params.kid, params.created) == ("spdci", "a|b|ed25519", "1606970629")
    assert params.signature_bytes() == b"abc"


# Values a parameter may hold (no quote), including commas, spaces and non-ASCII digits.
PARAM_TEXT = st.text(st.characters(blacklist_characters='"', blacklist_categories=["Cs"]))
TIME_TEXT = st.text("0123456789\u00b2\u0663 ", max_size=12)


@settings(max_examples=500, deadline=None)
@given(
    namespace=PARAM_TEXT,
    kid=PARAM_TEXT,
    algorithm=PARAM_TEXT,
    created=TIME_TEXT,
    expires=TIME_TEXT,
    signature=PARAM_TEXT,
)
def test_parse_reads_back_what_format_wrote(namespace, kid, algorithm, created, expires, signature):
    written = SignatureParams(
        kid, algorithm, created, expires, SIGNED_HEADERS, signature, namespace
    )
    try:
        read = SignatureParams.parse(written.format())
    except DCIError:  # refused values (empty, not Unix times): refused, never misread
        return
    assert read == written


def test_other_header_order_signs_and_verifies(any_key, keyset, policy):
    header, message = _header(), search_response()
    unsigned = SignatureParams(
        kid=any_key.kid,
        algorithm=any_key.algorithm,
        created=str(NOW),
        expires=str(NOW + 300),
        headers=("digest", "(expires)", "(created)"),
        signature="",
    )
    signing = build_signing_string(unsigned, ref_digest(header, message))
    assert signing.startswith(b"digest: ") and signing.endswith(f"(created): {NOW}".encode())
    raw = base64.b64encode(any_key.sign(signing)).decode()
    signature = dataclasses.replace(unsigned, signature=raw).format()
    assert verify_signature(signature, header, message, keyset.get, policy).kid == any_key.kid
    usual_order = signature.replace("digest (expires) (created)", "(created) (expires) digest")
    with pytest.raises(SignatureInvalid):
        verify_signature(usual_order, header, message, keyset.get, policy)


# -- RFC 8032 Ed25519 test vectors (section 7.1) -----------------------------------

RFC8032 = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
        "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]


@pytest.mark.parametrize("secret,public,message,signature", RFC8032, ids=["T1", "T2", "T3"])
def test_rfc8032_vectors(secret, public, message, signature):
    private = ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(secret))
    key = SigningKey(private, "v|1|ed25519")
    data = bytes.fromhex(message)
    assert key.sign(data).hex() == signature
    assert (
        key.public.to_jwk()["x"]
        == base64.urlsafe_b64encode(bytes.fromhex(public)).rstrip(b"=").decode()
    )
    assert key.public.signs(bytes.fromhex(signature), data)
    assert not key.public.signs(bytes.fromhex(signature), data + b"x")


# -- tampering ----------------------------------------------------------------------


def _verify(envelope, keyset, policy):
    return verify_signature(
        envelope["signature"], envelope["header"], envelope.get("message", {}), keyset.get, policy
    )


HEADER_TAMPERS = [
    ("message_id", "other"),
    ("message_ts", "2030-01-01T00:00:00Z"),
    ("action", "on-subscribe"),
    ("status", "rjct"),
    ("sender_id", "ibr.other"),
    ("receiver_id", "someone"),
    ("extra", "added"),
]


@pytest.mark.parametrize("field,value", HEADER_TAMPERS)
def test_tampered_header_field_fails(any_key, keyset, policy, field, value):
    envelope = on_search(any_key)
    envelope["header"][field] = value
    with pytest.raises(SignatureInvalid) as info:
        _verify(envelope, keyset, policy)
    assert info.value.code == "err.signature.invalid"


MESSAGE_TAMPERS = [
    lambda m: m.update(transaction_id="txn-2"),
    lambda m: m.update(correlation_id="x"),
    lambda m: m["search_response"][0].update(status="rjct"),
    lambda m: m["search_response"][0]["data"]["reg_records"].append({"x": 1}),
    lambda m: m["search_response"][0].update(reference_id="ref-2"),
    lambda m: m["search_response"].append(copy.deepcopy(m["search_response"][0])),
    lambda m: m.pop("correlation_id"),
]


@pytest.mark.parametrize("tamper", MESSAGE_TAMPERS)
def test_tampered_message_field_fails(any_key, keyset, policy, tamper):
    envelope = on_search(any_key)
    tamper(envelope["message"])
    with pytest.raises(SignatureInvalid):
        _verify(envelope, keyset, policy)


def _replace_param(signature, name, value):
    return dataclasses.replace(SignatureParams.parse(signature), **{name: value}).format()


@pytest.mark.parametrize(
    "name,value,error",
    [
        ("created", str(NOW - 10), SignatureInvalid),  # signing string changes
        ("expires", str(NOW + 301), SignatureInvalid),
        ("kid", f"{SENDER}|unknown|ed25519", UnknownKey),
        ("signature", base64.b64encode(b"\0" * 64).decode(), SignatureInvalid),
    ],
)
def test_tampered_signature_params_fail(ed_key, keyset, policy, name, value, error):
    envelope = on_search(ed_key)
    envelope["signature"] = _replace_param(envelope["signature"], name, value)
    with pytest.raises(error):
        _verify(envelope, keyset, policy)


@pytest.mark.parametrize("algorithm", ["rs256", "RS256", "hs256", "none"])
def test_algorithm_parameter_must_match_the_key(ed_key, keyset, policy, algorithm):
    envelope = on_search(ed_key)
    envelope["signature"] = _replace_param(envelope["signature"], "algorithm", algorithm)
    with pytest.raises(SignatureInvalid):
        _verify(envelope, keyset, policy)


def test_kid_algorithm_suffix_must_match_the_key(ed_key, policy):
    # the same Ed25519 key published under a kid claiming rs256
    lying = PublicKey(kid=f"{SENDER}|ed1|rs256", key=ed_key.public.key)
    envelope = on_search(SigningKey(ed_key.private_key, lying.kid))
    with pytest.raises(SignatureInvalid):
        _verify(envelope, KeySet([lying]), policy)


def test_wrong_key_type_for_kid(ed_key, rsa_key, policy):
    # the kid names an ed25519 key but the trusted key under that kid is RSA
    impostor = PublicKey(kid=ed_key.kid, key=rsa_key.public.key)
    with pytest.raises(SignatureInvalid):
        _verify(on_search(ed_key), KeySet([impostor]), policy)


@pytest.mark.parametrize(
    "created,lifetime,error",
    [
        (NOW - 400, 300, SignatureExpired),  # expired
        (NOW + 120, 300, SignatureNotYetValid),  # created in the future beyond the skew
        (NOW - 7200, 7200 + 300, SignatureInvalid),  # lifetime over the cap
    ],
    ids=["expired", "future", "too-long"],
)
def test_time_window_refused(ed_key, keyset, policy, created, lifetime, error):
    header = _header()
    envelope = sign_envelope(header, search_response(), ed_key, now=created, lifetime=lifetime)
    with pytest.raises(error) as info:
        _verify(envelope, keyset, policy)
    assert type(info.value) is error  # "created in the future" is not "expired"


def test_created_within_skew_is_accepted(ed_key, keyset, policy):
    envelope = sign_envelope(_header(), search_response(), ed_key, now=NOW + 30)
    assert _verify(envelope, keyset, policy).kid == ed_key.kid


def test_expires_before_created_refused(ed_key, keyset, policy):
    envelope = sign_envelope(_header(), search_response(), ed_key, now=NOW, lifetime=-1)
    with pytest.raises(SignatureInvalid):
        _verify(envelope, keyset, policy)


MALFORMED = [
    "garbage",
    'kidId="a|b|ed25519"',
    'kidId="a|b|ed25519", kidId="a|b|ed25519", algorithm="ed25519", created="1", '
    'expires="2", headers="(created) (expires) digest", signature="YQ=="',
    'kidId="a|b|ed25519", algorithm="ed25519", created="soon", expires="2", '
    'headers="(created) (expires) digest", signature="YQ=="',
    # digits outside ASCII: str.isdigit() takes them, int() does not (or reads them)
    'namespace="dci", kidId="a|b|ed25519", algorithm="ed25519", created="\u00b2", '
    'expires="2", headers="(created) (expires) digest", signature="YQ=="',
    'namespace="dci", kidId="a|b|ed25519", algorithm="ed25519", created="1", '
    'expires="\u0663", headers="(created) (expires) digest", signature="YQ=="',
    'kidId="a|b|ed25519", algorithm="ed25519", created="1", expires="2", '
    'headers="digest", signature="YQ=="',
    'kidId="a|b|ed25519" algorithm="ed25519"',
    'kidId="a|b|ed25519", algorithm="ed25519", created="1", expires="2", '
    'headers="(created) (expires) digest", signature="YQ==",',
]


@pytest.mark.parametrize("value", MALFORMED)
def test_malformed_parameter_strings(value):
    with pytest.raises(SignatureInvalid) as info:
        SignatureParams.parse(value)
    assert info.value.code == "err.signature.invalid"


@pytest.mark.parametrize("bad", ["not base64!", "YWJj=", "====", "YW Jj"])
def test_bad_base64_signature(ed_key, keyset, policy, bad):
    envelope = on_search(ed_key)
    envelope["signature"] = _replace_param(envelope["signature"], "signature", bad)
    with pytest.raises(SignatureInvalid):
        _verify(envelope, keyset, policy)


@pytest.mark.parametrize("value", [None, "", "   ", "unsigned-stub"])
def test_missing_signature(keyset, policy, value):
    with pytest.raises(SignatureMissing) as info:
        verify_signature(value, _header(), {}, keyset.get, policy)
    assert info.value.code == "err.signature.missing"


# -- the compact-JWS form ---------------------------------------------------------


def test_jws_both_algorithms(any_key, keyset, policy):
    header, message = _header(), search_response()
    token = jws.sign(header, message, any_key, extra_headers={"exp": NOW + 300, "iat": NOW})
    verified = verify_signature(token, header, message, keyset.get, policy)
    assert (verified.scheme, verified.kid) == ("jws", any_key.kid)


@pytest.mark.parametrize(
    "change",
    [
        lambda h, m: m.update(transaction_id="other"),
        lambda h, m: h.update(is_msg_encrypted=0),  # false vs 0: JSON differs
        lambda h, m: h.update(extra=True),
    ],
)
def test_jws_payload_must_equal_the_envelope(rsa_key, keyset, policy, change):
    header, message = _header(), search_response()
    token = jws.sign(header, message, rsa_key, extra_headers={"exp": NOW + 300, "iat": NOW})
    change(header, message)
    with pytest.raises(SignatureInvalid):
        verify_signature(token, header, message, keyset.get, policy)


def test_jws_true_vs_one_is_a_change(rsa_key, keyset, policy):
    header, message = _header(), {"flag": True}
    token = jws.sign(header, message, rsa_key, extra_headers={"exp": NOW + 300, "iat": NOW})
    with pytest.raises(SignatureInvalid):
        verify_signature(token, header, {"flag": 1}, keyset.get, policy)


def test_jws_refusals(ed_key, rsa_key, keyset, policy):
    header, message = _header(), search_response()
    expired = jws.sign(header, message, rsa_key, extra_headers={"exp": NOW - 5, "iat": NOW - 60})
    with pytest.raises(SignatureExpired):
        verify_signature(expired, header, message, keyset.get, policy)
    unknown = jws.sign(header, message, SigningKey(rsa_key.private_key, "x|y|rs256"))
    with pytest.raises(UnknownKey):
        verify_signature(unknown, header, message, keyset.get, policy)
    # alg claims RS256 on an Ed25519 kid: refused before any crypto
    head = (
        base64.urlsafe_b64encode(json.dumps({"alg": "RS256", "kid": ed_key.kid}).encode())
        .rstrip(b"=")
        .decode()
    )
    forged = f"{head}.e30.c2ln"
    with pytest.raises(SignatureInvalid):
        verify_signature(forged, header, message, keyset.get, policy)


def test_every_failure_is_a_dci_error(ed_key, keyset, policy):
    envelope = on_search(ed_key)
    for value in ["a.b.c", "x=1", '"', "Signature:", "\x00", "a" * 5000]:
        with pytest.raises(DCIError):
            verify_signature(value, envelope["header"], envelope["message"], keyset.get, policy)
