"""Two deliveries at the same instant, through Odoo's threaded HTTP server.

``HttpCase`` normally serves every request on the test's one cursor, one at a
time. Here the registry stays out of test mode: the data is committed with
ordinary cursors, and each request runs in its own transaction on its own
server thread, as in production. A barrier inside the server makes the two
requests overlap for certain; PostgreSQL then refuses one of them (row lock or
unique key) and Odoo retries it, which must end in one consistent result.

Everything this class commits is removed again in its cleanup.
"""

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from unittest.mock import patch

import requests

from odoo import api
from odoo.tests import tagged

from ..dci import messages
from ..dci.keys import SigningKey
from ..dci.signatures import sign_envelope
from ..dci.simulator.dataset import beneficiary
from ..models.dci_replay_entry import OdooReplayGuard
from .common import CommittingHttpCase, recorded_logs

SENDER_ID = "ibr.concurrent"
OUR_ID = "spmis.concurrent"


class _Rendezvous:
    """Hold the first ``parties`` callers until all have arrived; let later ones pass.

    Retries (after a serialization failure) come later and must not wait.
    """

    def __init__(self, parties=2, timeout=10):
        self.barrier = threading.Barrier(parties, timeout=timeout)
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            self.calls += 1
            first_ones = self.calls <= self.barrier.parties
        if first_ones:
            self.barrier.wait()


