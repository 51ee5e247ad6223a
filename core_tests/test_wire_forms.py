"""Wire-level faithfulness: the body is read and digested exactly as the
standard-library ``json`` module reads it, whatever its size.

Signers differ (Python escapes non-ASCII, JavaScript and Java emit UTF-8,
floats and control characters have several spellings): whatever a genuine
signer produced from the same content must verify, and the values we act on
must be the values that were sent.
"""

import base64
import hashlib
import json

import pytest
from conftest import NOW, RECEIVER, SENDER, accept_on_search, search_response
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dci.canonical import canonical_bytes, matching_digest
from dci.errors import EnvelopeError, SignatureInvalid
from dci.inbound import parse_body
from dci.messages import callback_header


def python_signed(key, header, message, ensure_ascii=True):
    """An envelope as a plain ``json.dumps`` signer would send it."""
    text = json.dumps(
        {"header": header, "message": message},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=ensure_ascii,
    )
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    signing = f"(created): {NOW}\n(expires): {NOW + 300}\ndigest: {digest}".encode()
    if key.algorithm == "ed25519":
        raw = key.private_key.sign(signing)
    else:
        raw = key.private_key.sign(signing, padding.PKCS1v15(), hashes.SHA256())
    signature = (
        f'namespace="dci", kidId="{key.kid}", algorithm="{key.algorithm}", '
        f'created="{NOW}", expires="{NOW + 300}", headers="(created) (expires) digest", '
        f'signature="{base64.b64encode(raw).decode()}"'
    )
    body = {"signature": signature, "header": header, "message": message}
    return json.dumps(body, ensure_ascii=ensure_ascii).encode()


AWKWARD_RECORDS = [
    {"score": 0.1, "big": 1e16, "tiny": 1e-07, "neg_zero": -0.0},  # float spellings differ
    {"id": 123456789012345678901234567890},  # beyond 64 bits: some readers round it
    {"below_i64": -9223372036854775809},
    {"max_u64": 18446744073709551615, "min_i64": -9223372036854775808},
    {"text": 'del \x7f, unit separator \x1f, tab \t, quote " and slash /'},
    {"name": "Zoé 北京 🙂", "line_sep": "\u2028"},
]


@pytest.mark.parametrize("ensure_ascii", [True, False], ids=["python-signer", "utf8-signer"])
@pytest.mark.parametrize("record", AWKWARD_RECORDS, ids=lambda r: next(iter(r)))
def test_awkward_content_from_plain_signers_verifies(any_key, trust, policy, record, ensure_ascii):
    header = callback_header("on-search", SENDER, status="succ", receiver_id=RECEIVER)
    message = search_response(records=[record])
    body = python_signed(any_key, header, message, ensure_ascii)
    accepted = accept_on_search(body, trust, policy=policy)
    # the values we act on are exactly the ones sent, integers included
    assert accepted.envelope["message"] == message
    assert accepted.envelope["message"] == json.loads(body)["message"]


def test_awkward_content_still_detects_tampering(ed_key, trust, policy):
    header = callback_header("on-search", SENDER, status="succ", receiver_id=RECEIVER)
    message = search_response(records=[{"id": 123456789012345678901234567890}])
    body = python_signed(ed_key, header, message).replace(b"567890}", b"567891}")
    with pytest.raises(SignatureInvalid):
        accept_on_search(body, trust, policy=policy)


LONG = b', "n": 12345678901234567890123'  # beyond 64 bits
PADDING = b', "pad": "' + b"x" * 70_000 + b'"'  # a large body


@pytest.mark.parametrize("tail", [b"", LONG, PADDING], ids=["small", "long-int", "large"])
@pytest.mark.parametrize(
    "value",
    [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400"],
    ids=["nan", "inf", "-inf", "overflow", "-overflow"],
)
def test_numbers_without_a_json_value_are_refused_on_every_path(value, tail):
    # RFC 8259 has no NaN/Infinity; serialisers disagree on them, so no digest may see one
    with pytest.raises(EnvelopeError) as info:
        parse_body(b'{"header": {"x": ' + value + b"}" + tail + b"}")
    assert info.value.code == "err.request.bad"


@pytest.mark.parametrize("tail", [b"", LONG, PADDING], ids=["small", "long-int", "large"])
@pytest.mark.parametrize(
    "text",
    [b'"\\ud800"', b'"caf\\u00e9"', b"-0.0", b"1e-7", b"123"],
    ids=["lone-surrogate", "escape", "negative-zero", "small-float", "int"],
)
def test_every_path_reads_what_the_json_module_reads(text, tail):
    body = b'{"header": {"x": ' + text + b"}" + tail + b"}"
    assert parse_body(body) == json.loads(body)


@pytest.mark.parametrize(
    "body", [b'{"header": {"x": "\xff"}}', b"\xff\xfe{}"], ids=["invalid-utf8", "utf16-bom"]
)
def test_bodies_that_are_not_utf8_json_envelopes_are_refused(body):
    with pytest.raises(EnvelopeError):
        parse_body(body)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=JSON_VALUES)
def test_every_standard_form_is_a_candidate_and_parsing_is_exact(content):
    header, message = {"h": content}, {"m": content}
    candidates = []
    assert matching_digest(header, message, lambda d: candidates.append(d)) is None
    for ascii_only in (True, False):
        form = canonical_bytes(header, message, ascii_only=ascii_only)
        assert base64.b64encode(hashlib.sha256(form).digest()).decode() in candidates
    # the body as a plain Python peer would send it reads back to the same values
    body = json.dumps({"header": header, "message": message}).encode()
    envelope = parse_body(body, max_depth=64)
    assert json.dumps(envelope, sort_keys=True) == json.dumps(json.loads(body), sort_keys=True)
