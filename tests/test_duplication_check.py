"""Duplication checks against the reference IBR simulator: async and sync
searches, batches, every failure path, retries, the scheduled jobs, the
registrant side, access rights and personal-data gating."""

from unittest.mock import patch

from lxml import etree

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged

from ..dci.simulator import IbrSimulator
from .common import IbrCase


@tagged("post_install", "-at_install")
class TestDuplicationCheck(IbrCase):
    def use(self, sim, mode="async"):
        """Point the connection at ``sim`` and trust its signing key."""
        self.sender.write({"sender_id": sim.sender_id})
        self.sender._store_keys([sim.signing_key.public])
        self.connection.write(
            {
                "base_url": sim.url,
                "mode": mode,
                "callback_url": "http://127.0.0.1:9/dci_api/ibr/on-search",
            }
        )

    def run_with(self, checks, mode="async", **sim_options):
        """Run ``checks`` against a fresh simulator and return it."""
        with IbrSimulator(**sim_options) as sim:
            self.use(sim, mode)
            checks.action_run_check()
            return sim

    def test_async_search_is_acknowledged(self):
        check = self.make_check()
        sim = self.run_with(check)
        self.assertEqual(check.state, "checking")
        self.assertTrue(check.correlation_id and check.transaction_id and check.reference_id)
        self.assertFalse(check.result)
        self.assertEqual(sim.stats["requests"], 1)
        self.assertEqual(
            sim.transactions[check.transaction_id]["search_response"][0]["reference_id"],
            check.reference_id,
        )

    def test_sync_batch_interprets_every_answer(self):
        checks = (
            self.make_check(value="1000000001")
            | self.make_check(value="1000000002")
            | self.make_check(self.partner2, value="1000000003")
        )
        sim = self.run_with(checks, mode="sync")
        self.assertEqual(sim.stats["requests"], 1)  # one signed message for the batch
        self.assertEqual(checks.mapped("state"), ["completed"] * 3)
        self.assertEqual(checks.mapped("result"), ["confirmed_match", "possible_match", "no_match"])
        self.assertEqual(checks[0].matched_programs, "Cash Transfer Programme")
        self.assertIn("reg_records", checks[0].raw_response)
        self.assertTrue(all(checks.mapped("completed_at")))

    def test_batch_size_splits_messages(self):
        self.connection.batch_size = 2
        checks = self.make_check() | self.make_check() | self.make_check()
        sim = self.run_with(checks, mode="sync")
        self.assertEqual(sim.stats["requests"], 2)
        self.assertEqual(len(set(checks.mapped("transaction_id"))), 2)

    def assert_failed(self, check, text):
        self.assertEqual(check.state, "failed")
        self.assertFalse(check.result, "a failed check must never carry a result")
        self.assertIn(text, check.error_message)

    def test_ibr_failures_fail_the_check_with_a_reason(self):
        for failure, mode, text in [
            ("err-ack", "async", "refused the search"),
            ("http-500", "async", "could not be reached"),
            ("http-500", "sync", "could not be reached"),
            ("rjct", "sync", "rejected the search"),
        ]:
            check = self.make_check()
            self.run_with(check, mode=mode, failures=[failure])
            self.assert_failed(check, text)

    def test_unreachable_and_unreadable_ibr(self):
        check = self.make_check()
        self.connection.base_url = "http://127.0.0.1:9"
        check.action_run_check()
        self.assert_failed(check, "could not be reached")
        check = self.make_check()
        with IbrSimulator(failures=["bad-signature"]) as sim:
            self.use(sim, "sync")
            check.action_run_check()
        self.assert_failed(check, "")
        self.assertIn("err.signature.invalid", check.error_message)

    def test_configuration_problems_are_user_errors(self):
        check = self.make_check()
        self.connection.ibr_sender_id = False
        with self.assertRaises(UserError):
            check.action_run_check()
        self.connection.ibr_sender_id = self.sender
        self.connection.sudo().signing_private_key = False
        with self.assertRaises(UserError):
            check.action_run_check()
        self.connection.action_generate_signing_key()
        self.connection.active = False
        with self.assertRaises(UserError):
            check.action_run_check()
        orphan = self.env["spp.dci.duplication.check"].create(
            {
                "partner_id": self.partner.id,
                "identifier_type": "NID",
                "identifier_value": "1",
                "data_source_id": False,
            }
        )
        with self.assertRaises(UserError):  # no active connection at all
            orphan.action_run_check()
        self.assertEqual(check.state, "ready")
        with self.assertRaises(ValidationError):
            self.make_check(value="   ")

    def test_no_silent_rerun_retry_and_reset(self):
        check = self.make_check()
        self.run_with(check, mode="sync")
        self.assertEqual(check.state, "completed")
        with self.assertRaises(UserError):
            check.action_run_check()
        first_reference = check.reference_id
        with IbrSimulator() as sim:
            self.use(sim, "sync")
            check.action_retry()
        self.assertEqual(check.state, "completed")
        self.assertNotEqual(check.reference_id, first_reference)
        check.action_reset_to_draft()
        self.assertEqual((check.state, check.result, check.reference_id), ("ready", False, False))

    def test_enrolled_precheck(self):
        self.connection.use_enrolled_precheck = True
        known, unknown = self.make_check(value="1000000001"), self.make_check(value="1000000003")
        sim = self.run_with(known | unknown, mode="sync")
        self.assertEqual((unknown.state, unknown.result), ("completed", "no_match"))
        self.assertEqual(known.result, "confirmed_match")
        self.assertEqual(sim.stats["requests"], 3)  # two pre-checks, one search for the rest

    def test_stale_checks_fail_or_are_polled(self):
        waiting = self.make_check()
        with IbrSimulator() as sim:
            self.use(sim)
            waiting.action_run_check()
            polled = self.make_check(value="1000000002")
            polled.action_run_check()
            old = "2000-01-01 00:00:00"
            (waiting | polled).write({"sent_at": old})
            self.connection.poll_status_before_failing = True
            self.env["spp.dci.duplication.check"]._cron_fail_stale()
        # the IBR's transaction status answered both: applied, not failed
        self.assertEqual((waiting.state, waiting.result), ("completed", "confirmed_match"))
        self.assertEqual((polled.state, polled.result), ("completed", "possible_match"))
        lost = self.make_check()
        self.mark_sent(lost)
        lost.sent_at = "2000-01-01 00:00:00"
        self.connection.poll_status_before_failing = False
        self.env["spp.dci.duplication.check"]._cron_fail_stale()
        self.assert_failed(lost, "No answer from the IBR")
        fresh = self.make_check()
        self.mark_sent(fresh)
        self.env["spp.dci.duplication.check"]._cron_fail_stale()
        self.assertEqual(fresh.state, "checking")

    def test_queued_checks_are_sent_by_the_batch_job(self):
        self.connection.batch_size = 2
        checks = self.make_check() | self.make_check() | self.make_check()
        with patch.object(type(self.env["ir.cron"]), "_trigger") as trigger:
            checks.action_queue()
        self.assertTrue(trigger.called)
        self.assertTrue(all(checks.mapped("queued")))
        with IbrSimulator() as sim:
            self.use(sim, "sync")
            self.env["spp.dci.duplication.check"]._cron_send_queued()
        self.assertEqual(sim.stats["requests"], 2)
        self.assertEqual(checks.mapped("state"), ["completed"] * 3)
        self.assertFalse(any(checks.mapped("queued")))

    def test_access_rights_per_group(self):
        check = self.make_check()
        checks = self.env["spp.dci.duplication.check"]
        self.assertTrue(checks.with_user(self.viewer).search([("id", "=", check.id)]))
        with self.assertRaises(AccessError):
            checks.with_user(self.viewer).create(
                {"partner_id": self.partner.id, "identifier_type": "NID", "identifier_value": "9"}
            )
        officer_check = checks.with_user(self.officer).create(
            {
                "partner_id": self.partner.id,
                "identifier_type": "NID",
                "identifier_value": "9",
                "data_source_id": self.connection.id,
            }
        )
        with self.assertRaises(AccessError):
            officer_check.unlink()

    def test_personal_data_is_gated(self):
        check = self.make_check()
        with self.assertRaises(AccessError):
            check.with_user(self.viewer).read(["identifier_value"])
        self.assertEqual(check.with_user(self.officer).identifier_value, "1000000001")
        checks = self.env["spp.dci.duplication.check"]
        for user, visible in ((self.viewer, False), (self.officer, True)):
            arch = checks.with_user(user).get_views([(False, "form")])["views"]["form"]["arch"]
            fields = set(etree.fromstring(arch).xpath("//field/@name"))
            for name in ("identifier_value", "matched_programs", "raw_response"):
                self.assertEqual(name in fields, visible, (user.login, name))

    def test_registrant_side(self):
        check = self.make_check()
        self.run_with(check, mode="sync")
        self.assertEqual(self.partner.dci_check_count, 1)
        self.assertEqual(self.partner.dci_last_result, "confirmed_match")
        action = self.partner.action_view_dci_checks()
        self.assertEqual(self.env[action["res_model"]].search(action["domain"]), check)

    def test_wizard_single_and_many(self):
        identifiers = {
            self.partner.id: [("NID", "1000000001")],
            self.partner2.id: [("NID", "1000000003"), ("UIN", "U-1")],
        }
        partner_model = type(self.env["res.partner"])
        with (
            patch.object(
                partner_model,
                "_get_ibr_identifiers",
                lambda partner: identifiers.get(partner.id, []),
            ),
            IbrSimulator() as sim,
        ):
            self.use(sim, "sync")
            wizard = self.env["spp.dci.check.wizard"].create(
                {"partner_ids": [(6, 0, self.partner.ids)], "identifier_type": "NID"}
            )
            wizard._onchange_prefill_value()
            self.assertEqual(
                (wizard.identifier_type, wizard.identifier_value), ("NID", "1000000001")
            )
            many = self.env["spp.dci.check.wizard"].create(
                {
                    "partner_ids": [(6, 0, (self.partner | self.partner2).ids)],
                    "identifier_type": "NID",
                }
            )
            self.assertIn("NID: 2 registrant(s)", many.available_identifiers)
            action = many.action_confirm()
            created = self.env["spp.dci.duplication.check"].search(action["domain"])
            self.assertEqual(sorted(created.mapped("result")), ["confirmed_match", "no_match"])
            nobody = self.env["spp.dci.check.wizard"].create(
                {"partner_ids": [(6, 0, self.partner.ids)], "identifier_type": "BRN"}
            )
            with self.assertRaises(UserError):
                nobody.action_confirm()
