"""The administrator's side: messages that name the fix, key fetch failures
kept on the sender, a key rotation retried by the refresh job, what the IBR
needs from us on the connection form, "Test connection", warnings about a key
that no longer matches, and connections that are not ready kept from officers."""

import json
import time
from datetime import timedelta
from unittest.mock import patch

from odoo import fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from ..dci import messages
from ..dci.client import IbrClient
from ..dci.errors import ServiceUnavailable
from ..dci.keys import KeySet, SigningKey, public_key_from_pem
from ..dci.signatures import sign_envelope
from ..dci.simulator import IbrSimulator
from ..dci.testing import LoopbackServer
from ..models.ibr_connection import API_ROOT
from ..models.ibr_sender import PARAM_ALLOW_PRIVATE
from .common import OUR_SENDER_ID, IbrCase

CRON = "spp_dci_client_ibr.ir_cron_refresh_sender_keys"
ADMIN_MENU = "IBR Checks > Configuration > IBR Connections"
DEAD_CALLBACK = "http://127.0.0.1:9/dci_api/ibr/on-search"  # nothing listens: callbacks fail


def jwks(*keys):
    return 200, {}, json.dumps({"keys": [k.public.to_jwk() for k in keys]}).encode()


@tagged("post_install", "-at_install")
class TestAdminExperience(IbrCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin = new_test_user(cls.env, login="dci_admin", groups="base.group_system")
        cls.cron = cls.env.ref(CRON)

    def new_sender(self, url, sender_id="ibr.admin"):
        return self.env["spp.dci.ibr.sender"].create(
            {"name": f"Sender {sender_id}", "sender_id": sender_id, "jwks_url": url}
        )

    def new_connection(self, **vals):
        connection = self.env["spp.dci.ibr.connection"].create(
            {
                "name": "Another IBR",
                "base_url": "http://127.0.0.1:9",
                "our_sender_id": OUR_SENDER_ID,
                "ibr_sender_id": self.sender.id,
                **vals,
            }
        )
        connection.action_generate_signing_key()
        return connection

    def use(self, sim):
        """Point the connection at the simulator ``sim`` and trust its signing key."""
        self.sender.write({"sender_id": sim.sender_id})
        self.sender._store_keys([sim.signing_key.public])
        self.connection.write(
            {"base_url": sim.url, "receiver_id": sim.sender_id, "callback_url": DEAD_CALLBACK}
        )

    def our_public_keys(self):
        conn = self.connection
        return KeySet([public_key_from_pem(conn.signing_public_key, kid=conn.signing_kid)])

    # -- 1. messages that name the fix ---------------------------------------------

    def test_private_address_refusal_names_the_system_parameter(self):
        self.set_param("allow_private_jwks_urls", "False")
        with LoopbackServer({"/jwks.json": jwks(SigningKey.generate("ibr.admin"))}) as server:
            sender = self.new_sender(server.url + "/jwks.json")
            with self.assertRaises(UserError) as error:
                sender.fetch_public_key()
            action = sender.action_fetch_public_key()
            self.assertEqual(server.requests, [])  # refused before connecting
        for text in (str(error.exception), action["params"]["message"], sender.last_fetch_error):
            self.assertIn("not a public address", text)
            self.assertIn(f"set the system parameter {PARAM_ALLOW_PRIVATE} to True", text)

    def test_other_refusals_do_not_suggest_the_parameter(self):
        sender = self.new_sender("https://x.example/jwks.json")
        sender.jwks_url = False
        with self.assertRaises(UserError) as error:
            sender.fetch_public_key()
        self.assertIn("ask the IBR where it publishes its public keys", str(error.exception))
        self.assertNotIn(PARAM_ALLOW_PRIVATE, str(error.exception))

    def test_missing_keys_say_which_and_where_to_get_them(self):
        empty = self.env["spp.dci.ibr.sender"].create({"name": "Keyless", "sender_id": "ibr.none"})
        with self.assertRaises(UserError) as error:
            empty.get_verifier()
        self.assertIn("ibr.none", str(error.exception))
        self.assertIn("Fetch Public Key", str(error.exception))
        self.assertIn("IBR Senders", str(error.exception))
        self.connection.sudo().signing_private_key = False
        with self.assertRaises(UserError) as error:
            self.connection._signing_key()
        self.assertIn("Generate Signing Key", str(error.exception))
        self.assertIn(ADMIN_MENU, str(error.exception))
        other = SigningKey.generate("ibr.stranger")
        with LoopbackServer({"/jwks.json": jwks(other)}) as server:
            sender = self.new_sender(server.url + "/jwks.json")
            with self.assertRaises(UserError) as error:
                sender.fetch_public_key()
        self.assertIn("'ibr.admin|'", str(error.exception))
        self.assertIn(server.url + "/jwks.json", str(error.exception))

    # -- 2. the button keeps the failure on the sender --------------------------------

    def test_fetch_button_records_the_failure_and_clears_it_on_success(self):
        sender = self.new_sender("http://127.0.0.1:9/jwks.json")  # nothing listens
        action = sender.action_fetch_public_key()
        self.assertEqual(action["tag"], "display_notification")
        self.assertEqual((action["params"]["type"], action["params"]["sticky"]), ("danger", True))
        self.assertIn("cannot connect", action["params"]["message"])
        self.assertIn(sender.name, action["params"]["message"])
        self.assertIn("cannot connect", sender.last_fetch_error)
        self.assertTrue(sender.last_key_fetch)
        failed = self.env["spp.dci.ibr.sender"].search([("last_fetch_error", "!=", False)])
        self.assertIn(sender, failed)  # the "Key Fetch Failed" filter
        with self.assertRaises(UserError):  # the upstream API still raises
            sender.fetch_public_key()
        key = SigningKey.generate("ibr.admin")
        with LoopbackServer({"/jwks.json": jwks(key)}) as server:
            sender.jwks_url = server.url + "/jwks.json"
            action = sender.action_fetch_public_key()
        self.assertEqual(action["params"]["type"], "success")
        self.assertFalse(sender.last_fetch_error)
        self.assertEqual(sender.key_ids.kid, key.kid)

    # -- 3. a rotation inside the refresh interval is retried by the job --------------

    def triggers(self):
        return self.env["ir.cron.trigger"].search([("cron_id", "=", self.cron.id)])

    def test_declined_refresh_is_scheduled_and_the_job_refreshes_that_sender(self):
        self.set_param("key_refresh_min_interval", "300")
        old, new = (SigningKey.generate("ibr.admin", key_id=k) for k in ("old", "new"))
        bystander_key = SigningKey.generate("ibr.bystander")
        routes = {"/jwks.json": jwks(old), "/bystander.json": jwks(bystander_key)}
        with LoopbackServer(routes) as server:
            sender = self.new_sender(server.url + "/jwks.json")
            bystander = self.new_sender(server.url + "/bystander.json", "ibr.bystander")
            sender.fetch_public_key()
            fetched_at = sender.last_key_fetch
            routes["/jwks.json"] = jwks(old, new)  # the IBR rotates its key
            self.assertIsNone(sender._refresh_keys_if_allowed())  # inside the interval
            before = self.triggers()
            due = sender._schedule_key_refresh()
            trigger = self.triggers() - before
            self.assertEqual(len(trigger), 1)
            expected = fetched_at + timedelta(seconds=300)
            self.assertLessEqual(abs((trigger.call_at - expected).total_seconds()), 2)
            self.assertEqual((due[sender.id], sender.key_refresh_due), (trigger.call_at,) * 2)
            sender._schedule_key_refresh()  # a flood of unknown kids plans no more runs
            self.assertEqual(self.triggers() - before, trigger)
            # the triggered run, once the interval is over: that sender only
            sender.key_refresh_due = fields.Datetime.now() - timedelta(seconds=1)
            self.cron.nextcall = fields.Datetime.now() + timedelta(hours=20)
            server.requests.clear()
            self.cron.ir_actions_server_id.run()  # what the scheduler executes
            self.assertEqual([r[1] for r in server.requests], ["/jwks.json"])
            published = sender.key_ids.filtered(lambda k: k.state == "published")
            self.assertIn(new.kid, published.mapped("kid"))
            self.assertFalse(sender.key_refresh_due)
            # the daily run refreshes every sender
            self.cron.nextcall = fields.Datetime.now() - timedelta(minutes=1)
            server.requests.clear()
            self.cron.ir_actions_server_id.run()
            self.assertEqual(
                sorted(r[1] for r in server.requests), ["/bystander.json", "/jwks.json"]
            )
        self.assertEqual(bystander.key_ids.kid, bystander_key.kid)

    def test_schedule_waits_for_the_process_limiter_after_a_rollback(self):
        """A refused callback rolls back last_key_fetch; the limiter still counts,
        so the job is planned for when the limiter allows a fetch again."""
        self.set_param("key_refresh_min_interval", "600")
        with LoopbackServer({"/jwks.json": (500, {}, b"{}")}) as server:
            sender = self.new_sender(server.url + "/jwks.json")
            self.env.flush_all()
            with self.assertRaises(RuntimeError), self.env.cr.savepoint():
                sender._refresh_keys_if_allowed()
                raise RuntimeError("the callback was refused")
            sender.invalidate_recordset()
            self.assertFalse(sender.last_key_fetch)
            due = sender._schedule_key_refresh()[sender.id]
        wait = (due - fields.Datetime.now()).total_seconds()
        self.assertTrue(595 <= wait <= 601, wait)
        self.assertFalse(self.new_sender(False, "ibr.nourl")._schedule_key_refresh())

    # -- 4. what the IBR needs from us ---------------------------------------------

    def test_our_urls_for_the_ibr(self):
        self.env["ir.config_parameter"].sudo().set_param(
            "web.base.url", "https://spmis.example.org/"
        )
        conn = self.connection
        conn.callback_url = False
        self.assertEqual(conn.our_jwks_url, "https://spmis.example.org/dci_api/ibr/jwks.json")
        self.assertEqual(conn.our_callback_url, "https://spmis.example.org/dci_api/ibr/on-search")
        self.assertIn(
            "https://spmis.example.org/dci_api/ibr/txn/on-status", conn.our_callback_urls.split()
        )
        self.assertEqual(len(conn.our_callback_urls.split()), 5)
        conn.callback_url = "https://public.example/dci_api/ibr/on-search"
        self.assertEqual(conn.our_jwks_url, "https://public.example/dci_api/ibr/jwks.json")
        # the paths really are served, under the endpoint's root
        endpoint = self.env.ref("spp_dci_client_ibr.fastapi_endpoint_dci_api")
        self.assertEqual(endpoint.root_path, API_ROOT)
        runner = self.env.ref("spp_dci_client_ibr.user_ibr_callback")
        with self._create_test_client(app=endpoint._get_app(), user=runner) as client:
            for path in ("/.well-known/jwks.json", "/ibr/jwks.json"):
                kids = [k["kid"] for k in client.get(path).json()["keys"]]
                self.assertIn(conn.signing_kid, kids, path)

    # -- 5. Test connection -------------------------------------------------------

    def test_connection_test_against_the_simulator(self):
        orphans = self.env["spp.dci.callback.orphan"]
        with IbrSimulator(client_jwks=self.our_public_keys()) as sim:
            self.use(sim)
            action = self.connection.with_user(self.admin).action_test_connection()
            for _ in range(50):  # the simulator answers from a worker thread
                if sim.sent:
                    break
                time.sleep(0.1)
        conn = self.connection
        self.assertEqual(action["params"]["type"], "success", conn.last_test_result)
        self.assertTrue(conn.last_test_ok)
        self.assertEqual(conn.last_test_result.count("✓"), 3, conn.last_test_result)
        [(path, raw)] = sim.requests
        posted = json.loads(raw)
        self.assertEqual(path, "/registry/txn/status")
        self.assertEqual(conn.last_test_transaction_id, posted["message"]["transaction_id"])
        self.assertTrue(posted["header"]["sender_uri"].endswith("/dci_api/ibr/txn/on-status"))
        self.assertIn("correlation id", conn.last_test_result)
        self.assertTrue(conn.last_test_at)
        self.assertFalse(conn.last_test_callback_at)
        # the IBR's own signed callback (a rejection: nobody sent that transaction)
        [(callback_action, envelope)] = sim.sent
        self.assertEqual(callback_action, "txn-on-status")
        before = orphans.search_count([])
        status, ack = self.env["spp.dci.callback.service"].on_txn_status(
            json.dumps(envelope).encode()
        )
        self.assertEqual((status, ack["message"]["ack_status"]), (200, "ACK"))
        self.assertTrue(conn.last_test_callback_at)
        self.assertEqual(orphans.search_count([]), before)  # a test answer is no orphan

    def test_a_test_callback_naming_the_transaction_is_recognised(self):
        conn = self.connection
        conn.write({"last_test_transaction_id": "test-txn", "last_test_at": fields.Datetime.now()})
        connections = self.env["spp.dci.ibr.connection"]
        self.assertFalse(connections._note_test_callback("another-txn", self.sender))
        self.assertFalse(conn.last_test_callback_at)
        head = messages.callback_header(
            "txn-on-status", self.sender.sender_id, status="succ", receiver_id=OUR_SENDER_ID
        )
        message = {
            "transaction_id": "test-txn",
            "correlation_id": "corr-test",
            "txnstatus_response": {"txn_type": "search", "txn_status": {}},
        }
        body = json.dumps(sign_envelope(head, message, self.ibr_key)).encode()
        status, _ack = self.env["spp.dci.callback.service"].on_txn_status(body)
        self.assertEqual(status, 200)
        self.assertTrue(conn.last_test_callback_at)
        other = self.env["spp.dci.ibr.sender"].create({"name": "Other", "sender_id": "ibr.o"})
        self.assertFalse(connections._note_test_callback("test-txn", other))  # not its test

    def test_connection_test_reports_a_server_error_as_such(self):
        with IbrSimulator(failures={"http-500"}) as sim:
            self.use(sim)
            action = self.connection.action_test_connection()
        result = self.connection.last_test_result
        self.assertEqual((action["params"]["type"], action["params"]["sticky"]), ("danger", True))
        self.assertIn(
            "✗ The IBR answered HTTP 500 (server error): the IBR is failing on its side", result
        )
        self.assertNotIn("cannot be reached", result)
        self.assertFalse(self.connection.last_test_ok)
        self.assertFalse(self.connection.last_test_transaction_id)
        self.assertEqual(len(sim.requests), 1)  # no retry: the administrator waits

    def test_connection_test_failures_name_the_fix(self):
        conn = self.connection
        with IbrSimulator(client_jwks=KeySet([SigningKey.generate(OUR_SENDER_ID).public])) as sim:
            self.use(sim)
            conn.action_test_connection()
        self.assertIn("The IBR refused our signature", conn.last_test_result)
        self.assertIn(f"give it our JWKS URL {conn.our_jwks_url}", conn.last_test_result)
        conn.base_url = "http://127.0.0.1:9"
        conn.action_test_connection()
        self.assertIn(
            "✗ The IBR cannot be reached (connection refused): check the IBR Base URL "
            "http://127.0.0.1:9",
            conn.last_test_result,
        )
        conn.ibr_sender_id = False
        conn.sudo().signing_private_key = False
        with patch.object(IbrClient, "_post", side_effect=AssertionError("sent")):
            action = conn.action_test_connection()
        self.assertEqual(action["params"]["type"], "danger")
        self.assertIn("✗ We have no signing key: generate one", conn.last_test_result)
        self.assertIn("✗ No trusted IBR sender", conn.last_test_result)
        self.assertIn("set a trusted IBR sender", conn.last_test_result)
        self.assertIn("✗ No request sent", conn.last_test_result)
        with self.assertRaises(AccessError):
            conn.with_user(self.officer).action_test_connection()

    def test_connection_test_waits_briefly(self):
        seen = []

        def request(client, *args, **kwargs):
            seen.append((client.timeout, client.session.adapters["http://"].max_retries.total))
            raise ServiceUnavailable("the IBR did not answer in time")

        with patch.object(IbrClient, "request_txn_status", autospec=True, side_effect=request):
            self.connection.action_test_connection()
            self.connection.timeout = 4
            self.connection.action_test_connection()
        self.assertEqual(seen, [((10, 10), 0), ((4, 4), 0)])

    # -- 6. a key that no longer matches ---------------------------------------------

    def test_changing_who_we_are_under_a_key_warns_and_asks_for_a_rotation(self):
        conn = self.connection
        for change in ({"our_sender_id": "spmis.renamed"}, {"signing_algorithm": "rs256"}):
            draft = conn.new(change, origin=conn)
            warning = draft._onchange_signing_identity()["warning"]
            self.assertIn(conn.signing_kid, warning["message"])
            self.assertIn("Rotate Signing Key", warning["message"])
            self.env.invalidate_all()  # drafts of one record share their values
        self.assertIsNone(conn.new({"name": "renamed"}, origin=conn)._onchange_signing_identity())
        keyless = self.env["spp.dci.ibr.connection"].new({"our_sender_id": "x"})
        self.assertIsNone(keyless._onchange_signing_identity())

        self.assertFalse(conn.signing_key_mismatch)
        conn.our_sender_id = "spmis.renamed"
        self.assertTrue(conn.signing_key_mismatch)
        self.assertFalse(conn.is_ready)
        self.assertIn("Rotate Signing Key", conn.config_problem)
        action = conn.action_generate_signing_key()
        self.assertEqual(action["params"]["type"], "success")
        self.assertIn(conn.signing_kid, action["params"]["message"])
        self.assertIn(f"fetch our JWKS at {conn.our_jwks_url}", action["params"]["message"])
        self.assertTrue(conn.signing_kid.startswith("spmis.renamed|"))
        self.assertFalse(conn.signing_key_mismatch)
        conn.signing_algorithm = "rs256"
        self.assertTrue(conn.signing_key_mismatch)
        conn.action_generate_signing_key()
        self.assertTrue(conn.signing_kid.endswith("|rs256"))
        self.assertTrue(conn.is_ready)

    # -- 7. connections that are not ready ---------------------------------------------

    def test_each_missing_piece_makes_a_connection_not_ready(self):
        keyless = self.env["spp.dci.ibr.sender"].create({"name": "Keyless", "sender_id": "ibr.k"})
        archived = self.env["spp.dci.ibr.sender"].create({"name": "Old", "sender_id": "ibr.old"})
        archived._store_keys([SigningKey.generate("ibr.old").public])
        archived.active = False
        pasted = SigningKey.generate("ibr.pasted")
        cases = {
            "archived": ({"active": False}, "It is archived: unarchive it."),
            "no sender": ({"ibr_sender_id": False}, "set a trusted IBR sender"),
            "archived sender": ({"ibr_sender_id": archived.id}, "Old is archived"),
            "keyless sender": ({"ibr_sender_id": keyless.id}, "click Fetch Public Key"),
            "no signing key": ({"signing_private_key": False}, "Generate Signing Key"),
            "mismatch": ({"our_sender_id": "spmis.other"}, "Rotate Signing Key"),
        }
        connections = self.env["spp.dci.ibr.connection"].with_context(active_test=False)
        for name, (vals, text) in cases.items():
            with self.subTest(name):
                conn = self.new_connection(name=name)
                self.assertTrue(conn.is_ready)
                self.assertFalse(conn.config_problem)
                conn.sudo().write(vals)
                self.assertFalse(conn.is_ready)
                self.assertIn(text, conn.config_problem)
                self.assertEqual(conn.readiness, "not_ready")
                self.assertNotIn(conn, connections.search([("is_ready", "=", True)]))
                self.assertIn(conn, connections.search([("is_ready", "=", False)]))
                self.assertIn(conn, connections.search([("is_ready", "!=", True)]))
        ready = self.new_connection(name="ready")
        self.assertIn(ready, connections.search([("is_ready", "=", True)]))
        # a pasted PEM is a key too
        keyless.write({"public_key": pasted.public.pem})
        self.assertTrue(self.new_connection(name="pasted", ibr_sender_id=keyless.id).is_ready)

    def test_ensure_ready_speaks_to_officers_and_to_administrators(self):
        conn = self.new_connection(name="Broken IBR", ibr_sender_id=False)
        with self.assertRaises(UserError) as officer_error:
            conn.with_user(self.officer)._ensure_ready()
        text = str(officer_error.exception)
        self.assertIn("The IBR connection Broken IBR is not ready to use (no trusted", text)
        self.assertIn("Ask an administrator to fix it.", text)
        self.assertNotIn("Settings", text)
        with self.assertRaises(UserError) as admin_error:
            conn.with_user(self.admin)._ensure_ready()
        text = str(admin_error.exception)
        self.assertIn("set a trusted IBR sender in the field Trusted IBR Sender", text)
        self.assertIn(f"Fix it in {ADMIN_MENU}.", text)
        self.assertNotIn("Ask an administrator", text)
        self.assertEqual(self.connection._ensure_ready(), self.connection)
        # an officer's check meets the same words, and stays unsent
        check = self.make_check(data_source_id=conn.id)
        with self.assertRaisesRegex(UserError, "not ready to use.*Ask an administrator"):
            check.with_user(self.officer).action_run_check()
        self.assertEqual(check.state, "ready")

    def test_the_default_connection_is_a_ready_one(self):
        self.new_connection(name="Broken first", sequence=0, ibr_sender_id=False)
        ready = self.new_connection(name="Ready second", sequence=1)
        self.assertEqual(self.env["spp.dci.ibr.connection"].get_default(), ready)
