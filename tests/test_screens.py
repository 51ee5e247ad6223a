"""What the screens say: menus per role, batch states, names, plurals and
dates in the reader's language and time zone, the wizard without a ready
connection, the registrant's latest check."""

from datetime import datetime
from unittest.mock import patch

from odoo.exceptions import UserError
from odoo.tests.common import new_test_user

from ..dci.simulator import IbrSimulator
from ..models.notify import notification
from .common import IbrCase


class TestScreens(IbrCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.checks = cls.env["spp.dci.duplication.check"]
        cls.env["spp.dci.registrant.identifier"].create(
            [
                {"partner_id": cls.partner.id, "id_type": "NID", "value": "1000000001"},
                {"partner_id": cls.partner2.id, "id_type": "NID", "value": "1000000003"},
            ]
        )

    def batch(self, partners):
        requests = self.env["spp.dci.check.request"].with_user(self.officer)
        return requests._queue(partners, "NID", self.connection).with_env(self.env)

    # -- menus ---------------------------------------------------------------

    def visible_menus(self, user):
        menus = self.env["ir.ui.menu"].with_user(user)
        return menus.browse(menus._visible_menu_ids())

    def test_officers_reach_registrants_from_the_app_administrators_the_configuration(self):
        registrants = self.env.ref("spp_dci_client_ibr.menu_ibr_officer_registrants")
        configuration = self.env.ref("spp_dci_client_ibr.menu_ibr_app_configuration")
        officer_menus = self.visible_menus(self.officer)
        self.assertIn(registrants, officer_menus)
        self.assertNotIn(configuration, officer_menus)
        self.assertNotIn(registrants, self.visible_menus(self.viewer))
        admin = new_test_user(self.env, login="ibr_admin_only", groups="base.group_system")
        admin_menus = self.visible_menus(admin)
        self.assertIn(configuration, admin_menus)
        self.assertIn(self.env.ref("spp_dci_client_ibr.menu_ibr_app_connections"), admin_menus)
        # the registrants' list reads their latest result, as the officer
        action = self.env.ref("spp_dci_client_ibr.action_ibr_registrants")
        self.assertEqual(registrants.action, action)
        partners = self.env["res.partner"].with_user(self.officer)
        found = partners.search_read([("id", "=", self.partner.id)], ["dci_last_result"])
        self.assertEqual(found, [{"id": self.partner.id, "dci_last_result": False}])

    def test_every_list_action_says_what_an_empty_list_means(self):
        actions = self.env["ir.actions.act_window"].search(
            [("res_model", "like", "spp.dci.%"), ("view_mode", "like", "list")]
        )
        self.assertGreater(len(actions), 8)
        for action in actions:
            self.assertTrue(action.help, action.name)

    # -- batch states --------------------------------------------------------

    def test_a_batch_is_queued_then_sending_then_done(self):
        request = self.batch(self.partner | self.partner2)
        first, second = request.check_ids.sorted("id")
        requests = self.env["spp.dci.check.request"]
        self.assertEqual(request.progress, "queued")
        self.assertEqual(requests.search([("progress", "in", ["queued"])]), request)
        self.mark_sent(first)
        request.invalidate_recordset(["progress"])
        self.assertEqual(request.progress, "sending")
        self.assertEqual(requests.search([("progress", "in", ["sending"])]), request)
        first.sudo().write({"state": "completed", "result": "no_match"})
        self.mark_sent(second, transaction_id="txn-2")
        second.sudo().write({"state": "failed"})
        request.invalidate_recordset(["progress"])
        self.assertEqual(request.progress, "done")
        self.assertEqual(requests.search([("progress", "in", ["done"])]), request)
        self.assertFalse(requests.search([("progress", "not in", ["done"])]) & request)

    def test_a_batch_not_yet_expanded_is_not_done_even_without_open_checks(self):
        request = self.batch(self.partner)
        request.check_ids.sudo().write({"state": "completed", "result": "no_match"})
        request.sudo().state = "pending"  # more registrants for the send job to queue
        request.invalidate_recordset(["progress"])
        self.assertEqual(request.progress, "sending")
        request.sudo().write({"state": "done", "check_count": 0})
        request.check_ids.sudo().unlink()  # every registrant skipped
        request.invalidate_recordset(["progress"])
        self.assertEqual(request.progress, "done")

    # -- names, plurals, dates -----------------------------------------------

    def test_a_batch_is_named_with_real_plurals_and_the_readers_time(self):
        self.officer.tz = "Asia/Tokyo"
        request = self.batch(self.partner)
        request.sudo()._write({"create_date": datetime(2026, 12, 4, 17, 42)})
        request.invalidate_recordset()
        mine = request.with_user(self.officer)
        self.assertEqual(mine.display_name, "1 registrant by NID, 12/5/26, 2:42 AM")
        two = self.batch(self.partner | self.partner2)
        two.sudo()._write({"create_date": datetime(2026, 12, 4, 17, 42)})
        two.invalidate_recordset()
        self.assertEqual(
            two.with_user(self.officer).display_name, "2 registrants by NID, 12/5/26, 2:42 AM"
        )

    def test_the_officer_is_told_in_their_language_when_a_batch_ends(self):
        self.env["res.lang"]._activate_lang("fr_FR")
        self.officer.write({"lang": "fr_FR", "tz": "Europe/Paris"})
        request = self.batch(self.partner)
        request.sudo()._write({"create_date": datetime(2026, 12, 4, 17, 42)})
        request.invalidate_recordset()
        request.check_ids.sudo().write({"state": "completed", "result": "no_match"})
        users = type(self.env["res.users"])
        with patch.object(users, "_bus_send", autospec=True) as bus:
            request._notify_if_finished()  # by whoever finished it, in English
        [(user, kind, payload), _kw] = bus.call_args
        self.assertEqual((user, kind), (self.officer, "simple_notification"))
        # French date order and the officer's time zone (18:42 in Paris)
        self.assertIn("04/12/2026 18:42", payload["title"])
        self.assertIn("1 sans correspondance", payload["message"])  # French, not English

    def test_a_notification_and_an_identifier_have_readable_names(self):
        note = self.env["spp.dci.ibr.notification"].create(
            {
                "sender_id": "ibr.test",
                "event_type": "update",
                "partner_id": self.partner.id,
                "state": "applied",
                "item_json": '{"a": {"b": 1}}',
            }
        )
        self.assertRegex(note.display_name, r"^update for Registrant One, \d+/\d+/\d+, ")
        self.assertEqual(note.item_pretty, '{\n  "a": {\n    "b": 1\n  }\n}')
        line = self.partner.dci_identifier_ids
        self.assertEqual(line.display_name, "NID of Registrant One", "no identifier value")

    # -- the wizard ----------------------------------------------------------

    def test_without_a_ready_connection_the_wizard_says_ask_an_administrator(self):
        self.connection.active = False
        wizard = (
            self.env["spp.dci.check.wizard"]
            .with_user(self.officer)
            .create({"partner_ids": [(6, 0, self.partner.ids)], "identifier_type": "NID"})
        )
        self.assertFalse(wizard.has_ready_connection)
        with self.assertRaisesRegex(UserError, "Ask an administrator"):
            wizard.action_confirm()
        self.connection.active = True
        wizard.invalidate_recordset(["has_ready_connection"])
        self.assertTrue(wizard.has_ready_connection)

    def test_the_wizard_counts_in_words(self):
        wizard = (
            self.env["spp.dci.check.wizard"]
            .with_user(self.officer)
            .create(
                {
                    "partner_ids": [(6, 0, (self.partner | self.partner2).ids)],
                    "identifier_type": "NID",
                }
            )
        )
        self.assertEqual(wizard.count_summary, "2 registrants will be checked, 0 skipped.")
        self.partner2.dci_identifier_ids.unlink()
        wizard.identifier_type = "NID "  # recomputes the lines
        self.assertEqual(wizard.count_summary, "1 registrant will be checked, 1 skipped.")

    # -- the registrant ------------------------------------------------------

    def test_the_registrant_shows_a_failed_or_waiting_latest_check_and_the_programmes(self):
        done = self.make_check()
        done.sudo().write(
            {"state": "completed", "result": "possible_match", "matched_programs": "P1\nP2"}
        )
        self.partner.invalidate_recordset()
        self.assertEqual(
            (self.partner.dci_last_result, self.partner.dci_latest_state),
            ("possible_match", False),
        )
        self.assertEqual(self.partner.dci_matched_programs, "P1\nP2")
        again = done._new_attempts()
        again._enqueue()
        self.partner.invalidate_recordset()
        self.assertEqual(
            (self.partner.dci_last_result, self.partner.dci_latest_state),
            ("possible_match", "checking"),
        )
        again._mark_failed("down", "unreachable")
        self.partner.invalidate_recordset()
        self.assertEqual(self.partner.dci_latest_state, "failed")
        viewer = self.partner.with_user(self.viewer)
        self.assertEqual(viewer.dci_latest_state, "failed")
        self.assertNotIn("dci_matched_programs", viewer.fields_get(), "personal data")

    def test_no_view_shows_a_field_its_readers_cannot_read(self):
        views = self.env["ir.ui.view"].browse(
            self.env["ir.model.data"]
            .search([("module", "=", "spp_dci_client_ibr"), ("model", "=", "ir.ui.view")])
            .mapped("res_id")
        )
        self.assertTrue(views)
        with self.assertNoLogs("odoo.addons.base.models.ir_ui_view", "WARNING"):
            views._check_xml()  # what Odoo checks when it loads them

    # -- the administrator's screens -------------------------------------------

    def test_the_last_key_fetch_is_the_last_success(self):
        sender = self.sender.with_user(self.env.ref("base.user_admin"))
        with IbrSimulator() as sim:
            sender.write({"sender_id": sim.sender_id, "jwks_url": sim.jwks_url})
            sender.action_fetch_public_key()
        fetched = sender.keys_fetched_at
        self.assertTrue(fetched)
        sender.jwks_url = "http://127.0.0.1:9/jwks.json"
        action = sender.action_fetch_public_key()
        self.assertEqual(action["params"]["type"], "danger")
        self.assertTrue(sender.last_fetch_error)
        self.assertEqual(sender.keys_fetched_at, fetched, "a failed fetch fetched nothing")
        self.assertGreaterEqual(sender.last_key_fetch, fetched)

    def test_our_toasts_keep_their_lines_and_our_jwks_url_is_the_readmes(self):
        action = notification("Title", "✓ one\n✗ two", "danger")
        self.assertEqual(action["params"]["className"], "o_spp_dci_ibr_notification")
        self.env["ir.config_parameter"].sudo().set_param("web.base.url", "https://x.example")
        self.connection.callback_url = False
        self.assertEqual(self.connection.our_jwks_url, "https://x.example/dci_api/ibr/jwks.json")
