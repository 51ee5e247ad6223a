"""The inbound path: parse, validate, verify, de-duplicate — and every refusal."""

import json
import threading

import pytest
from conftest import NOW, SENDER, accept_on_search, on_search, raw, search_response

from dci.errors import (
    EnvelopeError,
    ReceiverInvalid,
    ReplayDetected,
    SenderInvalid,
    SignatureInvalid,
    SignatureMissing,
    VersionNotSupported,
)
from dci.inbound import MAX_DEPTH, parse_body
from dci.keys import KeySet, SigningKey
from dci.replay import DUPLICATE, NEW, InMemoryReplayGuard
from dci.signatures import sign_envelope
from dci.trust import RefreshLimiter, StaticTrustStore

run = accept_on_search


def test_accepts_a_signed_callback(any_key, trust, guard, policy):
    accepted = run(raw(on_search(any_key)), trust, guard, policy)
    assert accepted.delivery == NEW
    assert accepted.sender_id == SENDER
    assert accepted.signature.kid == any_key.kid
    assert accepted.message.search_response[0].reference_id == "ref-1"


def test_key_order_and_whitespace_do_not_matter(ed_key, trust, guard, policy):
    envelope = on_search(ed_key)
    body = json.dumps(envelope, indent=4, sort_keys=True, ensure_ascii=False).encode()
    assert run(body, trust, guard, policy).delivery == NEW


@pytest.mark.parametrize(
    "mutate,error,code",
    [
        (lambda e: e["header"].update(action="on-subscribe"), EnvelopeError, "err.request.bad"),
        (
            lambda e: e["header"].update(version="2.0.0"),
            VersionNotSupported,
            "err.version.not_supported",
        ),
        (
            lambda e: e["header"].update(receiver_id="someone.else"),
            ReceiverInvalid,
            "err.receiver_id.invalid",
        ),
        (
            lambda e: e["header"].update(sender_id="ibr.unknown"),
            SenderInvalid,
            "err.sender_id.invalid",
        ),
        (lambda e: e["header"].pop("message_id"), EnvelopeError, "err.request.bad"),
        (lambda e: e["header"].update(status="weird"), EnvelopeError, "err.request.bad"),
        (lambda e: e["header"].update(message_ts="yesterday"), EnvelopeError, "err.request.bad"),
        # authenticated before validated: a changed message fails its signature first
        (lambda e: e["message"].pop("search_response"), SignatureInvalid, "err.signature.invalid"),
        (lambda e: e.update(signature=""), SignatureMissing, "err.signature.missing"),
        (lambda e: e.pop("signature"), SignatureMissing, "err.signature.missing"),
        (lambda e: e.update(signature="unsigned-stub"), SignatureMissing, "err.signature.missing"),
        (
            lambda e: e["message"].update(transaction_id="forged"),
            SignatureInvalid,
            "err.signature.invalid",
        ),
    ],
)
def test_refusals(ed_key, trust, guard, policy, mutate, error, code):
    envelope = on_search(ed_key)
    mutate(envelope)
    with pytest.raises(error) as info:
        run(raw(envelope), trust, guard, policy)
    assert info.value.code == code
    assert guard.lookup(SENDER, envelope["header"].get("message_id")) is None  # nothing kept


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'{"header": 1}',
        b'{"header": {}, "message": []}',
        b"[" * 10_000 + b"]" * 10_000,
        b'{"header": {"a": {}}, "message": {"x": ' + b"[" * 40 + b"]" * 40 + b"}}",
    ],
    ids=["empty", "text", "array", "header-not-object", "message-list", "deep-list", "deep"],
)
def test_malformed_bodies(trust, guard, policy, body):
    with pytest.raises(EnvelopeError) as info:
        run(body, trust, guard, policy)
    assert info.value.code == "err.request.bad"


def _nested_body(levels, opening, closing, padding):
    # envelope and message are two levels; ``levels`` more inside the message
    pad = b"x" * padding
    inner = opening * levels + b"0" + closing * levels
    return b'{"header": {}, "pad": "' + pad + b'", "message": {"x": ' + inner + b"}}"


@pytest.mark.parametrize("padding", [0, 70_000], ids=["small-body", "large-body"])
@pytest.mark.parametrize("brackets", [(b"[", b"]"), (b'{"a":', b"}")], ids=["lists", "objects"])
def test_nesting_limit_is_exact(padding, brackets):
    opening, closing = brackets
    at_limit = _nested_body(MAX_DEPTH - 2, opening, closing, padding)
    assert parse_body(at_limit)["pad"] == "x" * padding
    with pytest.raises(EnvelopeError, match="nesting deeper than 32"):
        parse_body(_nested_body(MAX_DEPTH - 1, opening, closing, padding))


def test_body_size_cap(ed_key, trust, guard, policy):
    body = raw(on_search(ed_key))
    with pytest.raises(EnvelopeError, match="exceeds"):
        run(body, trust, guard, policy, max_bytes=len(body) - 1)


