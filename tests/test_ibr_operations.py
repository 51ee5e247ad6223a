"""The client side of every IBR operation, over Odoo's real HTTP server:
subscribe -> on-subscribe -> notify changes the registrant's result and tells
the officer; unsubscribe -> on-unsubscribe ends it; txn/on-status completes a
waiting check; forged, replayed, unsigned and wrong-sender variants of each
new callback are refused with ERR codes and change nothing. What we send goes
through the send jobs, captured at the transport: no click waits on the IBR."""

import json
from datetime import timedelta
from unittest.mock import patch

from odoo import fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import HttpCase, tagged
from odoo.tests.common import new_test_user

from ..dci import messages
from ..dci.client import IbrClient
from ..dci.keys import SigningKey
from ..dci.signatures import sign_envelope
from ..dci.simulator import IbrSimulator
from ..dci.simulator.dataset import beneficiary
from ..models import db_retry
from .common import LoopbackRequests

SENDER = "ibr.ops"
OURS = "spmis.ops"
JSON = {"Content-Type": "application/json"}


class Transport:
    """Stands in for the network under ``IbrClient._post``: keeps each envelope, ACKs it."""

    def __init__(self):
        self.sent = []

    def __call__(self, path, envelope):
        self.sent.append((path, envelope))
        return json.dumps(messages.ack("corr-" + path.rsplit("/", 1)[-1])).encode()


