"""The officer's and the administrator's paths in a real browser (Odoo tours,
static/tests/tours/), against the built-in simulator."""

import threading
import time
from contextlib import contextmanager
from unittest.mock import patch

import requests

from odoo import api
from odoo.tests import tagged

from ..dci.keys import KeySet, public_key_from_pem
from ..dci.simulator import IbrSimulator
from .common import JSON, IbrHttpCase


@tagged("post_install", "-at_install")
class TestTours(IbrHttpCase):
    def trust(self, sim, mode="sync"):
        self.sender.write({"sender_id": sim.sender_id})
        self.sender._store_keys([sim.signing_key.public])
        self.connection.write({"base_url": sim.url, "mode": mode})

    def test_officer_checks_a_registrant_and_reads_the_matches(self):
        self.env["spp.dci.registrant.identifier"].create(
            {"partner_id": self.partner.id, "id_type": "NID", "value": "1000000001"}
        )
        checks = self.env["spp.dci.duplication.check"]
        with IbrSimulator() as sim:
            self.trust(sim)
            self.start_tour(
                f"/odoo/res.partner/{self.partner.id}",
                "spp_dci_ibr_officer_check",
                login=self.officer.login,
            )
            check = checks.search([("partner_id", "=", self.partner.id)])
            self.assertEqual((check.state, check.create_uid), ("queued", self.officer))
            self.env["spp.dci.ibr.transaction"]._cron_send_queued()  # what the send job does next
        self.assertEqual(check.result, "confirmed_match")
        self.start_tour(
            f"/odoo/action-spp_dci_client_ibr.action_dci_duplication_check/{check.id}",
            "spp_dci_ibr_officer_result",
            login=self.officer.login,
        )

    def test_admin_fetches_keys_and_tests_the_connection(self):
        conn = self.connection
        our_key = KeySet([public_key_from_pem(conn.signing_public_key, kid=conn.signing_kid)])
        admin = self.env.ref("base.user_admin")
        with IbrSimulator(client_jwks=our_key) as sim:
            self.sender.write({"sender_id": sim.sender_id, "jwks_url": sim.jwks_url})
            conn.write({"base_url": sim.url, "receiver_id": sim.sender_id})
            self.start_tour(
                f"/odoo/action-spp_dci_client_ibr.action_spp_dci_ibr_sender/{self.sender.id}",
                "spp_dci_ibr_admin_sender",
                login=admin.login,
            )
            self.assertIn(sim.signing_key.kid, self.sender.key_ids.mapped("kid"))
            self.start_tour(
                f"/odoo/action-spp_dci_client_ibr.action_ibr_connection/{conn.id}",
                "spp_dci_ibr_admin_connection",
                login=admin.login,
            )
        self.assertTrue(conn.last_test_ok, conn.last_test_result)

    # -- what the screens say by themselves ----------------------------------------

    def queue_for_officer(self, officer=None):
        """The officer's batch of one registrant, its check sent and waiting."""
        self.env["spp.dci.registrant.identifier"].create(
            {"partner_id": self.partner.id, "id_type": "NID", "value": "1000000001"}
        )
        wizard = (
            self.env["spp.dci.check.wizard"]
            .with_user(officer or self.officer)
            .create({"partner_ids": [(6, 0, self.partner.ids)], "identifier_type": "NID"})
        )
        wizard.action_confirm()
        check = self.env["spp.dci.duplication.check"].search([("partner_id", "=", self.partner.id)])
        self.mark_sent(check)
        return check

    @contextmanager
    def answered_once_listed(self, check):
        """The IBR's signed answer to ``check`` is posted once the browser has
        read the list of checks (from a thread: meanwhile the tour runs)."""
        body = self.on_search_body([self.item(check.reference_id)])
        listed = threading.Event()
        model = type(self.env["spp.dci.duplication.check"])
        read = model.web_search_read

        @api.model
        def web_search_read(records, *args, **kwargs):
            listed.set()
            return read(records, *args, **kwargs)

        def deliver():
            if listed.wait(60):
                time.sleep(1)  # the list is drawn, showing the check waiting
                url = self.base_url() + "/dci_api/ibr/on-search"
                answers.append(requests.post(url, data=body, headers=JSON, timeout=30))

        answers = []
        thread = threading.Thread(target=deliver, daemon=True)
        with (
            patch.object(model, "web_search_read", web_search_read),
            # the IBR's request carries no test cookie
            patch.object(self, "http_request_allow_all", True),
        ):
            thread.start()
            yield answers
            thread.join(30)

    def test_the_list_follows_the_answer_without_a_reload(self):
        check = self.queue_for_officer()
        with self.answered_once_listed(check) as answers:
            self.start_tour(
                "/odoo/action-spp_dci_client_ibr.action_dci_duplication_check",
                "spp_dci_ibr_live_list",
                login=self.officer.login,
            )
        self.assertEqual([a.status_code for a in answers], [200])
        self.assertEqual((check.state, check.result), ("completed", "no_match"))

    def test_a_french_officer_reads_the_end_of_a_batch_in_french(self):
        self.env["res.lang"]._activate_lang("fr_FR")
        self.env["ir.module.module"]._load_module_terms(
            ["spp_dci_client_ibr"], ["fr_FR"], overwrite=True
        )
        self.officer.write({"lang": "fr_FR", "tz": "Europe/Paris"})
        check = self.queue_for_officer()
        with self.answered_once_listed(check):
            self.start_tour(
                "/odoo/action-spp_dci_client_ibr.action_dci_duplication_check",
                "spp_dci_ibr_french_officer",
                login=self.officer.login,
            )
        self.assertTrue(check.request_id.notified_at)

    def test_a_finished_batch_shows_done(self):
        check = self.queue_for_officer()
        check.sudo().write({"state": "completed", "result": "no_match"})
        self.start_tour(
            "/odoo/action-spp_dci_client_ibr.action_dci_check_request",
            "spp_dci_ibr_batch_done",
            login=self.officer.login,
        )

    def test_without_a_ready_connection_the_wizard_says_ask_an_administrator(self):
        self.connection.active = False
        self.start_tour(
            f"/odoo/res.partner/{self.partner.id}",
            "spp_dci_ibr_no_connection",
            login=self.officer.login,
        )

    def test_the_figures_colour_and_split_results(self):
        checks = self.env["spp.dci.duplication.check"]
        pairs = ((self.partner, "confirmed_match"), (self.partner2, "no_match"))
        for partner, result in pairs:  # two registrants: both are latest attempts
            check = checks.create(
                {
                    "partner_id": partner.id,
                    "identifier_type": "NID",
                    "identifier_value": "1000000001",
                    "data_source_id": self.connection.id,
                }
            )
            check.sudo().write({"state": "completed", "result": result})
        manager = self.env.ref("base.user_admin")  # an IBR manager (security/groups.xml)
        self.start_tour(
            "/odoo/action-spp_dci_client_ibr.action_ibr_dashboard",
            "spp_dci_ibr_figures",
            login=manager.login,
        )
