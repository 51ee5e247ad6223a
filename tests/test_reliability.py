"""Unattended reliability: transient send failures are resent under the same
ids, only a spent retry budget fails checks, the stale job leaves messages
waiting for their resend alone, and the connection's health is kept."""

import json
import socket
import struct
import time
from datetime import timedelta

from odoo import fields
from odoo.exceptions import ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from ..dci import messages
from ..dci.errors import FAILURE_KINDS
from ..dci.testing import LoopbackServer
from ..models.duplication_check import FAILURES
from ..models.send_failure import covered_kinds
from .common import IbrCase, beneficiary

QUIET = (
    "odoo.addons.spp_dci_client_ibr.models.ibr_transaction",
    "odoo.addons.spp_dci_client_ibr.models.ibr_connection",
    "odoo.addons.spp_dci_client_ibr.dci.client",
)


def ack(correlation_id="corr-r"):
    return 200, {}, json.dumps(messages.ack(correlation_id)).encode()


def reset(handler, _body):
    """Cut the connection with a TCP reset, no answer."""
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.connection.shutdown(socket.SHUT_RDWR)
    handler.close_connection = True
    return 200, {}, b""


def stall(_handler, _body):
    time.sleep(1.5)  # past the connection's 1 s timeout: no acknowledgement in time
    return ack()


FIRST_TRIES = {
    "reset": reset,
    "timeout": stall,
    "503": (503, {"Retry-After": "1"}, b"{}"),
    "429": (429, {"Retry-After": "120"}, b"{}"),
}


class FirstTryFails:
    """A route: ``first`` for the first request, then an acknowledgement."""

    def __init__(self, first, then=None):
        self.first, self.then, self.calls = first, then or ack(), 0

    def __call__(self, handler, body):
        self.calls += 1
        answer = self.first if self.calls == 1 else self.then
        return answer(handler, body) if callable(answer) else answer


def searches(server, path="/registry/search"):
    """``(transaction id, reference ids, message id)`` of each search the IBR received."""
    found = []
    for _m, where, _h, body in server.requests:
        if where == path:
            envelope = json.loads(body)
            message = envelope["message"]
            items = message.get("search_request") or message.get("subscribe_request") or []
            found.append(
                (
                    message["transaction_id"],
                    sorted(i["reference_id"] for i in items),
                    envelope["header"]["message_id"],
                )
            )
    return found


