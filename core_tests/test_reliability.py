"""Failures classified once (kind + transient) and the simulator's fault plan."""

import inspect
import json
import socket
import struct
import time

import pytest

from dci import errors, messages
from dci.client import IbrClient, retrying_session
from dci.errors import (
    FAILURE_KINDS,
    DCIError,
    PeerRejected,
    PeerServerError,
    PeerUnreachable,
    TooManyRequests,
    UnreadableAnswer,
)
from dci.keys import SigningKey
from dci.simulator import IbrSimulator
from dci.simulator.faults import FAULT_KINDS, FaultPlan
from dci.testing import LoopbackServer

QUERIES = [messages.SearchQuery(f"ref-{i}", "NID", "1000000001") for i in range(2)]


def client(url, retries=0):
    return IbrClient(
        url,
        SigningKey.generate("spmis"),
        "spmis",
        timeout=(1, 1),
        session=retrying_session(retries=retries, status_retries=0),
    )


# -- one classification -------------------------------------------------------


def test_every_error_has_a_known_kind_and_a_transient_flag():
    classes = [
        c for _n, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, DCIError)
    ]
    assert len(classes) > 20
    for cls in classes:
        assert cls.kind in FAILURE_KINDS, cls
        assert isinstance(cls.transient, bool), cls
    transient = {c.__name__ for c in classes if c.transient}
    assert transient == {
        "PeerServerError",
        "PeerUnreachable",
        "ServiceUnavailable",
        "TooManyRequests",
        "UnreadableAnswer",
    }


@pytest.mark.parametrize(
    "code,status,kind",
    [
        ("err.request.unauthorized", None, "credentials"),
        ("err.request.forbidden", None, "credentials"),
        (None, 403, "credentials"),
        ("err.signature.invalid", 401, "not_trusted"),
        ("err.sender_id.invalid", None, "not_trusted"),
        ("err.receiver_id.invalid", None, "misaddressed"),
        ("err.sender_uri.invalid", None, "misaddressed"),
        (None, 404, "misaddressed"),
        ("err.request.bad", 400, "refused"),
        ("err.service.unavailable", None, "refused"),  # a coded refusal is final
    ],
)
def test_a_refusal_is_permanent_and_says_what_it_is_about(code, status, kind):
    error = PeerRejected("no", code=code, http_status=status)
    assert (error.kind, error.transient) == (kind, False)


def reply(body, status=200, headers=None):
    return status, headers or {}, json.dumps(body).encode()


def _reset(handler, _body):
    """Cut the connection with a TCP reset: no answer at all."""
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.connection.shutdown(socket.SHUT_RDWR)
    handler.close_connection = True
    return 200, {}, b""


@pytest.mark.parametrize(
    "answer,error,kind,retry_after",
    [
        (reply({}, 503, {"Retry-After": "7"}), PeerServerError, "ibr_error", 7),
        (reply({}, 500), PeerServerError, "ibr_error", None),
        (reply({}, 429, {"Retry-After": "2"}), TooManyRequests, "throttled", 2),
        (reply({}, 429, {"Retry-After": "soon"}), TooManyRequests, "throttled", None),
        ((200, {}, b"<html>maintenance"), UnreadableAnswer, "unreadable", None),
        (reply({"message": {"ack_status": "maybe"}}), UnreadableAnswer, "unreadable", None),
        (lambda h, b: (time.sleep(1.5), reply(messages.ack()))[1], PeerUnreachable, None, None),
    ],
    ids=["503", "500", "429", "429-bad-header", "html", "bad-ack", "timeout"],
)
def test_transient_failures_say_so(answer, error, kind, retry_after):
    with LoopbackServer({"/registry/search": answer}) as server:
        with pytest.raises(error) as info:
            client(server.url).search(QUERIES, sender_uri="http://127.0.0.1:9/cb")
    assert info.value.transient
    assert info.value.kind == (kind or "unreachable")
    assert info.value.retry_after == retry_after


