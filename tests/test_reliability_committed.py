"""A misbehaving IBR in real transactions: the simulator's fault plan against
the send job and Odoo's threaded HTTP server (callbacks race our commits),
and refused deliveries arriving all at once. Everything committed here is
removed in the class cleanup."""

import base64
import json
import threading
import time
from dataclasses import replace

import requests

from odoo.tests import tagged
from odoo.tools import mute_logger

from ..dci.cavage import SignatureParams
from ..dci.simulator.faults import FaultPlan
from .common import SimulatorCommittedCase

EXPECTED = {
    "1000000001": "confirmed_match",
    "1000000002": "possible_match",
    "1000000003": "no_match",
}
QUIET = (
    "odoo.addons.spp_dci_client_ibr.models.ibr_transaction",
    "odoo.addons.spp_dci_client_ibr.models.callback_service",
    "odoo.addons.spp_dci_client_ibr.dci.client",
    "odoo.addons.spp_dci_client_ibr.models.duplication_check",
)


def forged(envelope):
    """``envelope`` with one byte of its signature flipped."""
    params = SignatureParams.parse(envelope["signature"])
    raw = bytearray(params.signature_bytes())
    raw[0] ^= 0xFF
    signature = replace(params, signature=base64.b64encode(bytes(raw)).decode()).format()
    return dict(envelope, signature=signature)


@tagged("post_install", "-at_install")
class TestReliabilityCommitted(SimulatorCommittedCase):
    label = "reliability"
    our_sender_id = "spmis.reliable"
    officer_login = "reliable_officer"
    connection_vals = {"timeout": 1, "retry_first_delay": 3, "retry_max_attempts": 3}

    def _queue(self, count):
        values = list(EXPECTED)
        return self.queue_as_officer([values[n % len(values)] for n in range(count)])

    def received(self):
        """``(action, transaction id, sorted reference ids)`` of every request taken."""
        return [
            (
                action,
                r.transaction_id,
                sorted(i.reference_id for i in getattr(r, "search_request", None) or []),
            )
            for action, r in self.requests
        ]

    def _run_job(self):
        with self.env_cursor() as env:
            env["spp.dci.ibr.transaction"]._cron_send_queued()

    def _state_of(self, ids):
        with self.env_cursor() as env:
            checks = env["spp.dci.duplication.check"].browse(ids)
            return (
                {c.id: (c.state, c.result) for c in checks},
                {c.id: c.identifier_value for c in checks},
                checks.ibr_transaction_id.read(["state", "attempts", "transaction_id"]),
            )

    def _until_answered(self, ids, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states, _values, _txns = self._state_of(ids)
            if "checking" not in {s for s, _r in states.values()}:
                break
            time.sleep(0.1)

    def test_a_reset_a_timeout_a_503_and_a_429_on_the_first_try_complete(self):
        for kind in ("reset", "stall", "http-503", "http-429"):
            with self.subTest(fault=kind):
                self.requests.clear()
                self.sim.stats.clear()
                # a stalled acknowledgement: the IBR took the search; its answer is
                # late enough (delay) for our resend to reach it, which it dedupes
                self.sim.faults = FaultPlan.parse(
                    f"{kind}=1,stall-seconds=2,retry-after=3,delay={int(kind == 'stall')},"
                    "delay-seconds=8"
                )
                ids = self._queue(3)
                with mute_logger(*QUIET):
                    self._run_job()  # the first try fails
                    [txn] = self._state_of(ids)[2]
                    self.assertEqual((txn["state"], txn["attempts"]), ("retrying", 1), kind)
                    time.sleep(3.1)  # the back-off (at most 3 s), and Retry-After: 3
                    self._run_job()
                    self._until_answered(ids)
                states, values, [txn] = self._state_of(ids)
                self.assertEqual(states, {i: ("completed", EXPECTED[values[i]]) for i in ids}, kind)
                self.assertEqual((txn["state"], txn["attempts"]), ("sent", 2), kind)
                searched = [r for r in self.received() if r[0] == "search"]
                # one transaction per attempt reached the IBR, under the same ids (a
                # reset or 503 is answered before the request is read)
                expected = 2 if kind == "stall" else 1
                self.assertEqual(len(searched), expected, kind)
                self.assertEqual({r[1] for r in searched}, {txn["transaction_id"]})
                self.assertEqual(self.sim.stats[f"fault_{kind}"], 1)
                self.assertEqual(
                    self.sim.stats["resends_deduplicated"], 1 if kind == "stall" else 0
                )

    def test_n_concurrent_refused_deliveries_add_exactly_n(self):
        n = 8
        message = {"transaction_id": "t-forged", "correlation_id": "c", "search_response": []}
        bodies = [
            json.dumps(forged(self.sim.signed("on-search", message, "spmis.reliable")))
            for _ in range(n)
        ]
        start = threading.Barrier(n, timeout=20)
        statuses = []
        url = f"{self.base_url()}/dci_api/ibr/on-search"

        def deliver(body):
            start.wait()
            answer = requests.post(
                url, data=body, headers={"Content-Type": "application/json"}, timeout=60
            )
            statuses.append(answer.status_code)

        threads = [threading.Thread(target=deliver, args=(b,)) for b in bodies]
        with mute_logger(*QUIET, "odoo.service.model"):
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=90)
        self.assertEqual(statuses, [401] * n)
        with self.env_cursor() as env:
            rows = env["spp.dci.delivery.log"].search(
                [
                    ("sender_id", "=", self.ids["sender"]),
                    ("route", "=", "on-search"),
                    ("code", "=", "err.signature.invalid"),
                ]
            )
            # one row an hour: two if the test ran across the turn of an hour
            self.assertIn(len(rows), (1, 2))
            self.assertEqual(sum(rows.mapped("count")), n, "every refusal is counted")
