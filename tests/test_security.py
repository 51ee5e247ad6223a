"""Who may write what, tried as each user would over RPC (``with_user``: the
ORM's own checks, as a JSON-RPC call meets them) and over HTTP for the
routes. A check's result decides whether a person may be enrolled: only the
IBR's verified answers and the product's own actions may set it."""

import json

from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged
from odoo.tools import mute_logger

from ..dci import messages
from ..dci.keys import SigningKey
from ..dci.schemas import SearchResponseItem
from ..dci.signatures import sign_envelope
from .common import IbrCase, beneficiary

JSON = {"Content-Type": "application/json"}
CONFIRMED = [beneficiary("NID", "1000000001", "Cash Transfer")]


class SecurityCase(IbrCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.manager = new_test_user(
            cls.env, login="ibr_manager", groups="spp_dci_client_ibr.group_ibr_manager"
        )
        cls.employee = new_test_user(cls.env, login="ibr_employee", groups="base.group_user")
        cls.portal = new_test_user(cls.env, login="ibr_portal", groups="base.group_portal")
        cls.checks = cls.env["spp.dci.duplication.check"]

    def completed_check(self):
        check = self.make_check()
        reference = self.mark_sent(check)
        self.assertEqual(
            self.post(self.on_search_body([self.item(reference, CONFIRMED)])).status_code, 200
        )
        self.assertEqual(check.result, "confirmed_match")
        return check


@tagged("post_install", "-at_install")
class TestResultsAreWrittenOnlyByVerifiedPaths(SecurityCase):
    def test_no_user_rewrites_a_result(self):
        check = self.completed_check()
        for user in (self.officer, self.manager, self.runner):
            mine = check.with_user(user)
            for vals in (
                {"result": "no_match"},
                {"raw_response": False},
                {"state": "ready"},
                {"matched_programs": False},
                {"result_source": "notification"},
                {"is_latest": False},
            ):
                with self.assertRaises(AccessError, msg=f"{user.login} wrote {vals}"):
                    mine.write(vals)
        self.assertEqual((check.result, check.state), ("confirmed_match", "completed"))
        self.assertIn("Cash Transfer", check.raw_response)

    def test_match_lines_are_nobodys_to_write(self):
        check = self.completed_check()
        lines = check.match_ids
        self.assertTrue(lines)
        for user in (self.officer, self.manager):
            with self.assertRaises(AccessError):
                lines.with_user(user).write({"programme_name": "Nothing"})
            with self.assertRaises(AccessError):
                self.env["spp.dci.duplication.match"].with_user(user).create(
                    {"check_id": check.id, "programme_name": "Forged"}
                )

    def test_an_officer_creates_questions_not_answers(self):
        vals = {
            "partner_id": self.partner.id,
            "identifier_type": "NID",
            "identifier_value": "1000000001",
            "data_source_id": self.connection.id,
        }
        checks = self.checks.with_user(self.officer)
        for extra in (
            {"state": "completed", "result": "no_match"},
            {"result": "no_match"},
            {"completed_at": "2026-01-01 00:00:00"},
            {"reference_id": "chosen-ref"},
        ):
            with self.assertRaises(AccessError, msg=str(extra)):
                checks.create(dict(vals, **extra))
        # a default_* context key is a value too: it is ignored
        sneaky = checks.with_context(default_state="completed", default_result="no_match")
        check = sneaky.create(vals)
        self.assertEqual((check.state, check.result), ("ready", False))
        # what an officer does: notes, queue, retry
        check.write({"notes": "asked by phone"})
        check.action_run_check()
        self.assertEqual(check.state, "queued")
        with self.assertRaises(AccessError):
            check.write({"identifier_value": "1000000002"})  # sent as it was asked

    def test_retry_and_run_again_still_work_for_an_officer(self):
        check = self.completed_check().with_user(self.officer)
        action = check.action_retry()
        again = self.checks.browse(action["res_id"])
        self.assertEqual(
            (again.state, again.attempt, again.previous_check_id), ("queued", 2, check)
        )
        self.assertFalse(check.is_latest)

    def test_viewers_read_results_not_answers(self):
        check = self.completed_check().with_user(self.viewer)
        self.assertEqual(check.result, "confirmed_match")
        with self.assertRaises(AccessError):
            check.read(["raw_response"])
        with self.assertRaises(AccessError):
            self.checks.with_user(self.viewer).search_read(
                [("id", "=", check.id)], ["raw_response"]
            )
        groups = self.checks.with_user(self.viewer).read_group(
            [("id", "=", check.id)], ["result"], ["result"]
        )
        self.assertEqual(groups[0]["result"], "confirmed_match")


@tagged("post_install", "-at_install")
class TestUnmatchedAnswers(SecurityCase):
    def test_people_cannot_make_or_edit_an_unmatched_answer(self):
        orphans = self.env["spp.dci.callback.orphan"]
        item = json.dumps(self.item("r-1"))
        for user in (self.viewer, self.officer, self.manager, self.runner):
            with self.assertRaises(AccessError, msg=user.login):
                orphans.with_user(user).create({"sender_id": "ibr.test", "item_json": item})
        orphan = orphans.create({"sender_id": "ibr.test", "item_json": item})
        with self.assertRaises(AccessError):
            orphan.with_user(self.manager).write({"state": "applied"})
        with self.assertRaises(AccessError):
            orphan.with_user(self.officer).action_dismiss()
        orphan.with_user(self.manager).action_dismiss()
        self.assertEqual(orphan.state, "dismissed")

    def test_an_answer_no_sender_verified_is_never_applied(self):
        """The attack: an orphan made outside the callback service (here by the
        superuser, as an officer once could) that names a waiting check."""
        check = self.make_check()
        reference = self.mark_sent(check)
        forged = self.env["spp.dci.callback.orphan"].create(
            {
                "sender_id": "ibr.test",
                "reference_id": reference,
                "transaction_id": "txn-1",
                "item_json": json.dumps(self.item(reference)),
            }
        )
        self.checks._cron_watch_answers()
        forged.action_reapply()
        self.assertEqual((check.state, check.result, forged.state), ("checking", False, "open"))

    def test_an_orphan_is_applied_as_the_answer_of_the_sender_that_verified_it(self):
        check = self.make_check()
        reference = self.mark_sent(check)
        other = self.env["spp.dci.ibr.sender"].create({"name": "Other", "sender_id": "ibr.other"})
        orphans = self.env["spp.dci.callback.orphan"]
        by_other = orphans._log_items([(self.item_model(reference), "early")], other, "txn-1")
        by_ours = orphans._log_items([(self.item_model(reference), "early")], self.sender, "txn-1")
        self.checks._cron_watch_answers()  # the reconcile step
        self.assertEqual(by_other.state, "open", "another sender does not answer this check")
        self.assertEqual(
            (by_ours.state, check.state, check.result), ("applied", "completed", "no_match")
        )

    def item_model(self, reference):
        return SearchResponseItem.model_validate(self.item(reference))


@tagged("post_install", "-at_install")
class TestUnverifiedMessages(SecurityCase):
    def test_a_forged_answer_only_leaves_a_note(self):
        check = self.make_check()
        reference = self.mark_sent(check)
        forged = SigningKey.generate("ibr.test", key_id="k9")
        with mute_logger("odoo.addons.spp_dci_client_ibr.models.callback_service"):
            response = self.post(self.on_search_body([self.item(reference, CONFIRMED)], key=forged))
        self.assertEqual(response.status_code, 401)
        self.assertEqual(
            (check.state, check.result, check.failure_kind), ("checking", False, False)
        )
        self.assertIn("err.signature.invalid", check.refusal_note)
        # the verified answer still completes it
        self.assertEqual(self.post(self.on_search_body([self.item(reference)])).status_code, 200)
        self.assertEqual((check.state, check.result), ("completed", "no_match"))

    def test_without_the_bearer_token_nothing_is_noted(self):
        self.sender.sudo().callback_token = "s3cret"
        check = self.make_check()
        reference = self.mark_sent(check)
        forged = SigningKey.generate("ibr.test", key_id="k9")
        body = self.on_search_body([self.item(reference)], key=forged)
        for headers in (JSON, dict(JSON, Authorization="Bearer wrong")):
            with mute_logger("odoo.addons.spp_dci_client_ibr.models.callback_service"):
                self.assertEqual(self.post(body, headers=headers).status_code, 401)
        self.assertEqual((check.state, check.refusal_note), ("checking", False))
        # with the token, the bad signature is noted (and still changes nothing)
        with mute_logger("odoo.addons.spp_dci_client_ibr.models.callback_service"):
            self.post(body, headers=dict(JSON, Authorization="Bearer s3cret"))
        self.assertEqual(check.state, "checking")
        self.assertTrue(check.refusal_note)


@tagged("post_install", "-at_install")
class TestLeastPrivilege(SecurityCase):
    def test_only_administrators_rotate_our_signing_key(self):
        kid = self.connection.signing_kid
        for user in (self.employee, self.viewer, self.officer, self.manager):
            with self.assertRaises(AccessError, msg=user.login):
                self.connection.with_user(user).action_generate_signing_key()
        self.assertEqual(self.connection.signing_kid, kid)
        admin = self.env.ref("base.user_admin")
        self.connection.with_user(admin).action_generate_signing_key()
        self.assertNotEqual(self.connection.signing_kid, kid)

    def test_only_administrators_configure(self):
        for user in (self.employee, self.officer, self.manager):
            with self.assertRaises(AccessError):
                self.connection.with_user(user).action_test_connection()
            with self.assertRaises(AccessError):
                self.sender.with_user(user).action_fetch_public_key()
            with self.assertRaises(AccessError):
                self.sender.with_user(user).fetch_public_key()
            with self.assertRaises(AccessError):
                self.connection.with_user(user).write({"base_url": "http://evil.example"})

    def test_the_callback_user_writes_only_key_refresh_fields(self):
        sender = self.sender.with_user(self.runner)
        sender.write({"last_fetch_error": "timeout", "key_refresh_due": False})
        for vals in (
            {"name": "Renamed"},
            {"jwks_url": "http://evil.example/jwks"},
            {"active": False},
        ):
            with self.assertRaises(AccessError, msg=str(vals)):
                sender.write(vals)
        with self.assertRaises(AccessError):
            self.connection.with_user(self.runner).write({"ibr_sender_id": False})

    def test_subscriptions_are_personal_data_written_by_their_actions(self):
        self.env["spp.dci.registrant.identifier"].create(
            {"partner_id": self.partner.id, "id_type": "NID", "value": "1000000001"}
        )
        [sub] = self.env["spp.dci.ibr.subscription"]._subscribe_partners(self.partner)
        for user in (self.employee, self.viewer):
            with self.assertRaises(AccessError, msg=user.login):
                self.env["spp.dci.ibr.subscription"].with_user(user).search([])
        mine = sub.with_user(self.officer)
        self.assertEqual(mine.state, "requested")
        for vals in ({"state": "active"}, {"code": "SUB-X"}, {"partner_id": self.partner2.id}):
            with self.assertRaises(AccessError, msg=str(vals)):
                mine.write(vals)
        mine.action_unsubscribe()  # never sent: ends at once, through the action
        self.assertEqual(sub.state, "ended")
        with self.assertRaises(AccessError):
            self.partner.with_user(self.viewer).action_ibr_subscribe()

    def test_typed_identifier_values_of_a_batch_are_personal_data(self):
        request = self.env["spp.dci.check.request"]._queue(
            self.partner, "NID", self.connection, {self.partner.id: "1000000001"}
        )
        with self.assertRaises(AccessError):
            request.with_user(self.viewer).read(["values_json"])
        self.assertIn("1000000001", request.with_user(self.officer).values_json)

    def test_secrets_are_not_copied(self):
        self.connection.sudo().write({"auth_type": "bearer", "bearer_token": "t0ken"})
        self.sender.sudo().callback_token = "s3cret"
        copy = self.connection.sudo().copy()
        self.assertFalse(copy.bearer_token or copy.signing_private_key or copy.signing_kid)
        sender_copy = self.sender.sudo().copy({"sender_id": "ibr.copy"})
        self.assertFalse(sender_copy.callback_token)

    def test_portal_users_see_nothing(self):
        check = self.make_check()
        for model in ("spp.dci.duplication.check", "spp.dci.ibr.connection", "spp.dci.ibr.sender"):
            with self.assertRaises(AccessError, msg=model):
                self.env[model].with_user(self.portal).search([])
        with self.assertRaises(AccessError):
            check.with_user(self.portal).read(["result"])

    def test_the_api_documentation_is_off_by_default(self):
        def get(path):
            with self._create_test_client(
                app=self.endpoint._get_app(), user=self.runner, raise_server_exceptions=False
            ) as client:
                return client.get(path).status_code

        for path in ("/docs", "/redoc", "/openapi.json"):
            self.assertEqual(get(path), 404, path)
        self.env["ir.config_parameter"].sudo().set_param("spp_dci_client_ibr.api_docs", "True")
        self.assertEqual(get("/openapi.json"), 200)


@tagged("post_install", "-at_install")
class TestMultiCompany(SecurityCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company_a = cls.env.company
        cls.company_b = cls.env["res.company"].create({"name": "Registry B"})
        cls.sender_b = cls.env["spp.dci.ibr.sender"].create(
            {"name": "IBR of B", "sender_id": "ibr.b", "company_id": cls.company_b.id}
        )
        cls.key_b = SigningKey.generate("ibr.b", "ed25519", key_id="k1")
        cls.sender_b._store_keys([cls.key_b.public])
        cls.connection_b = cls.env["spp.dci.ibr.connection"].create(
            {
                "name": "B's IBR",
                "company_id": cls.company_b.id,
                "base_url": "http://127.0.0.1:9",
                "our_sender_id": "spmis.b",
                "ibr_sender_id": cls.sender_b.id,
            }
        )
        cls.connection_b.action_generate_signing_key()
        cls.partner_b = cls.env["res.partner"].create(
            {"name": "Registrant of B", "company_id": cls.company_b.id}
        )
        cls.officer_b = new_test_user(
            cls.env,
            login="ibr_officer_b",
            groups="spp_dci_client_ibr.group_ibr_officer",
            company_id=cls.company_b.id,
            company_ids=[Command.set(cls.company_b.ids)],
        )
        cls.env["spp.dci.registrant.identifier"].create(
            [
                {"partner_id": cls.partner_b.id, "id_type": "NID", "value": "2000000001"},
                {"partner_id": cls.partner.id, "id_type": "NID", "value": "1000000001"},
            ]
        )

    def check_of_b(self):
        """A check B's officer asked for (read back as the test's superuser)."""
        check = self.checks.with_user(self.officer_b).create(
            {
                "partner_id": self.partner_b.id,
                "identifier_type": "NID",
                "identifier_value": "2000000001",
                "data_source_id": self.connection_b.id,
            }
        )
        return check.with_env(self.env)

    def test_a_check_takes_its_connections_company(self):
        check = self.check_of_b()
        self.assertEqual(check.company_id, self.company_b)
        self.assertEqual(self.make_check().company_id, self.company_a)
        with self.assertRaises(UserError):  # B's registrant through A's connection
            self.make_check(partner=self.partner_b)

    def test_each_company_sees_its_own_records(self):
        check_b = self.check_of_b()
        check_a = self.make_check()
        officer_a = self.checks.with_user(self.officer)
        self.assertEqual(officer_a.search([("id", "in", (check_a | check_b).ids)]), check_a)
        with self.assertRaises(AccessError):
            check_b.with_user(self.officer).read(["result"])
        with self.assertRaises(AccessError):
            self.connection_b.with_user(self.officer).read(["name"])
        self.assertEqual(
            self.env["spp.dci.ibr.connection"].with_user(self.officer_b).search([]),
            self.connection_b,
        )
        # a shared sender is seen by every company, B's only by B
        senders = self.env["spp.dci.ibr.sender"]
        self.assertEqual(
            senders.with_user(self.officer_b).search(
                [("id", "in", (self.sender | self.sender_b).ids)]
            ),
            self.sender | self.sender_b,
        )
        self.assertEqual(
            senders.with_user(self.officer).search(
                [("id", "in", (self.sender | self.sender_b).ids)]
            ),
            self.sender,
        )

    def test_the_wizard_sends_only_registrants_the_officer_may_read(self):
        wizard = (
            self.env["spp.dci.check.wizard"]
            .with_user(self.officer)
            .create(
                {
                    "selection_ids_json": json.dumps([self.partner_b.id, self.partner.id]),
                    "identifier_type": "NID",
                }
            )
        )
        self.assertEqual(wizard.line_ids.partner_id, self.partner)
        wizard.action_confirm()
        sent = self.checks.search([("identifier_value", "=", "2000000001")])
        self.assertFalse(sent, "B's registrant's identifier never leaves for A's IBR")

    def test_a_large_request_expands_only_what_the_asker_may_read(self):
        request = (
            self.env["spp.dci.check.request"]
            .with_user(self.officer)
            ._queue(self.partner_b | self.partner, "NID", self.connection)
        )
        self.assertEqual(request.check_ids.partner_id, self.partner)
        self.assertEqual(request.skipped_count, 1)

    def test_a_callback_applies_only_to_its_senders_checks(self):
        check_b = self.check_of_b()
        reference = self.mark_sent(check_b, transaction_id="txn-b")
        # A's trusted IBR names B's check: verified, but not B's IBR
        body = self.on_search_body([self.item(reference, CONFIRMED)], transaction_id="txn-b")
        self.assertEqual(self.post(body).status_code, 200)
        self.assertEqual((check_b.state, check_b.result), ("checking", False))
        orphan = self.env["spp.dci.callback.orphan"].search([("reference_id", "=", reference)])
        self.assertEqual(orphan.company_id, self.company_b)
        # B's own IBR completes it
        head = messages.callback_header("on-search", "ibr.b", status="succ", receiver_id="spmis.b")
        envelope = sign_envelope(
            head,
            {
                "transaction_id": "txn-b",
                "correlation_id": "corr-b",
                "search_response": [self.item(reference)],
            },
            self.key_b,
        )
        self.assertEqual(self.post(json.dumps(envelope).encode()).status_code, 200)
        self.assertEqual((check_b.state, check_b.result), ("completed", "no_match"))
        self.assertEqual(self.completed_check().match_ids.company_id, self.company_a)

    def test_connection_company_is_fixed_once_it_has_checks(self):
        self.check_of_b()
        with self.assertRaises(UserError):
            self.connection_b.write({"company_id": self.company_a.id})


@tagged("post_install", "-at_install")
class TestBoundedAnswers(SecurityCase):
    def test_a_page_sent_again_replaces_itself(self):
        check = self.make_check()
        reference = self.mark_sent(check)
        page = {"page_size": 1, "total_count": 2, "page_number": 1}
        for _attempt in range(3):  # the same page under three new message ids
            body = self.on_search_body([self.item(reference, pagination=page)])
            self.assertEqual(self.post(body).status_code, 200)
        self.assertEqual(len(json.loads(check.raw_response)), 1)
        self.assertEqual((check.state, check.pages_received, check.pages_total), ("checking", 1, 2))

    def test_pages_beyond_the_announced_count_are_refused(self):
        check = self.make_check()
        reference = self.mark_sent(check)
        first = {"page_size": 1, "total_count": 2, "page_number": 1}
        self.assertEqual(
            self.post(self.on_search_body([self.item(reference, pagination=first)])).status_code,
            200,
        )
        beyond = {"page_size": 1, "total_count": 50, "page_number": 7}
        with mute_logger("odoo.addons.spp_dci_client_ibr.models.callback_service"):
            response = self.post(self.on_search_body([self.item(reference, pagination=beyond)]))
        self.assertEqual(response.status_code, 400, response.text)
        ack = response.json()["message"]
        self.assertEqual((ack["ack_status"], ack["error"]["code"]), ("ERR", "err.request.bad"))
        self.assertEqual((len(json.loads(check.raw_response)), check.pages_total), (1, 2))
