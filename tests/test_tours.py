"""The officer's and the administrator's paths in a real browser (Odoo tours,
static/tests/tours/), against the built-in simulator."""

from odoo.tests import tagged

from ..dci.keys import KeySet, public_key_from_pem
from ..dci.simulator import IbrSimulator
from .common import IbrHttpCase


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