def test_unsigned_only_in_development_mode(ed_key, trust, guard, policy):
    envelope = on_search(ed_key)
    envelope["signature"] = ""
    assert run(raw(envelope), trust, guard, policy, allow_unsigned=True).signature is None
    with pytest.raises(SignatureMissing):
        run(raw(envelope), trust, InMemoryReplayGuard(clock=lambda: NOW), policy)


def test_rejected_header_without_message(ed_key, trust, guard, policy):
    envelope = on_search(ed_key, reason_code="rjct.action.not_supported")
    header = dict(envelope["header"], status="rjct")
    signed = sign_envelope(header, {}, ed_key, now=NOW)
    signed.pop("message")
    accepted = run(raw(signed), trust, guard, policy)
    assert accepted.message is None


def test_duplicate_and_replay(ed_key, trust, guard, policy):
    envelope = on_search(ed_key)
    assert run(raw(envelope), trust, guard, policy).delivery == NEW
    assert run(raw(envelope), trust, guard, policy).delivery == DUPLICATE
    # same message_id, other (validly signed) content: a replay
    other = on_search(ed_key, search_response("ref-2"))
    other["header"]["message_id"] = envelope["header"]["message_id"]
    resigned = sign_envelope(other["header"], other["message"], ed_key, now=NOW)
    with pytest.raises(ReplayDetected) as info:
        run(raw(resigned), trust, guard, policy)
    assert (info.value.code, info.value.http_status) == ("err.request.bad", 409)


def test_unknown_kid_refreshes_once_then_verifies(ed_key, policy, guard):
    rotated = SigningKey.generate(SENDER, key_id="rotated")
    fetches = []

    def fetch(sender_id):
        fetches.append(sender_id)
        return KeySet([ed_key.public, rotated.public])

    trust = StaticTrustStore(
        {SENDER: KeySet([ed_key.public])},
        fetch=fetch,
        limiter=RefreshLimiter(min_interval=300, clock=lambda: 0),
    )
    assert run(raw(on_search(rotated)), trust, guard, policy).signature.kid == rotated.kid
    assert fetches == [SENDER]
    stranger = SigningKey.generate(SENDER, key_id="never-published")
    with pytest.raises(SignatureInvalid):
        run(raw(on_search(stranger)), trust, guard, policy)
    assert fetches == [SENDER]  # within the interval: no second fetch


def test_refresh_limiter_says_how_long_to_wait():
    now = [100.0]
    limiter = RefreshLimiter(min_interval=300, clock=lambda: now[0])
    assert limiter.wait("s") == 0
    assert limiter.allow("s")
    now[0] = 340.0
    assert limiter.wait("s") == 60 and not limiter.allow("s")
    assert limiter.wait("other") == 0
    now[0] = 400.0
    assert limiter.wait("s") == 0 and limiter.allow("s")


def test_other_senders_kid_is_refused(ed_key, policy, guard):
    other = SigningKey.generate("ibr.other", key_id="o1")
    trust = StaticTrustStore({SENDER: KeySet([ed_key.public]), "ibr.other": KeySet([other.public])})
    envelope = on_search(other)  # signed by ibr.other ...
    envelope["header"]["sender_id"] = SENDER  # ... claiming to be ibr.example
    with pytest.raises(SignatureInvalid):
        run(raw(envelope), trust, guard, policy)


def test_replay_guard_expiry_and_threads():
    now = [1000.0]
    guard = InMemoryReplayGuard(clock=lambda: now[0])
    assert guard.register("s", "m", "d1", keep_until=1010) == NEW
    assert guard.register("s", "m", "d1", keep_until=1010) == DUPLICATE
    now[0] = 1011
    assert guard.register("s", "m", "d2", keep_until=1020) == NEW  # window passed
    verdicts = []

    def worker():
        verdicts.append(guard.register("s", "race", "d", keep_until=2000))

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert verdicts.count(NEW) == 1 and verdicts.count(DUPLICATE) == 31


@pytest.mark.parametrize(
    "raw,expected",
    [
        (
            b'{"header": {"sender_id": "ibr.x", "message_id": "m1"},'
            b' "message": {"transaction_id": "t1"}}',
            {"sender_id": "ibr.x", "message_id": "m1", "transaction_id": "t1"},
        ),
        (b'{"header": {"sender_id": ["x"], "message_id": ""}, "message": "enc"}', {}),
        (b'{"header": {"message_id": "a\\nb"}, "message": {"transaction_id": 7}}', {}),
        ('{"header": {"sender_id": "%s"}}' % ("x" * 100), {}),
        (b"[" * 5000, {}),
        (b"\xff not json", {}),
        (b'{"header": "no"}', {}),
    ],
)
def test_claimed_ids_of_a_refused_body(raw, expected):
    from dci.inbound import claimed_ids

    raw = raw.encode() if isinstance(raw, str) else raw
    assert claimed_ids(raw) == expected
