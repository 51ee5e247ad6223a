"""What officers and administrators see: refused answers, identifiers typed in
the wizard and skip reasons, attempts kept, results as match lines, the
registrant's worst latest result, and the notification when a batch ends."""

import json
from unittest.mock import patch

from odoo.exceptions import AccessError
from odoo.tests import Form, new_test_user, tagged

from ..dci.keys import SigningKey
from ..dci.simulator import IbrSimulator
from .common import IBR_SENDER_ID, IbrCase, beneficiary

JSON = {"Content-Type": "application/json"}


@tagged("post_install", "-at_install")
class TestOfficerExperience(IbrCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.checks = cls.env["spp.dci.duplication.check"]
        # callbacks are applied as the API's own user, with only its rights
        runner = cls.env.ref("spp_dci_client_ibr.user_ibr_callback")
        cls.service = cls.env["spp.dci.callback.service"].with_user(runner)
        cls.logs = cls.env["spp.dci.delivery.log"]

    def receive(self, body):
        """Deliver an on-search callback as a real request does: as the API's
        user, in a fresh cache (no record the test read lends its rights)."""
        self.env.invalidate_all()
        return self.service.on_search(body)

    def waiting_check(self, value="1000000001", transaction_id="txn-1", partner=None):
        check = self.make_check(partner, value=value)
        return check, self.mark_sent(check, transaction_id=transaction_id)

    def use(self, sim, mode="sync"):
        self.sender.write({"sender_id": sim.sender_id})
        self.sender._store_keys([sim.signing_key.public])
        self.connection.write({"base_url": sim.url, "mode": mode})

    # -- refused deliveries are visible ----------------------------------------------

    def test_a_refused_answer_is_visible_on_the_check_and_the_sender(self):
        check, reference = self.waiting_check()
        rotated = SigningKey.generate(IBR_SENDER_ID, key_id="k9")  # a kid we do not know
        body = self.on_search_body([self.item(reference)], key=rotated)
        status, ack = self.receive(body)
        self.assertEqual((status, ack["message"]["error"]["code"]), (401, "err.signature.invalid"))
        # the check says so at once, and still waits: an unverified message changes nothing
        self.assertEqual((check.state, check.failure_kind), ("checking", False))
        self.assertEqual(
            check.refusal_note, "an answer from ibr.test was refused: err.signature.invalid"
        )
        # the administrator sees it on the sender: ids and codes, no content
        [log] = self.sender.delivery_log_ids
        self.assertEqual(
            (log.route, log.http_status, log.code, log.count, log.checks_affected),
            ("on-search", 401, "err.signature.invalid", 1, 1),
        )
        self.assertEqual(log.transaction_id, "txn-1")
        self.assertNotIn("1000000001", json.dumps(log.read()[0], default=str))
        # the same refusal again within the hour adds to the row
        self.receive(self.on_search_body([self.item(reference)], key=rotated))
        self.assertEqual((log.count, len(self.sender.delivery_log_ids)), (2, 1))
        # once the IBR sends it verifiably, the answer applies after all
        status, _ack = self.receive(self.on_search_body([self.item(reference)]))
        self.assertEqual((status, check.state, check.result), (200, "completed", "no_match"))
        self.assertFalse(check.failure_kind)

    def test_a_check_whose_answers_were_refused_fails_as_refused_when_stale(self):
        check, reference = self.waiting_check()
        rotated = SigningKey.generate(IBR_SENDER_ID, key_id="k9")
        self.receive(self.on_search_body([self.item(reference)], key=rotated))
        check.sent_at = "2020-01-01 00:00:00"
        self.checks._cron_watch_answers()
        self.assertEqual((check.state, check.failure_kind), ("failed", "answer_refused"))
        self.assertIn("No verified answer", check.error_message)
        self.assertIn("ask an administrator", check.error_message.lower())

    def test_a_refusal_never_touches_checks_it_does_not_name(self):
        mine, reference = self.waiting_check(transaction_id="txn-mine")
        other_ibr = self.env["spp.dci.ibr.sender"].create(
            {"name": "Other IBR", "sender_id": "ibr.other"}
        )
        forged = SigningKey.generate("ibr.other", key_id="k1")
        body = self.on_search_body(
            [self.item(reference)], key=forged, sender_id="ibr.other", transaction_id="txn-mine"
        )
        self.assertEqual(self.receive(body)[0], 401)
        self.assertEqual(mine.state, "checking", "another sender cannot fail our checks")
        self.assertEqual(other_ibr.delivery_log_ids.checks_affected, 0)
        # an unknown sender is logged without a sender, under the id it claimed
        unknown = self.on_search_body([self.item(reference)], sender_id="ibr.nobody")
        self.assertEqual(self.receive(unknown)[0], 403)
        log = self.logs.search([("claimed_sender_id", "=", "ibr.nobody")])
        self.assertEqual((log.code, bool(log.sender_id)), ("err.sender_id.invalid", False))
        # claiming a new sender id each time grows no table: one row, the latest claim
        for n in range(5):
            self.receive(self.on_search_body([self.item(reference)], sender_id=f"ibr.x{n}"))
        unknown_senders = [("sender_id", "=", False), ("code", "=", log.code)]
        self.assertEqual(self.logs.search(unknown_senders), log)
        self.assertEqual((log.count, log.claimed_sender_id), (6, "ibr.x4"))
        # a failure to apply is logged too, but the check waits for the IBR's retry
        model = type(self.checks)
        with (
            patch.object(model, "_process_ibr_search_result", side_effect=RuntimeError("x")),
            self.assertLogs("odoo.addons.spp_dci_client_ibr.models.callback_service", "ERROR"),
        ):
            status, _ack = self.receive(
                self.on_search_body([self.item(reference)], transaction_id="txn-mine")
            )
        self.assertEqual((status, mine.state), (503, "checking"))
        self.assertEqual(self.sender.delivery_log_ids.mapped("code"), ["err.service.unavailable"])

    def test_managers_read_the_delivery_log_officers_do_not(self):
        self.receive(b'{"header": {"sender_id": "ibr.test"}}')
        manager = new_test_user(
            self.env, login="ibr_mgr2", groups="spp_dci_client_ibr.group_ibr_manager"
        )
        self.assertTrue(self.logs.with_user(manager).search([]))
        with self.assertRaises(AccessError):
            self.logs.with_user(self.officer).search([])

    # -- identifiers in plain Odoo: typed in the wizard, skip reasons --------------------

    def test_the_wizard_lists_what_is_sent_and_who_is_skipped_and_why(self):
        lines = self.env["spp.dci.registrant.identifier"]
        third = self.env["res.partner"].create({"name": "Registrant Three"})
        lines.create(
            [
                {"partner_id": self.partner.id, "id_type": "NID", "value": "1000000001"},
                {"partner_id": third.id, "id_type": "UIN", "value": "U-77"},
            ]
        )
        selection = self.partner | self.partner2 | third
        form = Form(  # as the officer's browser does: onchanges, then save
            self.env["spp.dci.check.wizard"]
            .with_user(self.officer)
            .with_context(default_partner_ids=selection.ids)
        )
        self.assertEqual(form.identifier_type, "NID")  # what most of the selection has
        preview = {}
        for index in range(len(form.line_ids)):
            with form.line_ids.edit(index) as line:
                preview[line.partner_id.name] = (line.identifier_value, line.skip_reason)
        self.assertEqual(
            preview,
            {
                "Registrant One": ("1000000001", False),
                "Registrant Two": (False, "no identifier of type NID"),
                "Registrant Three": (False, "no identifier of type NID (has: UIN)"),
            },
        )
        self.assertEqual((form.send_count, form.skip_count), (1, 2))
        # the officer types the value of one registrant: kept on it, and checked
        with form.line_ids.edit(1) as line:
            line.identifier_value = "1000000003"
        self.assertEqual((form.send_count, form.skip_count), (2, 1))
        wizard = form.save()
        with IbrSimulator() as sim:
            self.use(sim)
            action = wizard.action_confirm()
            self.env["spp.dci.ibr.transaction"]._cron_send_queued()
        self.assertEqual(
            self.partner2._get_ibr_identifiers(), [("NID", "1000000003")], "kept on the registrant"
        )
        message = action["params"]["message"]
        self.assertIn("2 checks queued, 1 registrant skipped.", message)
        self.assertIn("no identifier of type NID (has: UIN)", message)
        done = self.checks.search(action["params"]["next"]["domain"])
        self.assertEqual(
            sorted(done.mapped(lambda c: (c.partner_id.name, c.result))),
            [("Registrant One", "confirmed_match"), ("Registrant Two", "no_match")],
        )
        request = done.request_id
        self.assertEqual(request.skipped_partner_ids, third)
        self.assertEqual((request.completed_count, request.match_count), (2, 1))

    # -- results as data ---------------------------------------------------------------

    def test_matches_are_lines_from_the_spec_record(self):
        check, reference = self.waiting_check()
        ended = beneficiary("NID", "1000000001", "School Feeding", status="Exited")
        ended["member"]["programme_identifier"]["exit_date"] = "2025-06-30"
        records = [
            beneficiary("NID", "1000000001", "Cash Transfer", programme_id="P1", name="Ana Li"),
            ended,
        ]
        self.receive(self.on_search_body([self.item(reference, records)]))
        self.assertEqual((check.result, check.result_source), ("confirmed_match", "search"))
        lines = check.match_ids.sorted("id")
        self.assertEqual(
            lines.mapped(
                lambda m: (m.programme_id, m.programme_name, m.enrolment_status, m.end_date)
            ),
            [
                ("P1", "Cash Transfer", "Active", False),
                ("P1", "School Feeding", "Exited", "2025-06-30"),
            ],
        )
        first = lines[0]
        self.assertEqual(
            (first.person_name, first.sex, first.birth_date, first.identifiers),
            ("Ana Li", "F", "1990-05-02", "NID 1000000001"),
        )
        self.assertTrue(first.enrolment_active and first.same_identifier)
        self.assertEqual(check.matched_programs, "Cash Transfer\nSchool Feeding")  # kept
        self.assertIn('\n  {\n    "reference_id"', check.raw_response_pretty)
        # figures: matches by programme
        by_programme = dict(
            self.env["spp.dci.duplication.match"]._read_group(
                [("check_id", "=", check.id)], ["programme_name"], ["__count"]
            )
        )
        self.assertEqual(by_programme, {"Cash Transfer": 1, "School Feeding": 1})

    def test_a_nul_in_a_record_is_stored_without_it(self):
        check, reference = self.waiting_check()
        record = beneficiary("NID", "1000000001", "Cash\x00 Transfer", name="Ana\x00 Li")
        status, _ack = self.receive(self.on_search_body([self.item(reference, [record])]))
        self.assertEqual((status, check.state), (200, "completed"))  # no 503 for ever
        self.assertEqual(check.match_ids.mapped("person_name"), ["Ana Li"])
        self.assertEqual(check.matched_programs, "Cash Transfer")

    def test_pages_received_out_of_the_total(self):
        check, reference = self.waiting_check()
        page = {"page_size": 1, "page_number": 1, "total_count": 3}
        records = [beneficiary("NID", "1000000001", "A")]
        self.receive(self.on_search_body([self.item(reference, records, pagination=page)]))
        self.assertEqual((check.state, check.pages_received, check.pages_total), ("checking", 1, 3))

    # -- the registrant: worst of the latest result per IBR -------------------------------

    def test_the_registrant_shows_the_worst_latest_result_per_ibr(self):
        second_ibr = self.connection.copy({"name": "Second IBR"})
        second_ibr.action_generate_signing_key()
        results = [
            (self.connection, "1000000001", "2026-01-01"),  # confirmed, later no match
            (self.connection, "1000000003", "2026-02-01"),
            (second_ibr, "1000000002", "2026-01-15"),  # possible: the worst latest
        ]
        for connection, value, when in results:
            check = self.make_check(value=value, data_source_id=connection.id)
            reference = self.mark_sent(check, transaction_id=f"txn-{value}")
            check._process_ibr_search_result(self._item_of(reference, value))
            check.completed_at = when
        self.partner.invalidate_recordset(["dci_last_result", "dci_latest_check_ids"])
        latest = self.partner.dci_latest_check_ids
        self.assertEqual(
            sorted(latest.mapped(lambda c: (c.data_source_id.name, c.result))),
            [("Second IBR", "possible_match"), ("Test IBR connection", "no_match")],
        )
        self.assertEqual(self.partner.dci_last_result, "possible_match")

    def _item_of(self, reference, value):
        from ..dci.schemas import SearchResponseItem
        from ..dci.simulator.dataset import Dataset

        records = Dataset.sample().find("NID", value)
        return SearchResponseItem.model_validate(self.item(reference, records))

    # -- the officer is told when a batch ends ------------------------------------------

    def test_the_officer_is_notified_when_the_batch_is_answered(self):
        lines = self.env["spp.dci.registrant.identifier"]
        lines.create(
            [
                {"partner_id": self.partner.id, "id_type": "NID", "value": "1000000001"},
                {"partner_id": self.partner2.id, "id_type": "NID", "value": "1000000003"},
            ]
        )
        users = type(self.env["res.users"])

        def told(kind="simple_notification"):
            return [call.args for call in bus.call_args_list if call.args[1] == kind]

        with patch.object(users, "_bus_send", autospec=True) as bus, IbrSimulator() as sim:
            self.use(sim, mode="async")
            self.connection.callback_url = "http://127.0.0.1:9/dci_api/ibr/on-search"
            checks = self.check_in_ibr(self.partner | self.partner2)
            self.env["spp.dci.ibr.transaction"]._cron_send_queued()
            self.sender.write({"sender_id": IBR_SENDER_ID})  # our test key signs the answers
            self.sender._store_keys([self.ibr_key.public])
            self.assertEqual(set(checks.mapped("state")), {"checking"})
            self.assertFalse(told(), "not before the answers")
            # the officer's screens follow: sent, then each answer
            [(user, _kind, payload)] = told("spp_dci_ibr/changed")
            self.assertEqual(user, self.officer)
            self.assertIn("spp.dci.duplication.check", payload["models"])
            first, second = checks.sorted("id")
            self.receive(self.on_search_body([self.item(first.reference_id)]))
            self.assertFalse(told(), "one check still open")
            self.assertEqual(len(told("spp_dci_ibr/changed")), 2)
            self.receive(self.on_search_body([self.item(second.reference_id)]))
        [(user, kind, payload)] = told()
        self.assertEqual((user, kind), (self.officer, "simple_notification"))
        self.assertIn(
            "0 confirmed matches, 0 possible matches, 2 without match, 0 failed; "
            "0 registrants skipped.",
            payload["message"],
        )
        self.assertTrue(checks.request_id.notified_at)
        bus.reset_mock()
        checks.request_id._notify_if_finished()  # told once
        self.assertFalse(told())

    # -- smaller things an office stumbles on ------------------------------------------

    def test_names_and_the_technical_user(self):
        self.assertEqual(self.checks.new({}).display_name, "New Check")
        runner = self.env.ref("spp_dci_client_ibr.user_ibr_callback")
        self.assertFalse(runner.active or runner.partner_id.active, "listed among no contacts")
        self.assertNotIn(
            runner.partner_id, self.env["res.partner"].search([("name", "=", runner.name)])
        )
        orphan = self.env["spp.dci.callback.orphan"].create(
            {"sender_id": "ibr.test", "reference_id": "r-1"}
        )
        self.assertEqual(orphan.display_name, "Unmatched answer from ibr.test (r-1)")
        check, _reference = self.waiting_check()
        check.sent_at = "2020-01-01 00:00:00"
        self.connection.stale_after_minutes = 1
        self.checks._cron_watch_answers()
        self.assertIn("within 1 minute.", check.error_message)
        self.assertEqual(check.failure_kind, "no_answer")
        found = self.env["res.partner"].search([("dci_identifier_ids.value", "ilike", "100000")])
        self.assertFalse(found)
        self.env["spp.dci.registrant.identifier"].create(
            {"partner_id": self.partner2.id, "id_type": "NID", "value": "1000000009"}
        )
        self.assertEqual(
            self.env["res.partner"].search([("dci_identifier_ids.value", "ilike", "100000")]),
            self.partner2,
        )