@tagged("post_install", "-at_install")
class TestIbrOperations(LoopbackRequests, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.startClassPatcher(patch.object(db_retry, "commit", lambda env: env.flush_all()))
        cls.key = SigningKey.generate(SENDER, "ed25519", key_id="k1")
        cls.sender = cls.env["spp.dci.ibr.sender"].create({"name": "Ops IBR", "sender_id": SENDER})
        cls.sender._store_keys([cls.key.public])
        cls.connection = cls.env["spp.dci.ibr.connection"].create(
            {
                "name": "Ops IBR",
                "base_url": "http://127.0.0.1:9",
                "our_sender_id": OURS,
                "receiver_id": SENDER,
                "ibr_sender_id": cls.sender.id,
                "sequence": 1,
            }
        )
        cls.connection.action_generate_signing_key()
        cls.partner = cls.env["res.partner"].create({"name": "Subscribed registrant"})
        cls.env["spp.dci.registrant.identifier"].create(
            {"partner_id": cls.partner.id, "id_type": "NID", "value": "1000000001"}
        )
        cls.env.ref("spp_dci_client_ibr.fastapi_endpoint_dci_api")._handle_registry_sync()

    # -- helpers -----------------------------------------------------------

    def send_jobs(self, job):
        transport = Transport()
        with patch.object(IbrClient, "_post", transport):
            job()
        return transport.sent

    def post(self, path, body):
        response = self.url_open("/dci_api/ibr/" + path, data=body, headers=JSON)
        return response.status_code, response.json()["message"]

    def signed(self, action, message, *, key=None, sender=SENDER, request=False, **header):
        if request:  # on-subscribe and on-unsubscribe have the request header
            head = messages.request_header(action, sender, total_count=1, receiver_id=OURS)
        else:
            head = messages.callback_header(
                action, sender, status=header.pop("status", "succ"), receiver_id=OURS
            )
        head.update(header)
        return sign_envelope(head, message, key or self.key)

    @staticmethod
    def body(envelope):
        return json.dumps(envelope).encode()

    def subscribe_active(self):
        """Subscribe the registrant and answer as the IBR: return the subscription."""
        self.partner.action_ibr_subscribe()
        sent = self.send_jobs(self.env["spp.dci.ibr.subscription"]._cron_send_pending)
        [(path, envelope)] = sent
        self.assertEqual(path, "/registry/subscribe")
        item = envelope["message"]["subscribe_request"][0]
        answer = {
            "transaction_id": envelope["message"]["transaction_id"],
            "correlation_id": "corr-subscribe",
            "subscribe_response": [
                {
                    "reference_id": item["reference_id"],
                    "timestamp": messages.now_iso(),
                    "status": "succ",
                    "subscriptions": [
                        {"code": "SUB-1", "status": "subscribe", "timestamp": messages.now_iso()}
                    ],
                }
            ],
        }
        status, ack = self.post(
            "on-subscribe", self.body(self.signed("on-subscribe", answer, request=True))
        )
        self.assertEqual((status, ack["ack_status"]), (200, "ACK"))
        subscription = self.partner.dci_subscription_ids
        subscription.invalidate_recordset()
        return subscription

    def notify_message(self, code="SUB-1", status="Active", value="1000000001"):
        return {
            "transaction_id": messages.new_id(),
            "notify_event": [
                {
                    "reference_id": messages.new_id(),
                    "timestamp": messages.now_iso(),
                    "subscription_code": code,
                    "data": {
                        "reg_event_type": messages.ENROLMENT_EVENT,
                        "reg_record_type": "Beneficiary",
                        "reg_records": beneficiary("NID", value, "Elsewhere Grant", status=status),
                    },
                }
            ],
        }

    # -- subscribe, notify, unsubscribe --------------------------------------

    def test_subscribe_notify_unsubscribe(self):
        with patch.object(IbrClient, "_post", side_effect=AssertionError("the click waited")):
            self.partner.action_ibr_subscribe()
        [subscription] = self.partner.dci_subscription_ids
        self.assertEqual(
            (subscription.state, subscription.pending_action), ("requested", "subscribe")
        )

        subscription = self.subscribe_active()
        self.assertEqual((subscription.state, subscription.code), ("active", "SUB-1"))
        self.assertFalse(subscription.pending_action)

        before = self.env["mail.message"].search_count(
            [("model", "=", "res.partner"), ("res_id", "=", self.partner.id)]
        )
        status, ack = self.post("notify", self.body(self.signed("notify", self.notify_message())))
        self.assertEqual((status, ack["ack_status"]), (200, "ACK"))
        self.partner.invalidate_recordset()
        self.assertEqual(self.partner.dci_last_result, "confirmed_match")
        check = self.partner.dci_check_ids.filtered(lambda c: c.state == "completed")
        self.assertEqual(check.matched_programs, "Elsewhere Grant")
        self.assertEqual(check.result_source, "notification")
        self.assertEqual(check.match_ids.programme_name, "Elsewhere Grant")
        self.assertIn("SUB-1", check.notes)
        notes = self.env["mail.message"].search(
            [("model", "=", "res.partner"), ("res_id", "=", self.partner.id)]
        )
        self.assertEqual(len(notes), before + 1)
        self.assertIn("enrolment event", notes[0].body)
        self.assertNotIn("Confirmed", notes[0].body, "every employee reads the chatter")
        self.assertEqual(
            self.env["spp.dci.ibr.notification"].search([]).company_id, self.env.company
        )
        [event] = self.env["spp.dci.ibr.notification"].search([("sender_id", "=", SENDER)])
        self.assertEqual(
            (event.state, event.partner_id, event.check_id), ("applied", self.partner, check)
        )

        self.partner.action_ibr_unsubscribe()
        self.assertEqual(subscription.pending_action, "unsubscribe")
        [(path, envelope)] = self.send_jobs(self.env["spp.dci.ibr.subscription"]._cron_send_pending)
        self.assertEqual(
            (path, envelope["message"]["subscription_codes"]), ("/registry/unsubscribe", ["SUB-1"])
        )
        self.assertTrue(envelope["header"]["sender_uri"].endswith("/dci_api/ibr/on-unsubscribe"))
        answer = {
            "transaction_id": envelope["message"]["transaction_id"],
            "correlation_id": "corr-unsubscribe",
            "timestamp": messages.now_iso(),
            "status": "succ",
            "subscription_status": [{"code": "SUB-1", "status": "unsubscribe"}],
        }
        body = self.body(self.signed("on-unsubscribe", answer, request=True))
        self.assertEqual(self.post("on-unsubscribe", body)[0], 200)
        subscription.invalidate_recordset()
        self.assertEqual((subscription.state, subscription.pending_action), ("ended", False))

        # an ended subscription applies nothing more: the event is recorded only
        self.post("notify", self.body(self.signed("notify", self.notify_message(status="Exited"))))
        events = self.env["spp.dci.ibr.notification"].search([("sender_id", "=", SENDER)])
        self.assertEqual(events.mapped("state"), ["unmatched", "applied"])
        self.partner.invalidate_recordset()
        self.assertEqual(len(self.partner.dci_check_ids), 1)

    def test_rejected_subscription_and_unknown_notification(self):
        self.partner.action_ibr_subscribe()
        [(_path, envelope)] = self.send_jobs(
            self.env["spp.dci.ibr.subscription"]._cron_send_pending
        )
        with self.assertRaisesRegex(UserError, "not confirmed"):  # sent, not yet answered
            self.partner.action_ibr_unsubscribe()
        item = envelope["message"]["subscribe_request"][0]
        self.assertEqual(
            item["subscribe_criteria"]["filter"], {"type": "NID", "value": "1000000001"}
        )
        answer = {
            "transaction_id": envelope["message"]["transaction_id"],
            "correlation_id": "c",
            "subscribe_response": [
                {
                    "reference_id": item["reference_id"],
                    "timestamp": messages.now_iso(),
                    "status": "rjct",
                    "status_reason_code": "rjct.person_id.invalid",
                }
            ],
        }
        self.post("on-subscribe", self.body(self.signed("on-subscribe", answer, request=True)))
        subscription = self.partner.dci_subscription_ids
        subscription.invalidate_recordset()
        self.assertEqual(subscription.state, "rejected")
        self.assertIn("rjct.person_id.invalid", subscription.error_message)
        # a notification for a person nobody subscribed to: recorded, not applied
        message = self.notify_message(code="SUB-unknown", value="999")
        self.assertEqual(self.post("notify", self.body(self.signed("notify", message)))[0], 200)
        [event] = self.env["spp.dci.ibr.notification"].search([("sender_id", "=", SENDER)])
        self.assertEqual((event.state, event.partner_id.id), ("unmatched", False))
        self.assertFalse(self.partner.dci_check_ids)

    def test_officers_subscribe_viewers_cannot(self):
        officer = new_test_user(
            self.env, login="ops_officer", groups="spp_dci_client_ibr.group_ibr_officer"
        )
        viewer = new_test_user(
            self.env, login="ops_viewer", groups="spp_dci_client_ibr.group_ibr_viewer"
        )
        with self.assertRaises(AccessError):
            self.partner.with_user(viewer).action_ibr_subscribe()
        self.partner.with_user(officer).action_ibr_subscribe()
        [subscription] = self.partner.dci_subscription_ids
        self.assertEqual((subscription.state, subscription.create_uid), ("requested", officer))
        self.partner.with_user(officer).action_ibr_unsubscribe()  # never sent: ends at once
        self.assertEqual((subscription.state, subscription.pending_action), ("ended", False))

    def test_connection_without_trusted_sender_cannot_subscribe(self):
        self.connection.ibr_sender_id = False
        with self.assertRaisesRegex(UserError, "not ready to use.*set a trusted IBR sender"):
            self.partner.action_ibr_subscribe()
        self.assertFalse(self.partner.dci_subscription_ids)

    # -- transaction status -------------------------------------------------

    def waiting_check(self, transaction_id="txn-ops", minutes_ago=0):
        txn = self.env["spp.dci.ibr.transaction"].create(
            {
                "transaction_id": transaction_id,
                "connection_id": self.connection.id,
                "state": "sent",
                "correlation_id": "corr-" + transaction_id,
            }
        )
        return self.env["spp.dci.duplication.check"].create(
            {
                "partner_id": self.partner.id,
                "identifier_type": "NID",
                "identifier_value": "1000000001",
                "data_source_id": self.connection.id,
                "state": "checking",
                "reference_id": "ref-" + transaction_id,
                "transaction_id": transaction_id,
                "ibr_transaction_id": txn.id,
                "sent_at": fields.Datetime.now() - timedelta(minutes=minutes_ago),
            }
        )

    def status_message(self, check):
        return {
            "transaction_id": messages.new_id(),
            "correlation_id": "corr-status",
            "txnstatus_response": {
                "txn_type": "search",
                "txn_status": {
                    "transaction_id": check.transaction_id,
                    "correlation_id": "corr-" + check.transaction_id,
                    "search_response": [
                        {
                            "reference_id": check.reference_id,
                            "timestamp": messages.now_iso(),
                            "status": "succ",
                            "data": {"reg_records": [beneficiary("NID", "1000000001", "Late")]},
                        }
                    ],
                },
            },
        }

    def test_txn_on_status_completes_a_waiting_check(self):
        check = self.waiting_check()
        body = self.body(self.signed("txn-on-status", self.status_message(check)))
        status, ack = self.post("txn/on-status", body)
        self.assertEqual((status, ack["ack_status"]), (200, "ACK"))
        check.invalidate_recordset()
        self.assertEqual((check.state, check.matched_programs), ("completed", "Late"))

    def test_stale_check_asks_for_its_status_before_failing(self):
        self.connection.write({"poll_status_before_failing": True, "txn_status_async": True})
        check = self.waiting_check(minutes_ago=120)
        checks = self.env["spp.dci.duplication.check"]
        [(path, envelope)] = self.send_jobs(checks._cron_watch_answers)
        self.assertEqual(path, "/registry/txn/status")
        self.assertTrue(envelope["header"]["sender_uri"].endswith("/dci_api/ibr/txn/on-status"))
        self.assertEqual(
            envelope["message"]["txnstatus_request"]["attribute_value"], "corr-txn-ops"
        )
        self.assertEqual(check.state, "checking")  # its status is on the way
        self.assertEqual(self.send_jobs(checks._cron_watch_answers), [])  # asked once
        self.assertEqual(check.state, "checking")
        check.ibr_transaction_id.status_requested_at = fields.Datetime.now() - timedelta(hours=2)
        self.send_jobs(checks._cron_watch_answers)
        self.assertEqual(check.state, "failed")  # asked long ago, never answered

    # -- hostile variants of each new callback --------------------------------

    def hostile_cases(self):
        check = self.waiting_check("txn-hostile-ops")

        def unsubscribed():
            return {
                "transaction_id": "t",
                "correlation_id": "c",
                "timestamp": messages.now_iso(),
                "status": "succ",
                "subscription_status": [{"code": "SUB-1", "status": "unsubscribe"}],
            }

        return [
            ("notify", lambda **kw: self.signed("notify", self.notify_message(), **kw)),
            (
                "on-unsubscribe",
                lambda **kw: self.signed("on-unsubscribe", unsubscribed(), request=True, **kw),
            ),
            (
                "txn/on-status",
                lambda **kw: self.signed("txn-on-status", self.status_message(check), **kw),
            ),
        ], check

    def test_forged_replayed_unsigned_and_wrong_sender_are_refused(self):
        subscription = self.subscribe_active()
        cases, check = self.hostile_cases()
        other_key = SigningKey.generate(SENDER, "ed25519", key_id="k1")
        stranger = SigningKey.generate("ibr.stranger", "ed25519")
        for path, make in cases:
            with self.subTest(path=path):
                forged = self.post(path, self.body(make(key=other_key)))
                self.assertEqual(forged[0], 401)
                self.assertEqual(forged[1]["error"]["code"], "err.signature.invalid")

                wrong = self.post(path, self.body(make(key=stranger, sender="ibr.stranger")))
                self.assertEqual(
                    (wrong[0], wrong[1]["error"]["code"]), (403, "err.sender_id.invalid")
                )

                unsigned = dict(make(), signature="")
                refused = self.post(path, self.body(unsigned))
                self.assertEqual(
                    (refused[0], refused[1]["error"]["code"]), (401, "err.signature.missing")
                )

                envelope = make()
                replay = make(message_id=envelope["header"]["message_id"])
                replay["message"]["transaction_id"] = "t-other"
                replay = sign_envelope(replay["header"], replay["message"], self.key)
                self.assertEqual(self.post(path, self.body(replay))[0], 200)  # first delivery
                again = self.post(path, self.body(envelope))  # same id, other content
                self.assertEqual((again[0], again[1]["error"]["code"]), (409, "err.request.bad"))
        # nothing forged was applied; the genuine deliveries were
        events = self.env["spp.dci.ibr.notification"].search([("sender_id", "=", SENDER)])
        self.assertEqual(len(events), 1)
        subscription.invalidate_recordset()
        check.invalidate_recordset()
        self.assertEqual((subscription.state, check.state), ("ended", "completed"))

    def test_duplicate_notification_is_applied_once(self):
        self.subscribe_active()
        body = self.body(self.signed("notify", self.notify_message()))
        self.assertEqual([self.post("notify", body)[0] for _ in range(2)], [200, 200])
        events = self.env["spp.dci.ibr.notification"].search([("sender_id", "=", SENDER)])
        self.assertEqual(len(events), 1)
        self.assertEqual(len(self.partner.dci_check_ids), 1)

    # -- enrolment updates ---------------------------------------------------

    def test_enrolment_updates_default_hook_sends_nothing(self):
        with patch.object(IbrClient, "_post", side_effect=AssertionError("sent")):
            self.assertFalse(self.partner._send_ibr_enrolment_updates(self.connection))

    def test_enrolment_updates_to_a_loopback_ibr(self):
        partner_model = type(self.env["res.partner"])
        records = [beneficiary("NID", "1000000001", "Our Programme")]
        with (
            IbrSimulator(sender_id="ibr.enrol") as sim,
            patch.object(partner_model, "_get_ibr_enrolments", lambda self: records),
        ):
            sender = self.env["spp.dci.ibr.sender"].create(
                {"name": "Enrol IBR", "sender_id": "ibr.enrol"}
            )
            sender._store_keys([sim.signing_key.public])
            self.connection.write({"base_url": sim.url, "ibr_sender_id": sender.id})
            report = self.partner._send_ibr_enrolment_updates(self.connection)
        self.assertEqual(
            (report.state, report.beneficiary_count, report.accepted_count), ("sent", 1, 1)
        )
        self.assertEqual(sim.enrolments, records)
        self.assertEqual(report.partner_ids, self.partner)
