"""Automatic checks: registration and changed identifiers queue one request
when the transaction commits; the nightly re-check keeps to N days and M a day."""

from datetime import timedelta
from unittest.mock import patch

from odoo import Command, fields
from odoo.tests import TransactionCase, tagged

from .common import IbrFixtures


@tagged("post_install", "-at_install")
class TestAutomaticChecks(IbrFixtures, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.connection.write({"auto_identifier_type": "NID", "auto_check_registration": True})
        cls.requests = cls.env["spp.dci.check.request"]

    def committed(self):
        """What the transaction's commit would queue (its precommit hooks)."""
        self.env.cr.flush()
        return self.requests.search([("origin", "in", ("registration", "recheck"))])

    def registrant(self, name="New Person", value="2000000001", id_type="NID"):
        return self.env["res.partner"].create(
            {
                "name": name,
                "dci_identifier_ids": [Command.create({"id_type": id_type, "value": value})],
            }
        )

    def test_new_registrant_gets_one_queued_check(self):
        partner = self.registrant()
        self.assertFalse(self.requests.search([("origin", "=", "registration")]))  # not yet
        request = self.committed()
        self.assertEqual((request.origin, request.partner_count), ("registration", 1))
        self.assertRecordValues(
            request.check_ids.sudo(),
            [{"partner_id": partner.id, "state": "queued", "identifier_value": "2000000001"}],
        )

    def test_registrant_without_that_identifier_is_not_checked(self):
        self.registrant(id_type="BRN")
        self.env["res.partner"].create({"name": "No papers"})
        self.assertFalse(self.committed())

    def test_off_by_default(self):
        self.connection.auto_check_registration = False
        fresh = self.env["spp.dci.ibr.connection"].new({"name": "x"})
        self.assertFalse(fresh.auto_check_registration)
        self.assertFalse(fresh.recheck_after_days)
        self.registrant()
        self.assertFalse(self.committed())

    def test_changed_identifier_is_checked_again(self):
        partner = self.registrant()
        first = self.committed()
        partner.sudo().dci_identifier_ids.value = "2000000009"
        second = self.committed() - first
        self.assertEqual(second.check_ids.sudo().identifier_value, "2000000009")
        partner.sudo().write(
            {"dci_identifier_ids": [Command.create({"id_type": "NID", "value": "2000000010"})]}
        )
        self.assertEqual(len(self.committed() - first - second), 1, "an added identifier too")
        partner.sudo().name = "Renamed"
        self.assertEqual(len(self.committed()), 3, "a name change queues nothing")

    def test_bulk_import_is_one_request_left_to_the_send_job(self):
        partners = self.env["res.partner"].create(
            [
                {
                    "name": f"Imported {n}",
                    "dci_identifier_ids": [
                        Command.create({"id_type": "NID", "value": f"3{n:09d}"})
                    ],
                }
                for n in range(10000)
            ]
        )
        request = self.committed()
        self.assertEqual(len(request), 1)
        self.assertEqual(request.partner_count, 10000)
        # nothing expanded within the importer's transaction: the send job does it
        self.assertEqual((request.state, request.check_count), ("pending", 0))
        self.assertEqual(len(partners), 10000)

    def test_automatic_requests_notify_nobody(self):
        self.registrant()
        request = self.committed()
        users = type(self.env["res.users"])
        with patch.object(users, "_bus_send", autospec=True) as sent:
            request._notify_finished()
            self.assertTrue(request.notified_at)
            self.assertFalse(sent.called, "no officer asked: nobody is told")
            officer_request = self.requests.sudo().create(
                {
                    "identifier_type": "NID",
                    "connection_id": self.connection.id,
                    "partner_ids_json": "[]",
                }
            )
            officer_request._notify_finished()
            self.assertTrue(sent.called, "an officer's request is still announced")


@tagged("post_install", "-at_install")
class TestNightlyRecheck(IbrFixtures, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.connection.write(
            {"auto_identifier_type": "NID", "recheck_after_days": 30, "recheck_daily_cap": 2}
        )
        cls.old = cls.env["res.partner"].create(
            [
                {
                    "name": f"Old {n}",
                    "dci_identifier_ids": [
                        Command.create({"id_type": "NID", "value": f"40000000{n}"})
                    ],
                }
                for n in range(3)
            ]
        )
        cls.recent = cls.env["res.partner"].create(
            {
                "name": "Recent",
                "dci_identifier_ids": [Command.create({"id_type": "NID", "value": "4000000099"})],
            }
        )
        now = fields.Datetime.now()
        for days, partner in (
            (45, cls.old[0]),
            (40, cls.old[1]),
            (35, cls.old[2]),
            (10, cls.recent),
        ):
            check = cls.env["spp.dci.duplication.check"].create(
                {
                    "partner_id": partner.id,
                    "identifier_type": "NID",
                    "identifier_value": "x",
                    "data_source_id": cls.connection.id,
                }
            )
            check.write(
                {
                    "state": "completed",
                    "result": "no_match",
                    "completed_at": now - timedelta(days=days),
                }
            )

    def recheck(self):
        return self.env["spp.dci.check.request"]._cron_recheck()

    def test_n_days_and_daily_cap(self):
        first = self.recheck()
        self.assertEqual(first.origin, "recheck")
        self.assertEqual(first.check_ids.partner_id, self.old[:2], "the two oldest, at most 2")
        self.assertFalse(self.recheck(), "the day's cap is spent")
        self.assertEqual(self.connection.auto_queued_today, 2)
        cron = self.env.ref("spp_dci_client_ibr.ir_cron_recheck")
        self.assertEqual(self.connection.recheck_next_run, cron.nextcall)
        # the next day: the third is due; the first two wait for their answers
        self.env.cr.execute(
            "UPDATE spp_dci_check_request SET create_date = create_date - interval '1 day' "
            "WHERE id = %s",
            (first.id,),
        )
        self.env.invalidate_all()
        second = self.recheck()
        self.assertEqual(second.check_ids.partner_id, self.old[2])
        self.assertNotIn(self.recent, (first | second).check_ids.partner_id, "10 days < 30")
