"""The negative corpus: one JSON recipe per hostile input, each with its expected
``err.*`` code and error class (``core_tests/vectors/negative``).

Signatures must be fresh, so a case is a recipe applied to a genuinely signed
on-search envelope. Where a case names its ``http_status``, that is checked too.
"""

import base64
import hmac
import json
from dataclasses import replace
from hashlib import sha256
from pathlib import Path

import pytest
from conftest import NOW, SENDER, accept_on_search, on_search, search_response

import dci.errors
from dci.cavage import SignatureParams
from dci.inbound import check_request_headers
from dci.keys import KeySet, SigningKey, parse_jwks
from dci.netguard import fetch_json
from dci.replay import InMemoryReplayGuard
from dci.schemas import ERROR_CODES
from dci.signatures import SignaturePolicy, sign_envelope
from dci.trust import StaticTrustStore

CORPUS = sorted((Path(__file__).parent / "vectors" / "negative").glob("*.json"))
CASES = [json.loads(p.read_text()) for p in CORPUS]


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jws(alg, key):
    head = b64url(json.dumps({"alg": alg, "kid": key.kid}).encode())
    body = b64url(b"{}")
    if alg == "none":
        return f"{head}.{body}.AA"
    secret = key.public.pem.encode()  # the classic confusion: the public key as HMAC secret
    mac = hmac.new(secret, f"{head}.{body}".encode(), sha256).digest()
    return f"{head}.{body}.{b64url(mac)}"


def build(case, ed_key, keys):
    """The body (and trust store) a recipe describes."""
    mutation = case["mutation"]
    body_kind = mutation.get("body")
    if body_kind:
        return {
            "huge": b'{"header": {}, "pad": "' + b"x" * (3 * 1024 * 1024) + b'"}',
            "text": b"this is not json",
            "array": b"[]",
            "deep": b"[" * 5000 + b"]" * 5000,
        }[body_kind]
    signer = {
        None: ed_key,
        "untrusted-same-kid": SigningKey(SigningKey.generate(SENDER).private_key, ed_key.kid),
        "other-sender": keys["other"],
        "inactive-sender": keys["inactive"],
    }[mutation.get("sign_with")]
    created = NOW + mutation.get("created_offset", 0)
    base = on_search(signer, search_response(), now=created, sender_id=signer.kid.split("|")[0])
    header = dict(base["header"], **mutation.get("header", {}))
    envelope = sign_envelope(
        header, base["message"], signer, now=created, lifetime=mutation.get("lifetime", 300)
    )
    for part, changes in mutation.get("after_signing", {}).items():
        envelope[part].update(changes)
    if "signature_param" in mutation:
        params = SignatureParams.parse(envelope["signature"])
        envelope["signature"] = replace(params, **mutation["signature_param"]).format()
    if "signature" in mutation:
        value = mutation["signature"]
        if value is None:
            envelope.pop("signature")
        elif value.startswith("jws-"):
            envelope["signature"] = _jws(value[4:].upper().replace("NONE", "none"), ed_key)
        else:
            envelope["signature"] = value
    return json.dumps(envelope).encode()


@pytest.fixture
def keys():
    return {
        "other": SigningKey.generate("ibr.other", key_id="o1"),
        "inactive": SigningKey.generate("ibr.archived", key_id="a1"),
    }


def test_corpus_is_complete():
    names = {c["name"] for c in CASES}
    assert len(CASES) >= 25
    for required in (
        "wrong-key",
        "other-senders-kid",
        "algorithm-confusion-param",
        "expired",
        "future-dated",
        "replayed-message-id",
        "unknown-sender",
        "inactive-sender",
        "unsigned-empty",
        "huge-body",
        "non-json",
        "deeply-nested",
        "wrong-content-type",
        "jwks-private-parameters",
        "jwks-url-private-address",
    ):
        assert required in names
    for case in CASES:
        assert case["expect"]["code"] in ERROR_CODES


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_negative_case(case, ed_key, keys):
    error_class = getattr(dci.errors, case["expect"]["error"])
    mutation = case["mutation"]
    with pytest.raises(error_class) as info:
        if "jwks" in mutation:
            jwk = dict(ed_key.public.to_jwk(), d=b64url(b"\1" * 32))
            parse_jwks({"keys": [jwk]})
        elif "jwks_url" in mutation:
            fetch_json(mutation["jwks_url"])  # refused before any connection
        elif "content_type" in mutation:
            check_request_headers(mutation["content_type"], "100")
        else:
            trust = StaticTrustStore(
                {SENDER: KeySet([ed_key.public]), "ibr.other": KeySet([keys["other"].public])}
            )
            guard = InMemoryReplayGuard(clock=lambda: NOW)
            policy = SignaturePolicy(clock=lambda: NOW)
            if mutation.get("replay"):
                first = on_search(ed_key, search_response("ref-1"))
                accept_on_search(json.dumps(first).encode(), trust, guard, policy)
                second = on_search(ed_key, search_response("ref-2"))
                second["header"]["message_id"] = first["header"]["message_id"]
                body = json.dumps(
                    sign_envelope(second["header"], second["message"], ed_key, now=NOW)
                ).encode()
            else:
                body = build(case, ed_key, keys)
            accept_on_search(body, trust, guard, policy)
    assert info.value.code == case["expect"]["code"]
    if "http_status" in case["expect"]:
        assert info.value.http_status == case["expect"]["http_status"]
