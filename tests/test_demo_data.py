"""The demo data (the manifest's ``demo`` files), loaded once into this class's
transaction as Odoo loads it into a database made with demo data: the demo
connection is ready against the built-in simulator on loopback, each demo
user has exactly the documented groups, and the demo registrants' checks end
as the README says ("Try it in Odoo")."""

import json
import time
from unittest.mock import patch

from odoo.exceptions import AccessDenied
from odoo.modules.module import get_manifest
from odoo.tests import TransactionCase, tagged
from odoo.tools import convert_file

from ..dci.keys import KeySet, public_key_from_pem
from ..dci.messages import ack
from ..dci.simulator import IbrSimulator
from ..dci.testing import LoopbackServer
from ..models import db_retry
from ..models.ibr_demo import PARAM_IBR_URL, PARAM_ODOO_URL
from .common import LoopbackRequests

MODULE = "spp_dci_client_ibr"
# what a check by NID of each demo registrant gives against the simulator's sample
RESULTS = {
    "amina": "confirmed_match",  # NID 1000000001: an active enrolment
    "jonas": "possible_match",  # NID 1000000002: an ended enrolment
    "lea": "confirmed_match",  # NID 1000000004: three active enrolments, two pages
    **dict.fromkeys(
        "carlos fatima kwame priya tomas mei olga samuel hana yusuf ingrid rosa".split(),
        "no_match",
    ),
}
SKIPPED = {
    "zoe": "no identifier of type NID (has: UIN)",
    "ahmed": "no identifier of type NID",
    "nadia": "no identifier of type NID",
    "luca": "no identifier of type NID",
    "marta": "no identifier of type NID",  # its NID is marked invalid
}
# the groups given to each demo user (README, "Try it in Odoo")
GROUPS = {
    "viewer": {"base.group_user", f"{MODULE}.group_ibr_viewer"},
    "officer": {"base.group_user", f"{MODULE}.group_ibr_officer"},
    "manager": {"base.group_user", f"{MODULE}.group_ibr_manager"},
    "administrator": {"base.group_user", "base.group_system", f"{MODULE}.group_ibr_manager"},
}