@tagged("post_install", "-at_install")
class TestResend(IbrCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.checks = cls.env["spp.dci.duplication.check"]
        cls.connection.write(
            {
                "retry_max_attempts": 4,
                "retry_first_delay": 30,
                "timeout": 1,
                "callback_url": "http://127.0.0.1:9/dci_api/ibr/on-search",
            }
        )

    def send(self, checks):
        checks.action_run_check()
        self.env["spp.dci.ibr.transaction"]._cron_send_queued()

    def make_due(self, txn):
        txn.next_attempt_at = fields.Datetime.now() - timedelta(seconds=1)

    def answer(self, checks, transaction_id):
        """The IBR's signed on-search for ``checks``, delivered to the callback route."""
        items = [
            self.item(c.reference_id, [beneficiary("NID", "1000000001", "Cash Transfer")])
            for c in checks
        ]
        body = self.on_search_body(items, transaction_id=transaction_id)
        status, _ack = self.env["spp.dci.callback.service"].on_search(body)
        self.assertEqual(status, 200)

    def test_a_transient_first_try_is_resent_under_the_same_ids(self):
        for name, first in FIRST_TRIES.items():
            with self.subTest(first_try=name):
                checks = self.make_check() | self.make_check(self.partner2)
                route = FirstTryFails(first)
                before = fields.Datetime.now()
                with LoopbackServer({"/registry/search": route}) as server, mute_logger(*QUIET):
                    self.connection.base_url = server.url
                    self.send(checks)
                    txn = checks.ibr_transaction_id
                    self.assertEqual((txn.state, txn.attempts), ("retrying", 1), name)
                    self.assertEqual(set(checks.mapped("state")), {"checking"}, name)
                    self.assertIn("Retrying:", checks[0].waiting_reason)
                    self.assertIn("(attempt 1 of 4, next at", checks[0].waiting_reason)
                    if name == "429":  # never sooner than the IBR's Retry-After
                        self.assertGreaterEqual(
                            txn.next_attempt_at, before + timedelta(seconds=119)
                        )
                    else:  # the first back-off: between half and all of 30 s
                        self.assertLessEqual(txn.next_attempt_at, before + timedelta(seconds=32))
                    self.env["spp.dci.ibr.transaction"]._cron_send_queued()  # not due yet
                    self.assertEqual(len(searches(server)), 1, name)
                    self.make_due(txn)
                    self.env["spp.dci.ibr.transaction"]._cron_send_queued()
                self.assertEqual(
                    (txn.state, txn.attempts, txn.correlation_id), ("sent", 2, "corr-r")
                )
                first_send, resend = searches(server)
                self.assertEqual(first_send[:2], resend[:2], "the same transaction and references")
                self.assertEqual(
                    first_send[:2], (txn.transaction_id, sorted(checks.mapped("reference_id")))
                )
                self.assertNotEqual(first_send[2], resend[2], "each send is a new message")
                self.assertFalse(checks[0].waiting_reason)
                self.answer(checks, txn.transaction_id)
                self.assertEqual(set(checks.mapped("state")), {"completed"}, name)
                self.assertFalse(any(checks.mapped("failure_kind")))

    def test_a_spent_retry_budget_fails_the_checks_once_with_the_last_reason(self):
        self.connection.retry_max_attempts = 2
        check = self.make_check()
        answers = [(502, {}, b"{}"), (503, {}, b"{}"), (503, {}, b"{}")]
        with LoopbackServer({"/registry/search": lambda h, b: answers.pop(0)}) as server:
            self.connection.base_url = server.url
            with mute_logger(*QUIET):
                self.send(check)
                txn = check.ibr_transaction_id
                self.assertEqual((check.state, txn.state), ("checking", "retrying"))
                self.make_due(txn)
                self.env["spp.dci.ibr.transaction"]._cron_send_queued()
                self.env["spp.dci.ibr.transaction"]._cron_send_queued()  # nothing left to send
        self.assertEqual(len(server.requests), 2)
        self.assertEqual((check.state, check.failure_kind), ("failed", "ibr_error"))
        self.assertIn("answered HTTP 503", check.error_message)  # the last reason, not 502
        self.assertIn("Sent 2 times since", check.error_message)
        self.assertEqual(
            (txn.state, txn.attempts, txn.error_message), ("failed", 2, check.error_message)
        )

    def test_a_coded_refusal_fails_at_once(self):
        refusal = messages.err_ack(messages_error("err.request.bad", "no such registry"))
        for answer in ((200, {}, json.dumps(refusal).encode()), (400, {}, b"{}")):
            check = self.make_check()
            with LoopbackServer({"/registry/search": answer}) as server, mute_logger(*QUIET):
                self.connection.base_url = server.url
                self.send(check)
            self.assertEqual(len(server.requests), 1)
            self.assertEqual((check.state, check.failure_kind), ("failed", "refused"))
            self.assertEqual(check.ibr_transaction_id.attempts, 1)

    def test_the_stale_job_leaves_a_message_waiting_for_its_resend_alone(self):
        self.connection.write({"stale_after_minutes": 1, "poll_status_before_failing": True})
        long_ago = fields.Datetime.now() - timedelta(hours=5)
        waiting, answered_late, stale = self.make_check(), self.make_check(), self.make_check()
        for check, txn_id in ((waiting, "t-wait"), (answered_late, "t-late"), (stale, "t-stale")):
            self.mark_sent(check, transaction_id=txn_id)
            check.sent_at = long_ago
        waiting.ibr_transaction_id.write(
            {"state": "retrying", "next_attempt_at": fields.Datetime.now() + timedelta(hours=1)}
        )
        answered_late.ibr_transaction_id.sent_at = fields.Datetime.now()  # acknowledged now
        stale.ibr_transaction_id.sent_at = long_ago
        with LoopbackServer({}) as server:
            self.connection.base_url = server.url
            with mute_logger(*QUIET):
                self.checks._cron_watch_answers()
        polled = {
            json.loads(b)["message"]["txnstatus_request"]["attribute_value"]
            for *_x, b in server.requests
        }
        self.assertEqual(polled, {"t-stale"}, "only the acknowledged, stale message is polled")
        self.assertEqual((waiting.state, answered_late.state), ("checking", "checking"))
        self.assertEqual((stale.state, stale.failure_kind), ("failed", "no_answer"))

    def test_a_status_request_failing_transiently_is_asked_again_later(self):
        self.connection.write({"stale_after_minutes": 1, "poll_status_before_failing": True})
        check = self.make_check()
        self.mark_sent(check, transaction_id="t-status")
        check.sent_at = check.ibr_transaction_id.sent_at = fields.Datetime.now() - timedelta(
            hours=1
        )
        with LoopbackServer({"/registry/sync/txn/status": (503, {}, b"{}")}) as server:
            self.connection.base_url = server.url
            with mute_logger(*QUIET):
                self.checks._cron_watch_answers()
                self.assertEqual(check.state, "checking", "the status request is sent again")
                self.assertTrue(check.ibr_transaction_id.status_next_at)
                self.checks._cron_watch_answers()  # not due yet: not asked again
                self.assertEqual(len(server.requests), 1)
                self.connection.retry_max_attempts = 2
                check.ibr_transaction_id.status_next_at = fields.Datetime.now() - timedelta(
                    seconds=1
                )
                self.checks._cron_watch_answers()  # the second failure spends the budget
        self.assertEqual(len(server.requests), 2)
        self.assertEqual((check.state, check.failure_kind), ("failed", "no_answer"))

    def test_subscriptions_are_resent_under_the_same_ids(self):
        self.env["spp.dci.registrant.identifier"].create(
            {"partner_id": self.partner.id, "id_type": "NID", "value": "1000000001"}
        )
        subscriptions = self.env["spp.dci.ibr.subscription"]
        route = FirstTryFails((503, {}, b"{}"))
        with LoopbackServer({"/registry/subscribe": route}) as server, mute_logger(*QUIET):
            self.connection.base_url = server.url
            sub = subscriptions._subscribe_partners(self.partner, self.connection)
            subscriptions._cron_send_pending()
            self.assertEqual((sub.pending_action, sub.send_attempts), ("subscribe", 1))
            self.assertIn("Retrying:", sub.error_message)
            subscriptions._cron_send_pending()  # not due yet
            self.assertEqual(len(server.requests), 1)
            sub.next_attempt_at = fields.Datetime.now() - timedelta(seconds=1)
            subscriptions._cron_send_pending()
        first_send, resend = searches(server, "/registry/subscribe")
        self.assertEqual(first_send[:2], resend[:2])
        self.assertEqual(first_send[:2], (sub.transaction_id, [sub.reference_id]))
        self.assertEqual(
            (sub.pending_action, sub.send_attempts, sub.error_message), (False, 0, False)
        )
        self.assertEqual(sub.correlation_id, "corr-r")

    def test_the_retry_schedule_cannot_contradict_itself(self):
        with self.assertRaisesRegex(ValidationError, "before its first resend"):
            self.connection.write({"retry_window_minutes": 1, "retry_first_delay": 120})
        self.connection.write({"retry_window_minutes": 0, "retry_first_delay": 120})  # no deadline
        short = self.connection._lease_seconds()
        self.connection.timeout = 20
        self.assertGreater(self.connection._lease_seconds(), short + 2 * 19)
        self.connection.use_enrolled_precheck = True  # one request per check, then the search
        self.assertGreater(
            self.connection._lease_seconds(),
            (self.connection.batch_size + 1) * 2 * 20,
        )

    def test_every_failure_kind_has_words_and_a_check_value(self):
        self.assertEqual(covered_kinds(self.env), set(FAILURE_KINDS))
        self.assertLessEqual(set(FAILURE_KINDS), {value for value, _label in FAILURES})

    def test_connection_health_one_alert_and_a_recovery_line(self):
        conn = self.connection
        conn.alert_after_minutes = 30
        self.assertEqual(conn.health, "unknown")
        checks = self.make_check() | self.make_check(self.partner2)
        with LoopbackServer({"/registry/search": (503, {}, b"{}")}) as server, mute_logger(*QUIET):
            conn.base_url = server.url
            self.send(checks[0])
            self.assertEqual((conn.consecutive_failures, conn.health), (1, "failing"))
            self.assertIn("HTTP 503", conn.last_failure_reason)
            conn.env.cr.execute(  # the failures began long ago
                "UPDATE spp_dci_ibr_connection SET failing_since = %s WHERE id = %s",
                (fields.Datetime.now() - timedelta(hours=2), conn.id),
            )
            conn.invalidate_recordset(["failing_since"])
            self.send(checks[1])
            for txn in checks.ibr_transaction_id:
                self.make_due(txn)
            self.env["spp.dci.ibr.transaction"]._cron_send_queued()
        self.assertEqual((conn.consecutive_failures, conn.health), (4, "down"))
        alerts = conn.message_ids.filtered(lambda m: "is down" in (m.body or ""))
        self.assertEqual(len(alerts), 1, "one alert for the outage, not one per failure")
        admins = self.env.ref("base.group_system").all_user_ids.partner_id
        self.assertTrue(alerts.partner_ids & admins)
        with LoopbackServer({"/registry/search": ack()}) as server:
            conn.base_url = server.url
            for txn in checks.ibr_transaction_id:
                self.make_due(txn)
            self.env["spp.dci.ibr.transaction"]._cron_send_queued()
        self.assertEqual((conn.consecutive_failures, conn.health), (0, "ok"))
        self.assertTrue(conn.last_success_at)
        recovered = conn.message_ids.filtered(lambda m: "works again" in (m.body or ""))
        self.assertEqual(len(recovered), 1)
        self.assertEqual(len(conn.message_ids.filtered(lambda m: "is down" in (m.body or ""))), 1)


def messages_error(code, text):
    from ..dci.errors import PeerRejected

    return PeerRejected(text, code=code)