def test_a_refused_and_a_reset_connection_are_transient():
    with LoopbackServer({}) as server:
        url = server.url
    with pytest.raises(PeerUnreachable) as refused:  # nobody listens there any more
        client(url).search(QUERIES, sender_uri="http://127.0.0.1:9/cb")
    assert "connection refused" in refused.value.message
    with LoopbackServer({"/registry/search": _reset}) as server:
        with pytest.raises(PeerUnreachable) as reset:
            client(server.url).search(QUERIES, sender_uri="http://127.0.0.1:9/cb")
    assert reset.value.transient


def test_an_err_ack_is_permanent():
    refusal = messages.err_ack(PeerRejected("who are you", code="err.sender_id.invalid"))
    with LoopbackServer({"/registry/search": reply(refusal)}) as server:
        with pytest.raises(PeerRejected) as info:
            client(server.url).search(QUERIES, sender_uri="http://127.0.0.1:9/cb")
    assert (info.value.kind, info.value.transient) == ("not_trusted", False)


def test_the_lease_covers_every_try_the_session_makes():
    one_try = client("http://127.0.0.1:9", retries=0)
    three_tries = client("http://127.0.0.1:9", retries=2)
    assert one_try.max_post_seconds() == 2
    assert three_tries.max_post_seconds() > 3 * 2  # three tries and the back-off between


# -- the fault plan -----------------------------------------------------------


def test_fault_plan_parses_rates_and_settings():
    plan = FaultPlan.parse(
        "seed=7, drop=0.1,reset=1, delay-seconds=0.5,stall-seconds=4,retry-after=3"
    )
    assert plan.rates == {"drop": 0.1, "reset": 1.0}
    assert (plan.seed, plan.delay, plan.stall, plan.retry_after) == (7, 0.5, 4, 3)
    assert "drop 0.1" in plan.describe()
    assert not FaultPlan.parse("") and FaultPlan.parse("drop=0.5")
    for bad in ("drop", "drop=lots", "flood=0.1", "drop=1.5"):
        with pytest.raises(ValueError):
            FaultPlan.parse(bad)


def test_fault_plan_is_reproducible_and_keeps_its_rates():
    keys = [messages.new_id() for _ in range(4000)]
    plan = FaultPlan.parse("seed=1,drop=0.25,duplicate=0.5")
    dropped = {k for k in keys if plan.hits("drop", k)}
    assert 800 < len(dropped) < 1200
    assert 1700 < sum(plan.hits("duplicate", k) for k in keys) < 2300
    assert dropped == {k for k in keys if FaultPlan.parse("seed=1,drop=0.25").hits("drop", k)}
    other_seed = {k for k in keys if FaultPlan.parse("seed=2,drop=0.25").hits("drop", k)}
    assert other_seed != dropped
    assert not any(plan.hits("reorder", k) for k in keys)
    assert set(FAULT_KINDS) >= {
        "drop",
        "duplicate",
        "concurrent-duplicate",
        "reorder",
        "delay",
        "early",
        "http-503",
        "reset",
        "bad-signature",
    }