@tagged("post_install", "-at_install", "ibr_demo")
class TestDemoData(LoopbackRequests, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # the test cursor cannot commit: the outbox's commits become flushes
        cls.startClassPatcher(patch.object(db_retry, "commit", lambda env: env.flush_all()))
        # our callback routes, on loopback: what the simulator posts is kept
        cls.callbacks = []

        def receive(_handler, body):
            cls.callbacks.append(body)
            return 200, {}, json.dumps(ack("demo")).encode()

        cls.our_side = LoopbackServer({"/dci_api/ibr/on-search": receive}).__enter__()
        cls.addClassCleanup(cls.our_side.__exit__, None, None, None)
        cls.sim = IbrSimulator().start()
        cls.addClassCleanup(cls.sim.stop)
        params = cls.env["ir.config_parameter"].sudo()
        params.set_param(PARAM_IBR_URL, cls.sim.url)
        params.set_param(PARAM_ODOO_URL, cls.our_side.url)
        cls.demo_files = get_manifest(MODULE)["demo"]
        for name in cls.demo_files:  # what Odoo does for a database with demo data
            convert_file(cls.env, MODULE, name, {}, mode="init", noupdate=True)
        cls.connection = cls.env.ref(f"{MODULE}.demo_ibr_connection")
        # the simulator verifies our requests with the key the install generated
        conn = cls.connection
        cls.sim.client_keys = KeySet(
            [public_key_from_pem(conn.signing_public_key, kid=conn.signing_kid)]
        )
        cls.officer = cls.env.ref(f"{MODULE}.demo_user_officer")
        runner = cls.env.ref(f"{MODULE}.user_ibr_callback")
        cls.service = cls.env["spp.dci.callback.service"].with_user(runner)
        cls.checks = cls.env["spp.dci.duplication.check"]

    def registrant(self, name):
        return self.env.ref(f"{MODULE}.demo_registrant_{name}")

    def deliver_callbacks(self, count):
        """Wait for the simulator's ``count`` signed callbacks, then apply them
        as a real request does: as the API's user, in a fresh cache."""
        deadline = time.monotonic() + 15
        while len(self.callbacks) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(len(self.callbacks), count, "callbacks the simulator sent")
        self.env.invalidate_all()
        for body in self.callbacks:
            status, answer = self.service.on_search(body)
            self.assertEqual((status, answer["message"]["ack_status"]), (200, "ACK"))
        self.callbacks.clear()
        self.env.invalidate_all()

    # -- the connection ------------------------------------------------------------

    def test_the_demo_connection_is_ready(self):
        conn = self.connection
        self.assertTrue(self.demo_files)
        self.assertTrue(conn.is_ready, conn.config_problem)
        self.assertFalse(conn.config_problem)
        self.assertEqual(self.env["spp.dci.ibr.connection"].get_default(), conn)
        # wired from the system parameters to the simulator and to our side
        self.assertEqual(conn.base_url, self.sim.url)
        self.assertEqual(conn.ibr_sender_id.jwks_url, self.sim.jwks_url)
        self.assertEqual(conn.our_jwks_url, self.our_side.url + "/dci_api/ibr/jwks.json")
        # the simulator's keys, as its JWKS publishes them; our own, generated at install
        self.assertEqual(conn.ibr_sender_id.key_ids.mapped("kid"), [self.sim.signing_key.kid])
        self.assertTrue(conn.signing_kid.startswith("spmis.demo|"))
        self.assertFalse(conn.signing_key_mismatch)
        # offered to the demo officer
        wizard = self.env["spp.dci.check.wizard"].with_user(self.officer).new({})
        self.assertEqual(wizard.connection_id, conn)

    def test_without_the_simulator_the_connection_says_why_until_wired_again(self):
        conn, params = self.connection, self.env["ir.config_parameter"].sudo()
        conn.ibr_sender_id.key_ids.unlink()
        conn.ibr_sender_id.write({"public_key": False, "algorithm": False})
        kid = conn.signing_kid
        params.set_param(PARAM_IBR_URL, "http://127.0.0.1:9")  # nothing listens there
        self.env["spp.dci.ibr.connection"]._demo_setup()
        self.assertFalse(conn.is_ready)
        self.assertIn("Fetch Public Key", conn.config_problem)
        self.assertTrue(conn.ibr_sender_id.last_fetch_error)
        # what make odoo-demo does at every start, the simulator running
        params.set_param(PARAM_IBR_URL, self.sim.url)
        self.env["spp.dci.ibr.connection"]._demo_setup()
        self.assertTrue(conn.is_ready, conn.config_problem)
        self.assertEqual(conn.signing_kid, kid, "a fitting signing key is kept")

    # -- the users -------------------------------------------------------------------

    def test_each_demo_user_has_exactly_the_documented_groups(self):
        users = self.env["res.users"]
        for login, documented in GROUPS.items():
            user = users.search([("login", "=", login)])
            given = set(user.group_ids.get_external_id().values())
            self.assertEqual(given, documented, login)
            # the README's password logs in
            auth = users.authenticate(
                {"type": "password", "login": login, "password": login}, {"interactive": False}
            )
            self.assertEqual(auth["uid"], user.id)
        with self.assertRaises(AccessDenied):
            users.authenticate(
                {"type": "password", "login": "officer", "password": "x"}, {"interactive": False}
            )
        by_login = {u.login: u for u in users.search([("login", "in", list(GROUPS))])}
        pii = f"{MODULE}.group_ibr_pii"
        self.assertFalse(by_login["viewer"].has_group(pii), "viewers see no personal data")
        self.assertTrue(by_login["officer"].has_group(pii))
        self.assertFalse(by_login["officer"].has_group(f"{MODULE}.group_ibr_manager"))
        self.assertFalse(by_login["manager"].has_group("base.group_system"))
        self.assertTrue(by_login["administrator"].has_group("base.group_system"))

    # -- the registrants and their checks ---------------------------------------------

    def test_the_officer_checks_a_demo_registrant(self):
        amina = self.registrant("amina")
        wizard = (
            self.env["spp.dci.check.wizard"]
            .with_user(self.officer)
            .create({"partner_ids": [(6, 0, amina.ids)], "identifier_type": "NID"})
        )
        action = wizard.action_confirm()
        check = self.checks.search(action["params"]["next"]["domain"])
        self.env["spp.dci.ibr.transaction"]._cron_send_queued()
        self.deliver_callbacks(1)
        self.assertEqual((check.state, check.result), ("completed", "confirmed_match"))
        self.assertEqual(check.create_uid, self.officer)
        self.assertEqual(check.match_ids.mapped("programme_name"), ["Cash Transfer Programme"])

    def test_the_ready_batch_gives_every_outcome_in_one_signed_search(self):
        batch = self.env.ref(f"{MODULE}.demo_check_batch")
        self.assertEqual(batch.create_uid, self.officer)
        self.assertEqual(batch.partner_count, 20)
        checks = batch.check_ids
        self.assertEqual(set(checks.mapped("state")), {"ready"})
        self.assertEqual(
            {c.partner_id for c in checks}, {self.registrant(n) for n in RESULTS}, "one per NID"
        )
        skipped = dict(json.loads(batch.skipped_json))
        self.assertEqual(
            {p.id: r for p, r in ((self.registrant(n), r) for n, r in SKIPPED.items())}, skipped
        )
        sent_before = len(self.sim.requests)
        checks.with_user(self.officer).action_run_check()
        self.env["spp.dci.ibr.transaction"]._cron_send_queued()
        [(path, raw)] = self.sim.requests[sent_before:]
        self.assertEqual(path, "/registry/search")
        self.assertEqual(len(json.loads(raw)["message"]["search_request"]), len(RESULTS))
        self.deliver_callbacks(2)  # three enrolments of page size 2: a second page
        self.assertEqual(
            {self.registrant(n): r for n, r in RESULTS.items()},
            {c.partner_id: c.result for c in checks},
        )
        lea = checks.filtered(lambda c: c.partner_id == self.registrant("lea"))
        self.assertEqual(lea.pages_received, 2)
        self.assertEqual(
            sorted(lea.match_ids.mapped("programme_name")),
            ["Cash Transfer Programme", "Disability Grant", "Old Age Pension"],
        )
        self.assertEqual((batch.open_count, batch.completed_count, batch.match_count), (0, 15, 3))

    def test_a_registrant_with_only_a_uin_is_checked_by_uin(self):
        zoe = self.registrant("zoe")
        wizard = (
            self.env["spp.dci.check.wizard"]
            .with_user(self.officer)
            .create({"partner_ids": [(6, 0, zoe.ids)], "identifier_type": "UIN"})
        )
        check = self.checks.search(wizard.action_confirm()["params"]["next"]["domain"])
        self.env["spp.dci.ibr.transaction"]._cron_send_queued()
        self.deliver_callbacks(1)
        self.assertEqual(check.result, "confirmed_match")
        self.assertEqual(check.match_ids.mapped("programme_name"), ["Food Voucher"])
