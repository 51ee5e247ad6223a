"""The enrolment gate, with models shaped like OpenSPP2's programmes.

``TestEnrolmentGate`` needs the test-only addon ``tests/addons/spp_programs_standin``
(run_tests.sh: ``EXTRA_ADDONS_PATH=,<addon>/tests/addons EXTRA_MODULES=,spp_programs_standin``);
without it, it is reported as skipped and ``TestWithoutProgrammes`` runs instead.
"""

import logging
import unittest
from unittest.mock import patch

from odoo.exceptions import AccessError, UserError
from odoo.tests import TransactionCase, new_test_user, tagged

from .test_clearance import ClearanceCase

MEMBERSHIP = "spp.program.membership"


@tagged("post_install", "-at_install")
class TestEnrolmentGate(ClearanceCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if MEMBERSHIP not in cls.env:
            raise unittest.SkipTest("needs tests/addons/spp_programs_standin installed")
        cls.connection.auto_identifier_type = "NID"
        cls.programme = cls.env["spp.program"].create({"name": "Cash for Work"})
        cls.memberships = cls.env[MEMBERSHIP].create(
            [{"partner_id": p.id, "program_id": cls.programme.id} for p in cls.partners]
        )
        cls.programme_user = new_test_user(
            cls.env, login="programme_clerk", groups="base.group_user"
        )

    def member(self, partner):
        return self.memberships.filtered(lambda m: m.partner_id == partner)

    def enrol(self, membership, user=None):
        membership.with_user(user or self.programme_user).write({"state": "enrolled"})

    def test_blocked_is_refused_naming_programme_and_check(self):
        partner = self.partners[0]
        check = self.completed(partner, "confirmed_match")
        with self.assertRaises(UserError) as refusal:
            self.enrol(self.member(partner))
        message = str(refusal.exception)
        self.assertIn("Cash for Work", message)
        self.assertIn(check.display_name, message)
        self.assertEqual(self.member(partner).state, "draft")

    def test_blocked_cannot_be_created_enrolled(self):
        partner = self.partners[0]
        self.completed(partner, "confirmed_match")
        other = self.env["spp.program"].create({"name": "School Meals"})
        with self.assertRaises(UserError):
            self.env[MEMBERSHIP].with_user(self.programme_user).create(
                {"partner_id": partner.id, "program_id": other.id, "state": "enrolled"}
            )

    def test_gate_survives_an_automation_rule_on_memberships(self):
        partner = self.partners[0]
        self.completed(partner, "confirmed_match")
        # creating a rule unpatches and repatches the models' create/write
        self.env["base.automation"].create(
            {
                "name": "Note every membership change",
                "model_id": self.env["ir.model"]._get_id(MEMBERSHIP),
                "trigger": "on_create_or_write",
            }
        )
        with self.assertRaises(UserError):
            self.enrol(self.member(partner))

    def test_overridden_block_is_enrolled(self):
        partner = self.partners[0]
        check = self.completed(partner, "confirmed_match")
        self.decide(check, "override", user=self.manager)
        self.enrol(self.member(partner))
        self.assertEqual(self.member(partner).state, "enrolled")

    def test_cleared_and_other_states_follow_the_connection(self):
        cleared, review, unknown = self.partners[:3]
        self.completed(cleared, "no_match")
        self.completed(review, "possible_match")
        self.enrol(self.member(cleared))
        self.enrol(self.member(unknown))  # default: allow
        self.enrol(self.member(review))  # default: warn, with a note on the membership
        self.assertIn("possible match", self.member(review).message_ids[:1].body)
        self.connection.write({"gate_on_review": "refuse", "gate_on_unknown": "refuse"})
        for partner in (review, unknown):
            membership = self.member(partner)
            membership.state = "draft"
            with self.assertRaises(UserError):
                self.enrol(membership)

    def test_programme_check_marks_confirmed_matches_duplicated(self):
        matched, fine, overridden = self.partners[:3]
        for partner in (matched, fine, overridden):
            partner.sudo().dci_identifier_ids = [
                (0, 0, {"id_type": "NID", "value": f"9{partner.id:09d}"})
            ]
        self.programme.with_user(self.officer).action_check_beneficiaries_in_ibr()
        request = self.env["spp.dci.check.request"].search([("origin", "=", "programme")])
        self.assertEqual(request.programme_res_id, self.programme.id)
        checks = request.check_ids
        self.assertEqual(checks.partner_id, matched | fine | overridden)
        # the IBR answers (as a verified callback would write it)
        for check in checks:
            result = "no_match" if check.partner_id == fine else "confirmed_match"
            check.write({"state": "completed", "result": result, "completed_at": check.check_date})
        blocker = checks.filtered(lambda c: c.partner_id == overridden)
        self.decide(blocker, "override", user=self.manager)
        checks._notify_finished_requests()
        self.assertRecordValues(
            self.member(matched) | self.member(fine) | self.member(overridden),
            [
                {"state": "duplicated", "deduplication_status": "duplicated"},
                {"state": "draft", "deduplication_status": "verified"},
                {"state": "draft", "deduplication_status": "verified"},
            ],
        )
        self.assertTrue(self.member(matched).last_deduplication)
        duplicate = self.env["spp.program.membership.duplicate"].search([])
        self.assertEqual(duplicate.beneficiary_ids, self.member(matched))
        self.assertIn("IBR", duplicate.reason)
        self.assertIn(str(checks.filtered(lambda c: c.partner_id == matched).id), duplicate.comment)

    def test_a_failed_marking_logs_no_personal_data_and_keeps_the_answers(self):
        partner = self.partners[0]
        partner.sudo().dci_identifier_ids = [(0, 0, {"id_type": "NID", "value": "9000000001"})]
        self.programme.with_user(self.officer).action_check_beneficiaries_in_ibr()
        request = self.env["spp.dci.check.request"].search([("origin", "=", "programme")])
        check = request.check_ids
        check.write({"state": "completed", "result": "confirmed_match"})
        gate = type(self.env["spp.dci.enrolment.gate"])
        failure = ValueError(f"Failing row contains ({partner.name}, 9000000001)")
        with (
            patch.object(gate, "_mark_duplicates", side_effect=failure),
            self.assertLogs("odoo.addons.spp_dci_client_ibr.models.auto_check", "ERROR") as logs,
        ):
            check._notify_finished_requests()
        logged = "\n".join(
            r.getMessage() + (logging.Formatter().formatException(r.exc_info) if r.exc_info else "")
            for r in logs.records
        )
        self.assertIn("Marking duplicates of programme", logged)
        self.assertNotIn(partner.name, logged)
        self.assertNotIn("9000000001", logged)
        self.assertEqual((check.state, check.result), ("completed", "confirmed_match"))

    def test_only_officers_check_a_programme(self):
        with self.assertRaises(AccessError):
            self.programme.with_user(self.programme_user).action_check_beneficiaries_in_ibr()

    def test_the_programme_action_exists(self):
        action = self.env.ref("spp_dci_client_ibr.action_program_check_in_ibr")
        self.assertEqual(action.binding_model_id.model, "spp.program")


@tagged("post_install", "-at_install")
class TestWithoutProgrammes(TransactionCase):
    def test_nothing_is_wrapped_or_created(self):
        if MEMBERSHIP in self.env:
            self.skipTest("OpenSPP's programmes (or the stand-in) are installed")
        self.env["spp.dci.enrolment.gate"]._register_hook()  # as at every registry load
        self.assertFalse(
            self.env.ref("spp_dci_client_ibr.action_program_check_in_ibr", raise_if_not_found=False)
        )
        self.assertFalse(
            any(
                getattr(getattr(m, "write", None), "_dci_gate", False)
                for m in self.registry.values()
            )
        )