class Callbacks:
    """A loopback callback receiver recording the on-search pages it gets, in order."""

    def __init__(self):
        self.pages = []
        self.server = LoopbackServer({"/cb": self.take})

    def take(self, _handler, body):
        envelope = json.loads(body)
        self.pages.append(
            (
                time.monotonic(),
                envelope["signature"],
                [
                    (i.get("pagination") or {}).get("page_number")
                    for i in envelope["message"]["search_response"]
                ],
            )
        )
        return reply(messages.ack())

    def wait(self, count, timeout=10):
        deadline = time.monotonic() + timeout
        while len(self.pages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.pages


def search_through(sim, faults, value="1000000004", expect=1):
    """One search of ``value`` against ``sim`` with ``faults``; the submission
    and the callbacks received once ``expect`` arrived (or 10 s passed)."""
    sim.faults = FaultPlan.parse(faults)
    callbacks = Callbacks()
    with callbacks.server:
        submission = client(sim.url).search(
            [messages.SearchQuery("ref-1", "NID", value)],
            sender_uri=callbacks.server.url + "/cb",
        )
        early = list(callbacks.pages)
        callbacks.wait(expect)
    return submission, callbacks, early


@pytest.fixture
def sim():
    with IbrSimulator(page_size=1) as simulator:
        yield simulator


def test_first_try_faults_then_the_resend_goes_through_once(sim):
    for kind, error in (
        ("http-503", PeerServerError),
        ("http-429", TooManyRequests),
        ("reset", PeerUnreachable),
    ):
        sim.faults = FaultPlan.parse(f"{kind}=1,retry-after=4")
        c = client(sim.url)
        envelope = c.search_envelope(QUERIES, sender_uri="http://127.0.0.1:9/cb")
        with pytest.raises(error) as info:
            c._ack(c._post("/registry/search", envelope))
        if kind != "reset":
            assert info.value.retry_after == 4
        resent = c.search(
            QUERIES,
            sender_uri="http://127.0.0.1:9/cb",
            transaction_id=envelope["message"]["transaction_id"],
        )
        assert resent.correlation_id, kind
        assert sim.stats[f"fault_{kind}"] == 1
        assert sim.faulted[kind] == {envelope["message"]["transaction_id"]}


def test_a_stalled_ack_is_a_timeout_and_the_resend_is_deduplicated(sim):
    sim.faults = FaultPlan.parse("stall=1,stall-seconds=1.5")
    c = client(sim.url)
    with pytest.raises(PeerUnreachable):
        c.search(QUERIES, sender_uri="http://127.0.0.1:9/cb", transaction_id="txn-stall")
    again = c.search(QUERIES, sender_uri="http://127.0.0.1:9/cb", transaction_id="txn-stall")
    assert again.correlation_id == sim.transactions["txn-stall"]["correlation_id"]
    assert sim.stats["resends_deduplicated"] == 1


def test_callback_faults(sim):
    _sub, plain, _ = search_through(sim, "", expect=3)
    assert [p[2] for p in plain.pages] == [[1], [2], [3]]
    _sub, reordered, _ = search_through(sim, "reorder=1", expect=3)
    assert [p[2] for p in reordered.pages] == [[3], [2], [1]]
    _sub, doubled, _ = search_through(sim, "duplicate=1", value="1000000001", expect=2)
    assert len(doubled.pages) == 2
    _sub, twins, _ = search_through(sim, "concurrent-duplicate=1", value="1000000001", expect=2)
    first, second = twins.pages
    assert first[1] == second[1] and abs(first[0] - second[0]) < 0.5
    _sub, forged, _ = search_through(sim, "bad-signature=1", value="1000000001", expect=2)
    bad, genuine = forged.pages
    assert bad[1] != genuine[1]  # a broken signature first, the genuine one after
    sent = time.monotonic()
    _sub, late, _ = search_through(sim, "delay=1,delay-seconds=0.8", value="1000000001")
    assert late.pages[0][0] - sent >= 0.8
    dropped_before = sim.stats["callbacks_dropped"]
    _sub, dropped, _ = search_through(sim, "drop=1", value="1000000001", expect=0)
    time.sleep(0.3)
    assert dropped.pages == [] and sim.stats["callbacks_dropped"] == dropped_before + 1
    submission, _all, early = search_through(sim, "early=1", value="1000000001")
    assert early, "the answer arrived before the acknowledgement"
    assert submission.correlation_id


def test_simulate_command_takes_a_fault_plan():
    from dci.cli import build_parser

    args = build_parser().parse_args(["simulate", "--faults", "seed=3,reset=0.1"])
    assert args.faults.rates == {"reset": 0.1} and args.faults.seed == 3
    with pytest.raises(SystemExit):
        build_parser().parse_args(["simulate", "--faults", "flood=1"])
