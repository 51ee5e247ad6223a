"""Duplication checks against the reference IBR simulator and scripted
loopback IBRs: signed async and sync searches, batches, every failure path,
paged answers, retries, the scheduled jobs, the registrant side, access
rights and personal-data gating."""

import json
import time
from unittest.mock import patch

import psycopg2
from lxml import etree

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import new_test_user, tagged
from odoo.tools import mute_logger

from ..dci import messages
from ..dci.errors import Unauthorized
from ..dci.keys import KeySet, SigningKey, public_key_from_pem
from ..dci.schemas import SearchResponse, SearchResponseItem
from ..dci.signatures import SignaturePolicy, sign_envelope, verify_signature
from ..dci.simulator import IbrSimulator
from ..dci.testing import LoopbackServer
from .common import IBR_SENDER_ID, OUR_SENDER_ID, IbrCase, beneficiary

QUIET = ("urllib3.connectionpool", "odoo.addons.spp_dci_client_ibr.models.duplication_check")


def sent(server):
    """The envelopes our client POSTed to a loopback IBR, in order."""
    return [(path, json.loads(body)) for _m, path, _h, body in server.requests]


def ack(status="ACK", correlation_id="corr-42", error=None):
    body = messages.ack(correlation_id, status=status)
    if error:
        body["message"]["error"] = {"code": error.code, "message": error.message}
    return 200, {}, json.dumps(body).encode()