@tagged("post_install", "-at_install")
class TestConcurrentDeliveries(CommittingHttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.key = SigningKey.generate(SENDER_ID, "ed25519")
        with cls.registry.cursor() as cr:
            env = api.Environment(cr, api.SUPERUSER_ID, {"tracking_disable": True})
            sender = env["spp.dci.ibr.sender"].create(
                {"name": "Concurrent IBR", "sender_id": SENDER_ID}
            )
            sender._store_keys([cls.key.public])
            connection = env["spp.dci.ibr.connection"].create(
                {
                    "name": "Concurrent",
                    "base_url": "http://127.0.0.1:9",
                    "our_sender_id": OUR_ID,
                    "ibr_sender_id": sender.id,
                }
            )
            partner = env["res.partner"].create({"name": "Concurrent registrant"})
            cls.ids = {"sender": sender.id, "connection": connection.id, "partner": partner.id}
        cls.addClassCleanup(cls._remove_committed_data)

    @classmethod
    def _remove_committed_data(cls):
        with cls.registry.cursor() as cr:
            env = api.Environment(cr, api.SUPERUSER_ID, {"active_test": False})
            env["spp.dci.duplication.check"].search(
                [("data_source_id", "=", cls.ids["connection"])]
            ).unlink()
            env["spp.dci.replay.entry"].search([("sender_id", "=", SENDER_ID)]).unlink()
            env["spp.dci.callback.orphan"].search([("sender_id", "=", SENDER_ID)]).unlink()
            env["spp.dci.ibr.connection"].browse(cls.ids["connection"]).unlink()
            env["spp.dci.ibr.sender"].browse(cls.ids["sender"]).unlink()
            env["res.partner"].browse(cls.ids["partner"]).unlink()

    # -- helpers -----------------------------------------------------------

    def _committed_check(self, reference_id, transaction_id):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, api.SUPERUSER_ID, {"tracking_disable": True})
            check = env["spp.dci.duplication.check"].create(
                {
                    "partner_id": self.ids["partner"],
                    "identifier_type": "NID",
                    "identifier_value": "1000000001",
                    "data_source_id": self.ids["connection"],
                    "state": "checking",
                    "reference_id": reference_id,
                    "transaction_id": transaction_id,
                }
            )
            return check.id

    def _read_check(self, check_id, bodies):
        message_ids = list({json.loads(body)["header"]["message_id"] for body in bodies})
        with self.registry.cursor() as cr:
            env = api.Environment(cr, api.SUPERUSER_ID, {})
            check = env["spp.dci.duplication.check"].browse(check_id)
            replays = env["spp.dci.replay.entry"].search_count(
                [("sender_id", "=", SENDER_ID), ("message_id", "in", message_ids)]
            )
            return {
                "state": check.state,
                "result": check.result,
                "pages": check.pages_received,
                "programmes": sorted((check.matched_programs or "").split("\n")),
                "stored_pages": len(json.loads(check.raw_response or "[]")),
                "replay_rows": replays,
            }

    def _body(self, reference_id, transaction_id, programme, page, total=2):
        item = {
            "reference_id": reference_id,
            "timestamp": messages.now_iso(),
            "status": "succ",
            "data": {"reg_records": [beneficiary("NID", "1000000001", programme)]},
            "pagination": {"page_size": 1, "page_number": page, "total_count": total},
        }
        header = messages.callback_header("on-search", SENDER_ID, status="succ", receiver_id=OUR_ID)
        message = {
            "transaction_id": transaction_id,
            "correlation_id": "c",
            "search_response": [item],
        }
        return json.dumps(sign_envelope(header, message, self.key)).encode()

    def _post_together(self, bodies):
        """POST the bodies at the same moment, each on its own connection."""
        url = f"{self.base_url()}/dci_api/ibr/on-search"
        # One request first, alone: the server builds its routing map (and the
        # endpoint addon syncs its routes) on first use; that is not under test.
        warm_up = requests.post(
            url, data=b"{}", headers={"Content-Type": "application/json"}, timeout=30
        )
        self.assertEqual(warm_up.status_code, 400)
        start = threading.Barrier(len(bodies))

        def post(body):
            start.wait(timeout=10)
            response = requests.post(
                url, data=body, headers={"Content-Type": "application/json"}, timeout=60
            )
            return response.status_code, response.json()["message"]["ack_status"]

        # PostgreSQL refuses one of the two (and Odoo retries it): that is no
        # error to log, and the failed statement must not carry personal data
        with recorded_logs() as logs, ThreadPoolExecutor(len(bodies)) as pool:
            answers = list(pool.map(post, bodies))
        self.assertEqual([r.getMessage() for r in logs if r.levelno >= logging.ERROR], [])
        text = "\n".join(r.getMessage() for r in logs)
        for personal in ("1000000001", "Sample", "1990-05-02"):
            self.assertNotIn(personal, text)
        return answers

    # -- the tests ---------------------------------------------------------

    def test_two_pages_at_once_end_in_one_complete_result(self):
        check_id = self._committed_check("ref-pages", "txn-pages")
        bodies = [
            self._body("ref-pages", "txn-pages", "Programme A", 1),
            self._body("ref-pages", "txn-pages", "Programme B", 2),
        ]
        check_model = type(self.env["spp.dci.duplication.check"])
        apply = check_model._apply_search_response
        rendezvous = _Rendezvous()

        def overlapping_apply(records, response, sender):
            rendezvous()  # both requests hold their own transaction here
            return apply(records, response, sender)

        with patch.object(check_model, "_apply_search_response", overlapping_apply):
            answers = self._post_together(bodies)

        self.assertEqual(answers, [(200, "ACK"), (200, "ACK")])
        # both met inside the server, so one of them had to be retried by Odoo
        self.assertGreaterEqual(rendezvous.calls, 3)
        self.assertEqual(
            self._read_check(check_id, bodies),
            {
                "state": "completed",
                "result": "confirmed_match",
                "pages": 2,
                "programmes": ["Programme A", "Programme B"],
                "stored_pages": 2,
                "replay_rows": 2,
            },
        )

    def test_the_same_message_twice_at_once_is_applied_once(self):
        check_id = self._committed_check("ref-dup", "txn-dup")
        body = self._body("ref-dup", "txn-dup", "Programme C", 1, total=1)
        register = OdooReplayGuard.register
        rendezvous = _Rendezvous()

        def overlapping_register(guard, *args):
            rendezvous()  # both verified the signature; neither has stored the message
            return register(guard, *args)

        with patch.object(OdooReplayGuard, "register", overlapping_register):
            answers = self._post_together([body, body])

        self.assertEqual(answers, [(200, "ACK"), (200, "ACK")])
        self.assertGreaterEqual(rendezvous.calls, 3)  # the loser was retried
        state = self._read_check(check_id, [body])
        self.assertEqual(
            (state["state"], state["pages"], state["stored_pages"], state["programmes"]),
            ("completed", 1, 1, ["Programme C"]),
        )
        self.assertEqual(state["replay_rows"], 1)
