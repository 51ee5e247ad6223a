"""An answer is applied as a set: one UPDATE of the checks per answer, with
the same outcome as applying its items one by one, the hooks still called."""

import json
import re
from contextlib import contextmanager
from unittest.mock import patch

from odoo.tests import tagged

from ..dci import messages
from ..dci.schemas import SearchResponse
from .common import IbrCase, beneficiary

CHECK_UPDATE = re.compile(r"^\s*UPDATE\s+\"?spp_dci_duplication_check\"?\s", re.IGNORECASE)
# what an answer writes, compared between the two paths
FIELDS = [
    "state",
    "result",
    "result_source",
    "record_count",
    "pages_received",
    "pages_total",
    "matched_programs",
    "failure_kind",
    "error_message",
]


@tagged("post_install", "-at_install")
class TestAnswerAppliedAsASet(IbrCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.checks = cls.env["spp.dci.duplication.check"]
        cls.registrants = cls.env["res.partner"].create(
            [{"name": f"Set registrant {n}"} for n in range(6)]
        )

    def batch(self, transaction_id):
        """Six waiting checks of one batch, one registrant each, and their items:
        confirmed, possible, none, rejected, unreadable, still pending."""
        request = self.env["spp.dci.check.request"].create(
            {
                "identifier_type": "NID",
                "connection_id": self.connection.id,
                "partner_ids_json": json.dumps(self.registrants.ids),
                "state": "done",
            }
        )
        checks = self.checks.browse()
        for n, partner in enumerate(self.registrants):
            check = self.make_check(partner, value=f"20000000{n:02d}", request_id=request.id)
            self.mark_sent(check, transaction_id=transaction_id, correlation_id=transaction_id)
            checks |= check
        refs = checks.mapped("reference_id")
        self.env.flush_all()
        items = [
            self.item(refs[0], [beneficiary("NID", "2000000000", "Cash Transfer")]),
            self.item(refs[1], [beneficiary("NID", "2000000001", "Food", status="Exited")]),
            self.item(refs[2]),
            self.item(refs[3], status="rjct", status_reason_code="rjct.reference_id.invalid"),
            # "found" without saying what: cannot be read as no match
            {"reference_id": refs[4], "timestamp": messages.now_iso(), "status": "succ"},
            self.item(refs[5], status="pdng"),
        ]
        response = SearchResponse.model_validate(
            {
                "transaction_id": transaction_id,
                "correlation_id": transaction_id,
                "search_response": items,
            }
        )
        return request, checks, response

    @contextmanager
    def check_updates(self):
        """The UPDATE statements on the checks' table run inside the block."""
        statements = []
        real = type(self.env.cr).execute

        def recording(cr, query, params=None, log_exceptions=True):
            text = query.code if hasattr(query, "code") else str(query)
            if CHECK_UPDATE.match(text):
                statements.append(text)
            return real(cr, query, params, log_exceptions)

        with patch.object(type(self.env.cr), "execute", recording):
            yield statements

    def outcome(self, checks):
        checks.invalidate_recordset()
        return [
            [check[name] for name in FIELDS] + [sorted(check.match_ids.mapped("programme_name"))]
            for check in checks
        ]

    def test_one_update_per_answer_with_the_item_by_item_outcome(self):
        request, checks, response = self.batch("txn-set")
        with self.check_updates() as updates:
            orphans = self.checks._apply_search_response(response, self.sender)
            self.env.flush_all()
        self.assertFalse(orphans)
        self.assertEqual(len(updates), 1, updates)
        self.assertEqual(
            checks.mapped("state"),
            ["completed", "completed", "completed", "failed", "failed", "checking"],
        )
        self.assertEqual(
            checks.mapped("result"), ["confirmed_match", "possible_match", "no_match"] + [False] * 3
        )
        self.assertEqual(checks.mapped("failure_kind")[3:], ["rejected", "unreadable", False])
        self.assertTrue(all(json.loads(c.raw_response) for c in checks[:4] | checks[5]))

        # the same answer to a second batch, applied the way an override of
        # the per-item hook makes it: item by item, through that hook
        _request2, checks2, response2 = self.batch("txn-one-by-one")
        model = type(self.checks)
        seen = []
        original = model._process_ibr_search_result

        def overridden(check, item):
            seen.append(check.reference_id)
            return original(check, item)

        with patch.object(model, "_process_ibr_search_result", overridden):
            self.assertTrue(self.checks._applies_items_one_by_one())
            self.checks._apply_search_response(response2, self.sender)
        self.assertEqual(seen, checks2.mapped("reference_id"))
        self.assertFalse(self.checks._applies_items_one_by_one())
        self.assertEqual(self.outcome(checks), self.outcome(checks2))

        # the batch figures follow: three completed (two matches), two failed, one open
        request.invalidate_recordset()
        figures = (request.open_count, request.completed_count, request.failed_count)
        self.assertEqual(figures + (request.match_count,), (1, 3, 2, 2))

    def test_what_is_computed_from_a_check_sees_the_answer(self):
        _request, checks, response = self.batch("txn-computed")
        partner = checks[0].partner_id
        self.assertEqual(partner.dci_latest_state, "checking")  # read, so cached
        self.checks._apply_search_response(response, self.sender)
        self.assertEqual(partner.dci_last_result, "confirmed_match")
        self.assertFalse(partner.dci_latest_state)
        self.assertEqual(partner.dci_matched_programs, "Cash Transfer")

    def test_two_pages_of_one_check_in_one_message(self):
        check = self.make_check(value="2000000100")
        self.mark_sent(check, transaction_id="txn-pages")
        pages = [
            dict(
                self.item(check.reference_id, [beneficiary("NID", "2000000100", name)]),
                pagination={"page_size": 1, "total_count": 2, "page_number": number},
            )
            for number, name in ((1, "Cash Transfer"), (2, "Old Age Pension"))
        ]
        response = SearchResponse.model_validate(
            {"transaction_id": "txn-pages", "correlation_id": "c", "search_response": pages}
        )
        self.assertFalse(self.checks._apply_search_response(response, self.sender))
        self.assertEqual((check.state, check.pages_received), ("completed", 2))
        self.assertEqual(check.matched_programs.split("\n"), ["Cash Transfer", "Old Age Pension"])
        # a third copy of page 2 in a later message finds the check answered
        late = SearchResponse.model_validate(
            {"transaction_id": "txn-pages", "correlation_id": "c", "search_response": pages[1:]}
        )
        self.assertIn("completed", self.checks._apply_search_response(late, self.sender)[0][1])

    def test_the_send_gives_each_check_its_reference_in_one_update(self):
        checks = self.checks.browse()
        for n, partner in enumerate(self.registrants):
            checks |= self.make_check(partner, value=f"20000002{n:02d}", state="queued")
        self.env.flush_all()
        with self.check_updates() as updates:
            txn = self.env["spp.dci.ibr.transaction"]._claim_queued()
            self.env.flush_all()
        self.assertEqual(len(updates), 1, updates)
        self.assertEqual(txn.check_ids, checks)  # read right after, as the send does
        self.assertEqual(set(checks.mapped("state")), {"checking"})
        self.assertEqual(len(set(checks.mapped("reference_id"))), len(checks))
        self.assertTrue(all(checks.mapped("reference_id")))
        # a message whose checks were read before they were given to it
        again = self.env["spp.dci.ibr.transaction"].create(
            {"transaction_id": "txn-again", "connection_id": self.connection.id}
        )
        self.assertFalse(again.check_ids)
        checks[:2]._assign_to(again)
        self.assertEqual((again.check_ids, txn.check_ids), (checks[:2], checks[2:]))