@tagged("post_install", "-at_install")
class TestDuplicationCheck(IbrCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.manager = new_test_user(
            cls.env, login="ibr_manager", groups="spp_dci_client_ibr.group_ibr_manager"
        )
        cls.checks = cls.env["spp.dci.duplication.check"]

    # -- helpers -------------------------------------------------------------

    def point(self, url, mode="async", **vals):
        self.connection.write(
            {
                "base_url": url,
                "mode": mode,
                "callback_url": "http://127.0.0.1:9/dci_api/ibr/on-search",
                **vals,
            }
        )

    def use(self, sim, mode="async"):
        """Point the connection at the simulator ``sim`` and trust its signing key."""
        self.sender.write({"sender_id": sim.sender_id})
        self.sender._store_keys([sim.signing_key.public])
        self.point(sim.url, mode)

    def send(self, checks):
        """What the officer's button and the send job do: queue, then send."""
        checks.action_run_check()
        self.assertEqual(set(checks.mapped("state")), {"queued"})
        self.env["spp.dci.ibr.transaction"]._cron_send_queued()

    def run_with(self, checks, mode="async", **sim_options):
        """Run ``checks`` against a fresh simulator and return it."""
        with IbrSimulator(**sim_options) as sim:
            self.use(sim, mode)
            self.send(checks)
            return sim

    def signed_answer(self, make_items, key=None, sender_id=IBR_SENDER_ID, **header):
        """A loopback route answering a sync search with ``make_items(reference_ids)``,
        signed as the trusted IBR (or with ``key``)."""
        status = header.pop("status", "succ")

        def route(_handler, body):
            request = json.loads(body)["message"]
            references = [i["reference_id"] for i in request["search_request"]]
            message = {
                "transaction_id": request["transaction_id"],
                "correlation_id": "corr-sync",
                "search_response": make_items(references),
            }
            head = messages.callback_header(
                "on-search",
                sender_id,
                status=status,
                receiver_id=OUR_SENDER_ID,
                **header,
            )
            envelope = sign_envelope(head, message, key or self.ibr_key)
            return 200, {}, json.dumps(envelope).encode()

        return route

    def assert_failed(self, check, text):
        self.assertEqual(check.state, "failed")
        self.assertFalse(check.result, "a failed check must never carry a result")
        self.assertFalse(check.completed_at)
        self.assertIn(text, check.error_message or "")

    # -- the async path --------------------------------------------------------

    def test_async_search_is_signed_and_acknowledged(self):
        check = self.make_check()
        with LoopbackServer({"/registry/search": ack(correlation_id="corr-42")}) as server:
            self.point(server.url)
            self.send(check)
        self.assertEqual(check.state, "checking")
        self.assertEqual(check.correlation_id, "corr-42")
        self.assertTrue(check.transaction_id and check.reference_id and check.sent_at)
        self.assertFalse(check.result or check.completed_at)
        [(path, envelope)] = sent(server)
        self.assertEqual(path, "/registry/search")
        header, message = envelope["header"], envelope["message"]
        self.assertEqual(
            (header["action"], header["sender_id"], header["receiver_id"], header["total_count"]),
            ("search", OUR_SENDER_ID, IBR_SENDER_ID, 1),
        )
        self.assertEqual(header["sender_uri"], self.connection.get_callback_url())
        self.assertEqual(message["transaction_id"], check.transaction_id)
        [item] = message["search_request"]
        self.assertEqual(item["reference_id"], check.reference_id)
        criteria = item["search_criteria"]
        self.assertEqual(criteria["query_type"], "idtype-value")
        self.assertEqual(criteria["reg_type"], "ns:org:RegistryType:IBR")
        self.assertEqual(criteria["query"], {"type": "NID", "value": "1000000001"})
        ours = public_key_from_pem(
            self.connection.signing_public_key, kid=self.connection.signing_kid
        )
        verified = verify_signature(
            envelope["signature"], header, message, KeySet([ours]).get, SignaturePolicy()
        )
        self.assertEqual(verified.kid, self.connection.signing_kid)

    def test_async_answer_applies_to_the_waiting_check(self):
        check = self.make_check()
        sim = self.run_with(check, failures=["drop"])  # the answer is applied by hand below
        self.assertEqual((check.state, sim.stats["requests"]), ("checking", 1))
        response = SearchResponse.model_validate(sim.transactions[check.correlation_id])
        stranger = self.env["spp.dci.ibr.sender"].create({"name": "X", "sender_id": "ibr.x"})
        orphans = self.checks._apply_search_response(response, stranger)
        self.assertIn("does not answer", orphans[0][1])
        self.assertEqual(check.state, "checking")
        self.assertEqual(self.checks._apply_search_response(response, self.sender), [])
        self.assertEqual((check.state, check.result), ("completed", "confirmed_match"))
        self.assertEqual(check.matched_programs, "Cash Transfer Programme")
        self.assertTrue(check.completed_at)
        late = self.checks._apply_search_response(response, self.sender)  # delivered again
        self.assertIn("completed", late[0][1])

    def test_paged_answer_has_a_result_only_when_complete(self):
        check = self.make_check(value="1000000004")  # three records, one per page
        sim = self.run_with(check, failures=["drop"], page_size=1)
        items = [
            SearchResponseItem.model_validate(i)
            for i in sim.transactions[check.correlation_id]["search_response"]
        ]
        self.assertEqual([i.pagination.page_number for i in items], [1, 2, 3])
        for item, pages in ((items[2], 1), (items[0], 2), (items[0], 2)):  # a page twice
            check._process_ibr_search_result(item)
            self.assertEqual((check.state, check.pages_received), ("checking", pages))
            self.assertFalse(check.result, "no result before the whole answer arrived")
            self.assertFalse(check.matched_programs)
        check._process_ibr_search_result(items[1])
        self.assertEqual((check.state, check.result), ("completed", "confirmed_match"))
        self.assertEqual((check.pages_received, check.record_count), (3, 3))
        self.assertEqual(
            check.matched_programs.split("\n"),
            ["Cash Transfer Programme", "Disability Grant", "Old Age Pension"],
        )

    def test_rejected_page_drops_the_partial_result(self):
        check = self.make_check()
        self.mark_sent(check)
        page = {"page_size": 1, "total_count": 2, "page_number": 1}
        first = self.item(check.reference_id, [beneficiary("NID", "1000000001", "A")])
        check._process_ibr_search_result(
            SearchResponseItem.model_validate(dict(first, pagination=page))
        )
        check._process_ibr_search_result(
            SearchResponseItem.model_validate(
                self.item(check.reference_id, status="rjct", status_reason_code="rjct.x")
            )
        )
        self.assert_failed(check, "rjct.x")
        self.assertFalse(check.matched_programs)

    # -- the sync path and batches ---------------------------------------------

    def test_sync_batch_interprets_every_answer(self):
        checks = (
            self.make_check(value="1000000001")
            | self.make_check(value="1000000002")
            | self.make_check(self.partner2, value="1000000003")
        )
        sim = self.run_with(checks, mode="sync")
        self.assertEqual(sim.stats["requests"], 1)  # one signed message for the batch
        self.assertEqual(len(set(checks.mapped("transaction_id"))), 1)
        self.assertEqual(checks.mapped("state"), ["completed"] * 3)
        self.assertEqual(checks.mapped("result"), ["confirmed_match", "possible_match", "no_match"])
        self.assertEqual(checks[0].matched_programs, "Cash Transfer Programme")
        self.assertIn("reg_records", checks[0].raw_response)
        self.assertTrue(all(checks.mapped("completed_at")))

    def test_batch_size_splits_messages(self):
        self.connection.batch_size = 2
        checks = self.make_check() | self.make_check() | self.make_check(self.partner2)
        with LoopbackServer({"/registry/search": ack()}) as server:
            self.point(server.url)
            self.send(checks)
        envelopes = [envelope for _path, envelope in sent(server)]
        self.assertEqual([len(e["message"]["search_request"]) for e in envelopes], [2, 1])
        self.assertEqual(len({e["header"]["message_id"] for e in envelopes}), 2)
        self.assertTrue(all(e["signature"] for e in envelopes))
        for envelope in envelopes:
            batch = self.checks.search(
                [("transaction_id", "=", envelope["message"]["transaction_id"])]
            )
            self.assertEqual(
                sorted(batch.mapped("reference_id")),
                sorted(i["reference_id"] for i in envelope["message"]["search_request"]),
            )
        self.assertEqual(checks.mapped("state"), ["checking"] * 3)

    # -- failures ----------------------------------------------------------------

    def test_simulated_ibr_failures_fail_the_check(self):
        for failure, mode, text, kind in [
            ("err-ack", "async", "refused the request", "refused"),
            ("http-500", "async", "answered HTTP 500", "ibr_error"),
            ("http-500", "sync", "answered HTTP 500", "ibr_error"),
            ("rjct", "sync", "rejected the search", "rejected"),
            ("bad-signature", "sync", "err.signature.invalid", "answer_refused"),
            ("unsigned", "sync", "err.signature.missing", "answer_refused"),
        ]:
            check = self.make_check()
            with mute_logger(*QUIET):
                self.run_with(check, mode=mode, failures=[failure])
            self.assert_failed(check, text)
            self.assertEqual(check.failure_kind, kind, failure)

    def test_scripted_ibr_failures_fail_the_check(self):
        def slow(_handler, _body):
            time.sleep(1.3)  # the connection's timeout is 1 s
            return ack()

        not_json = (200, {"Content-Type": "text/html"}, b"<html>maintenance</html>")
        unauthorized = json.dumps(messages.err_ack(Unauthorized("bad token"))).encode()
        only_first = self.signed_answer(lambda refs: [self.item(refs[0])])
        rejected = self.signed_answer(
            lambda refs: [
                self.item(
                    r,
                    status="rjct",
                    status_reason_code="rjct.search.too_many_records_found",
                    status_reason_message="too broad",
                )
                for r in refs
            ]
        )
        stranger = self.signed_answer(
            lambda refs: [self.item(r) for r in refs], key=SigningKey.generate(IBR_SENDER_ID)
        )
        header_rjct = self.signed_answer(
            lambda refs: [], status="rjct", reason_code="rjct.reference_id.invalid"
        )
        cases = [
            ("async", ack("NACK"), "NACK"),
            ("async", ack("ERR", error=Unauthorized("unknown sender")), "unknown sender"),
            ("async", (401, {}, unauthorized), "credentials"),
            ("async", (401, {}, b""), "HTTP 401"),
            ("async", (500, {}, b"{}"), "HTTP 500"),
            ("async", not_json, "cannot read"),
            ("sync", not_json, "cannot read"),
            ("async", slow, "did not answer in time"),
            ("sync", ack(), "no synchronous answer"),
            ("sync", rejected, "rjct.search.too_many_records_found"),
            ("sync", stranger, "err.signature.invalid"),
            ("sync", header_rjct, "rjct.reference_id.invalid"),
        ]
        self.connection.timeout = 1
        for mode, answer, text in cases:
            route = "/registry/search" if mode == "async" else "/registry/sync/search"
            check = self.make_check()
            with LoopbackServer({route: answer}) as server, mute_logger(*QUIET):
                self.point(server.url, mode)
                self.send(check)
            self.assertEqual(len(server.requests), 1, (mode, text))  # no blind resending
            with self.subTest(mode=mode, expected=text):
                self.assert_failed(check, text)
        # a sync answer that leaves one check of the batch out fails that one only
        answered, left_out = self.make_check(), self.make_check(self.partner2)
        with LoopbackServer({"/registry/sync/search": only_first}) as server:
            self.point(server.url, "sync")
            self.send(answered | left_out)
        self.assertEqual((answered.state, answered.result), ("completed", "no_match"))
        self.assert_failed(left_out, "did not cover")

    def test_unreachable_ibr(self):
        check = self.make_check()
        self.point("http://127.0.0.1:9", "sync")
        with mute_logger(*QUIET):
            self.send(check)
        self.assert_failed(check, "The IBR cannot be reached (connection refused).")

    def test_configuration_problems_are_user_errors(self):
        check = self.make_check()
        self.connection.ibr_sender_id = False  # no answer could be verified, async or sync
        for mode in ("async", "sync"):
            self.connection.mode = mode
            with self.assertRaisesRegex(
                UserError, "no trusted IBR sender.*Fix it in IBR Checks > Configuration"
            ):
                check.action_run_check()
        self.connection.write({"ibr_sender_id": self.sender.id, "mode": "async"})
        self.connection.sudo().signing_private_key = False
        with self.assertRaisesRegex(UserError, "no signing key"):
            check.action_run_check()
        self.connection.action_generate_signing_key()
        self.connection.active = False
        with self.assertRaisesRegex(UserError, "archived"):
            check.action_run_check()
        self.assertEqual(check.state, "ready")
        self.assertFalse(check.transaction_id)
        orphan = self.make_check(data_source_id=False)
        with self.assertRaisesRegex(UserError, "No active IBR connection"):
            orphan.action_run_check()
        with self.assertRaises(ValidationError):
            self.make_check(value="   ")
        with self.assertRaises(ValidationError):
            self.make_check(identifier_type=" ")

    def test_check_without_connection_uses_the_default_one(self):
        check = self.make_check(data_source_id=False)
        with LoopbackServer({"/registry/search": ack()}) as server:
            self.point(server.url)
            self.send(check)
        self.assertEqual(len(server.requests), 1)
        self.assertEqual((check.state, check.data_source_id), ("checking", self.connection))

    def test_no_silent_rerun_retry_and_reset(self):
        check = self.make_check()
        self.run_with(check, mode="sync")
        self.assertEqual(check.state, "completed")
        with self.assertRaises(UserError):
            check.action_run_check()
        failed = self.make_check(self.partner2)
        self.run_with(failed, mode="sync", failures=["http-500"])
        with self.assertRaises(UserError):
            failed.action_run_check()
        with self.assertRaises(UserError):
            self.make_check().action_retry()  # nothing to retry yet
        before = check.read(["state", "result", "reference_id", "transaction_id"])
        with IbrSimulator() as sim:
            self.use(sim, "sync")
            action = (check | failed).action_retry()
            self.env["spp.dci.ibr.transaction"]._cron_send_queued()
        self.assertEqual(sim.stats["requests"], 1)
        # the attempts before are kept as they were: history, never erasure
        self.assertEqual(check.read(["state", "result", "reference_id", "transaction_id"]), before)
        self.assertEqual((failed.state, failed.failure_kind), ("failed", "ibr_error"))
        self.assertFalse(check.is_latest or failed.is_latest)
        again = self.checks.search(action["domain"])
        self.assertEqual(again.previous_check_id, check | failed)
        self.assertEqual(set(again.mapped("state")), {"completed"})
        self.assertEqual(set(again.mapped("attempt")), {2})
        self.assertTrue(all(again.mapped("is_latest")))
        self.assertNotEqual(again.sorted("id")[0].reference_id, before[0]["reference_id"])
        # Reset to Ready on a waiting attempt: closed as replaced, a new one is ready
        waiting = self.make_check()
        self.mark_sent(waiting, transaction_id="txn-reset")
        old_reference = waiting.reference_id
        fresh = self.checks.browse(waiting.action_reset_to_draft()["res_id"])
        self.assertEqual((waiting.state, waiting.failure_kind), ("failed", "replaced"))
        self.assertEqual((fresh.state, fresh.previous_check_id), ("ready", waiting))
        self.assertEqual(fresh.sudo().identifier_value, waiting.sudo().identifier_value)
        # a late answer to the replaced attempt is kept as unmatched, applied to neither
        late = SearchResponse.model_validate(
            {
                "transaction_id": "t",
                "correlation_id": "c",
                "search_response": [self.item(old_reference)],
            }
        )
        self.assertTrue(self.checks._apply_search_response(late, self.sender))
        self.assertEqual((waiting.state, fresh.state), ("failed", "ready"))
        # a queued check goes back to ready: nothing was sent, nothing to keep
        queued = self.make_check()
        queued.action_run_check()
        attempt = queued.attempt
        self.assertIs(queued.action_reset_to_draft(), True)
        self.assertEqual((queued.state, queued.attempt, queued.is_latest), ("ready", attempt, True))

    def test_enrolled_precheck_completes_only_what_the_search_would_say(self):
        self.connection.use_enrolled_precheck = True
        enrolled = self.make_check(value="1000000001")
        ended = self.make_check(value="1000000002")  # an ended enrolment: a possible match
        unknown = self.make_check(value="1000000003")
        sim = self.run_with(enrolled | ended | unknown, mode="sync")
        self.assertEqual(
            [(c.result, c.result_source) for c in (enrolled, ended, unknown)],
            [
                ("confirmed_match", "precheck"),  # "yes": what the full search would say
                ("possible_match", "search"),  # "no" decides nothing: searched
                ("no_match", "search"),
            ],
        )
        self.assertEqual(sim.stats["requests"], 4)  # three pre-checks, one search for two
        self.assertEqual(ended.record_count, 1)

    # -- scheduled jobs -----------------------------------------------------------

    def test_stale_checks_fail_or_are_polled(self):
        waiting = self.make_check()
        with IbrSimulator(failures=["drop"]) as sim:
            self.use(sim)
            self.send(waiting)
            polled = self.make_check(value="1000000002")
            self.send(polled)
            (waiting | polled).write({"sent_at": "2000-01-01 00:00:00"})
            # the stale clock starts when the IBR acknowledged the message
            (waiting | polled).ibr_transaction_id.write({"sent_at": "2000-01-01 00:00:00"})
            self.connection.poll_status_before_failing = True
            self.env.ref("spp_dci_client_ibr.ir_cron_fail_stale_checks").ir_actions_server_id.run()
        # the IBR's transaction status answered both: applied, not failed
        self.assertEqual((waiting.state, waiting.result), ("completed", "confirmed_match"))
        self.assertEqual((polled.state, polled.result), ("completed", "possible_match"))
        # polling an IBR that does not know the transaction, or no polling: failed
        unknown = self.make_check()
        self.mark_sent(unknown, transaction_id="txn-unknown")
        unknown.sent_at = "2000-01-01 00:00:00"
        with IbrSimulator() as sim:
            self.use(sim)
            self.checks._cron_watch_answers()
        self.assert_failed(unknown, "No answer from the IBR within 60 minutes")
        lost = self.make_check()
        self.mark_sent(lost, transaction_id="txn-lost")
        lost.sent_at = "2000-01-01 00:00:00"
        fresh = self.make_check()
        self.mark_sent(fresh, transaction_id="txn-fresh")
        self.connection.poll_status_before_failing = False
        self.checks._cron_watch_answers()
        self.assert_failed(lost, "No answer from the IBR")
        self.assertEqual(fresh.state, "checking")
        # archived connections' checks are not left waiting either
        self.connection.stale_after_minutes = 5
        fresh.sent_at = "2000-01-01 00:00:00"
        self.connection.active = False
        self.checks._cron_watch_answers()
        self.assert_failed(fresh, "5 minutes")

    def test_queued_checks_are_sent_by_the_batch_job(self):
        self.connection.batch_size = 2
        checks = self.make_check() | self.make_check() | self.make_check()
        cron = self.env.ref("spp_dci_client_ibr.ir_cron_send_queued_checks")
        with patch.object(type(cron), "_trigger") as trigger:
            checks.action_run_check()
        self.assertTrue(trigger.called)
        self.assertEqual(checks.mapped("state"), ["queued"] * 3)
        with IbrSimulator() as sim:
            self.use(sim, "sync")
            cron.ir_actions_server_id.run()  # what the scheduler executes
        self.assertEqual(sim.stats["requests"], 2)  # two signed messages: 2 + 1
        self.assertEqual(checks.mapped("state"), ["completed"] * 3)
        self.assertEqual(len(checks.ibr_transaction_id), 2)
        self.assertEqual(set(checks.ibr_transaction_id.mapped("state")), {"sent"})

    def test_batch_job_fails_unsendable_checks_instead_of_spinning(self):
        check = self.make_check()
        with patch.object(type(self.env["ir.cron"]), "_trigger"):
            check.action_run_check()
        self.connection.sudo().signing_private_key = False
        self.env["spp.dci.ibr.transaction"]._cron_send_queued()
        self.assert_failed(check, "no signing key")
        self.assertFalse(check.ibr_transaction_id)

    # -- access rights and personal data ---------------------------------------------

    def test_access_rights_per_group(self):
        check = self.make_check()
        vals = {
            "partner_id": self.partner.id,
            "identifier_type": "NID",
            "identifier_value": "9",
            "data_source_id": self.connection.id,
        }
        as_viewer = self.checks.with_user(self.viewer)
        self.assertEqual(as_viewer.search([("id", "=", check.id)]), check)
        self.assertEqual(check.with_user(self.viewer).state, "ready")
        with self.assertRaises(AccessError):
            as_viewer.create(vals)
        with self.assertRaises(AccessError):
            check.with_user(self.viewer).write({"notes": "x"})
        with self.assertRaises(AccessError):
            check.with_user(self.viewer).unlink()
        officer_check = self.checks.with_user(self.officer).create(vals)
        officer_check.write({"notes": "seen"})
        with self.assertRaises(AccessError):
            officer_check.unlink()
        check.with_user(self.manager).unlink()
        self.assertFalse(check.exists())

    def test_officer_runs_checks_end_to_end(self):
        mine = self.checks.with_user(self.officer).create(
            {"partner_id": self.partner.id, "identifier_type": "NID", "identifier_value": "1"}
        )
        # the IBR also answers a reference we never sent: kept as an orphan
        answer = self.signed_answer(lambda refs: [self.item(refs[0]), self.item("not-ours")])
        with LoopbackServer({"/registry/sync/search": answer}) as server:
            self.point(server.url, "sync")
            self.send(mine)
        self.assertEqual((mine.state, mine.result), ("completed", "no_match"))
        orphan = self.env["spp.dci.callback.orphan"].search([("reference_id", "=", "not-ours")])
        self.assertEqual(len(orphan), 1)
        fresh = self.checks.browse(mine.action_reset_to_draft()["res_id"])
        fresh.action_run_check()
        self.assertEqual((mine.state, fresh.state), ("completed", "queued"))

    def test_personal_data_is_gated(self):
        check = self.make_check()
        for name in ("identifier_value", "matched_programs", "raw_response", "match_ids"):
            with self.assertRaises(AccessError):
                check.with_user(self.viewer).read([name])
        with self.assertRaises(AccessError):  # what the IBR said of a person
            self.env["spp.dci.duplication.match"].with_user(self.viewer).search([])
        self.assertEqual(check.with_user(self.viewer).read(["result"])[0]["result"], False)
        self.assertEqual(check.with_user(self.officer).identifier_value, "1000000001")
        for user, visible in ((self.viewer, False), (self.officer, True), (self.manager, True)):
            views = self.checks.with_user(user).get_views([(False, "form"), (False, "list")])
            for view_type in ("form", "list"):
                arch = etree.fromstring(views["views"][view_type]["arch"])
                fields = set(arch.xpath("//field/@name"))
                names = ("identifier_value", "matched_programs", "raw_response_pretty")
                names += ("match_ids",)
                if view_type == "list":
                    names = ("identifier_value",)
                for name in names:
                    self.assertEqual(name in fields, visible, (user.login, view_type, name))

    # -- mail tracking and display -------------------------------------------------

    def test_audit_trail_is_the_check_itself(self):
        mine = self.checks.with_user(self.officer).create(
            {
                "partner_id": self.partner.id,
                "identifier_type": "NID",
                "identifier_value": "1000000001",
                "data_source_id": self.connection.id,
            }
        )
        with IbrSimulator() as sim:
            self.use(sim, "sync")
            self.send(mine)
        # who asked, when, under which ids, what the IBR answered, the result
        self.assertEqual((mine.state, mine.result), ("completed", "confirmed_match"))
        self.assertEqual(mine.create_uid, self.officer)
        self.assertTrue(mine.create_date <= mine.sent_at <= mine.completed_at)
        self.assertEqual(mine.ibr_transaction_id.transaction_id, mine.transaction_id)
        self.assertEqual(mine.ibr_transaction_id.state, "sent")
        [answer] = json.loads(mine.sudo().raw_response)
        self.assertEqual(answer["reference_id"], mine.reference_id)
        self.assertEqual(answer["data"]["reg_records"][0]["member"]["member_identifier"][:2], "M-")
        # no chatter row and no follower per check: they would double the cost of an answer
        self.assertFalse(mine.message_ids)
        self.assertFalse(mine.message_follower_ids)
        self.assertEqual(mine.display_name, "Registrant One · NID (Completed)")

    def test_a_large_selection_is_queued_by_the_send_job(self):
        partners = self.partner | self.partner2 | self.env["res.partner"].create({"name": "Three"})
        values = ["1000000001", "1000000002", "1000000003"]
        self.env["spp.dci.registrant.identifier"].create(
            [
                {"partner_id": p.id, "id_type": "NID", "value": v}
                for p, v in zip(partners, values, strict=True)
            ]
        )
        # what the list action hands the wizard for a large selection: ids, not tags
        partner_module = "odoo.addons.spp_dci_client_ibr.models.res_partner"
        with patch(f"{partner_module}.LARGE", 2):
            context = partners.with_user(self.officer).action_open_ibr_check_wizard()["context"]
        self.assertEqual(set(context), {"default_selection_ids_json"})
        wizard = (
            self.env["spp.dci.check.wizard"]
            .with_user(self.officer)
            .with_context(**context)
            .create({"identifier_type": "NID"})
        )
        self.assertFalse(wizard.partner_ids)
        self.assertEqual(wizard.partner_count, 3)
        self.assertIn("NID: 3 registrants", wizard.available_identifiers)
        request_module = "odoo.addons.spp_dci_client_ibr.models.check_request"
        with (
            patch(f"{request_module}.EXPAND_NOW", 1),
            patch(f"{request_module}.EXPAND_CHUNK", 2),
            IbrSimulator() as sim,
        ):
            self.use(sim, "sync")
            started = time.perf_counter()
            action = wizard.action_confirm()
            self.assertLess(time.perf_counter() - started, 1)
            batch = action["params"]["next"]["domain"]
            self.assertFalse(self.checks.search(batch), "the click creates no check")
            self.assertIn("being queued", action["params"]["message"])
            self.env[
                "spp.dci.ibr.transaction"
            ]._cron_send_queued()  # expands 2, sends them, expands 1, sends it
        checks = self.checks.search(batch)
        self.assertEqual(checks.partner_id, partners)
        self.assertEqual(
            sorted(checks.mapped("result")), ["confirmed_match", "no_match", "possible_match"]
        )
        self.assertEqual(checks.create_uid, self.officer, "the checks are the officer's")
        self.assertEqual(sim.stats["requests"], 2)
        request = checks.request_id
        self.assertEqual(
            (request.state, request.check_count, request.skipped_count), ("done", 3, 0)
        )

    def test_identifier_lines_feed_a_multi_registrant_check(self):
        lines = self.env["spp.dci.registrant.identifier"]
        lines.create(
            [
                {"partner_id": self.partner.id, "id_type": "NID", "value": "1000000001"},
                {"partner_id": self.partner2.id, "id_type": "NID", "value": "1000000003"},
                {
                    "partner_id": self.partner2.id,
                    "id_type": "NID",
                    "value": "9999",
                    "status": "invalid",
                },
            ]
        )
        self.assertEqual(self.partner2._get_ibr_identifiers(), [("NID", "1000000003")])
        with IbrSimulator() as sim:
            self.use(sim, "sync")
            created = self.check_in_ibr(self.partner | self.partner2)
            self.env["spp.dci.ibr.transaction"]._cron_send_queued()
        self.assertEqual(
            sorted(created.mapped(lambda c: (c.partner_id.name, c.identifier_value, c.result))),
            [
                ("Registrant One", "1000000001", "confirmed_match"),
                ("Registrant Two", "1000000003", "no_match"),
            ],
        )
        with (  # the same identifier twice
            self.assertRaises(psycopg2.errors.UniqueViolation),
            mute_logger("odoo.sql_db"),
            self.env.cr.savepoint(),
        ):
            lines.create({"partner_id": self.partner.id, "id_type": "NID", "value": "1000000001"})
            lines.flush_model()

    # -- the registrant side -----------------------------------------------------------

    def test_registrant_side(self):
        older, newer = self.make_check(value="1000000003"), self.make_check()
        self.run_with(older, mode="sync")
        self.run_with(newer, mode="sync")
        self.make_check()  # ready: counted, no result yet
        self.assertEqual(self.partner.dci_check_count, 3)
        self.assertEqual(self.partner.dci_last_result, "confirmed_match")
        self.assertEqual(self.partner2.dci_check_count, 0)
        self.assertFalse(self.partner2.dci_last_result)
        action = self.partner.action_view_dci_checks()
        self.assertEqual(action["res_model"], "spp.dci.duplication.check")
        self.assertEqual(
            self.env[action["res_model"]].search(action["domain"]), self.partner.dci_check_ids
        )
        self.assertEqual(action["context"]["default_partner_id"], self.partner.id)
        self.assertEqual(self.partner.with_user(self.viewer).dci_check_count, 3)
        # registrants stay readable by users without any IBR group
        plain = new_test_user(self.env, login="plain_user", groups="base.group_user")
        self.assertTrue(self.partner.with_user(plain).read(["name", "email"]))

    def test_list_action_opens_the_wizard_for_the_selection(self):
        partners = self.partner | self.partner2
        server_action = self.env.ref("spp_dci_client_ibr.action_partner_check_in_ibr")
        self.assertIn(self.env.ref("spp_dci_client_ibr.group_ibr_officer"), server_action.group_ids)
        action = server_action.with_context(
            active_model="res.partner", active_ids=partners.ids, active_id=partners[0].id
        ).run()
        self.assertEqual(action["res_model"], "spp.dci.check.wizard")
        self.assertEqual(action["context"]["default_partner_ids"], partners.ids)

    def patch_identifiers(self, identifiers):
        """Override the ``_get_ibr_identifiers`` hook with ``{partner id: [(type, value)]}``."""

        def hook(partner):
            partner.ensure_one()
            return identifiers.get(partner.id, [])

        return patch.object(type(self.env["res.partner"]), "_get_ibr_identifiers", hook)

    def test_wizard_prefills_from_the_hook(self):
        wizards = self.env["spp.dci.check.wizard"]
        with self.patch_identifiers({self.partner.id: [("UIN", "U-7"), ("NID", "1000000001")]}):
            wizard = wizards.new({"partner_ids": [(6, 0, self.partner.ids)]})
            wizard._onchange_prefill_value()
            self.assertEqual((wizard.identifier_type, wizard.identifier_value), ("UIN", "U-7"))
            wizard.identifier_type = "NID"
            wizard._onchange_prefill_value()
            self.assertEqual(wizard.identifier_value, "1000000001")
            self.assertEqual(wizard.available_identifiers, "NID: 1 registrant\nUIN: 1 registrant")

    def test_wizard_for_several_registrants(self):
        third = self.env["res.partner"].create({"name": "Registrant Three"})
        identifiers = {
            self.partner.id: [("NID", "1000000001")],
            self.partner2.id: [("NID", "1000000003"), ("UIN", "U-1")],
        }
        wizards = self.env["spp.dci.check.wizard"].with_user(self.officer)
        with self.patch_identifiers(identifiers), IbrSimulator() as sim:
            self.use(sim, "sync")
            many = wizards.create(
                {
                    "partner_ids": [(6, 0, (self.partner | self.partner2 | third).ids)],
                    "identifier_type": "NID",
                }
            )
            self.assertEqual(many.partner_count, 3)
            self.assertIn("NID: 2 registrants", many.available_identifiers)
            action = many.action_confirm()
            self.env["spp.dci.ibr.transaction"]._cron_send_queued()
            created = self.checks.search(action["params"]["next"]["domain"])
            self.assertEqual(created.partner_id, self.partner | self.partner2)
            self.assertEqual(sim.stats["requests"], 1)  # one batch
            self.assertEqual(sorted(created.mapped("result")), ["confirmed_match", "no_match"])
            self.assertIn(
                "2 checks queued, 1 registrant skipped.\n1 × no identifier of type NID",
                action["params"]["message"],
            )
            nobody = wizards.create(
                {"partner_ids": [(6, 0, self.partner.ids)], "identifier_type": "BRN"}
            )
            with self.assertRaisesRegex(UserError, "BRN"):
                nobody.action_confirm()
        # more registrants than one batch holds: queued for the batch job
        self.connection.batch_size = 1
        with (
            self.patch_identifiers(identifiers),
            patch.object(type(self.env["ir.cron"]), "_trigger") as trigger,
        ):
            action = wizards.create(
                {
                    "partner_ids": [(6, 0, (self.partner | self.partner2).ids)],
                    "identifier_type": "NID",
                }
            ).action_confirm()
        queued = self.checks.search(action["params"]["next"]["domain"])
        self.assertTrue(trigger.called)
        self.assertEqual(queued.mapped("state"), ["queued", "queued"])
