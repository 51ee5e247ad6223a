"""The callback API on the real ``dci_api`` app, run as its dedicated user:
every acceptance rule, each bad input, and nothing written when refused."""

import json
from unittest.mock import patch

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import tagged
from odoo.tools import mute_logger

from ..dci import messages
from ..dci.keys import SigningKey
from ..dci.signatures import sign_envelope
from ..dci.testing import LoopbackServer
from .common import IBR_SENDER_ID, OUR_SENDER_ID, IbrCase, beneficiary

JSON = {"Content-Type": "application/json"}


@tagged("post_install", "-at_install")
class TestCallbackApi(IbrCase):
    def assert_refused(self, response, status, code):
        self.assertEqual(response.status_code, status, response.text)
        ack = response.json()["message"]
        self.assertEqual((ack["ack_status"], ack["error"]["code"]), ("ERR", code))

    def waiting_check(self, value="1000000001", **kwargs):
        check = self.make_check(value=value)
        return check, self.mark_sent(check, **kwargs)

    def assert_untouched(self, check, noted=True):
        """Nothing of the answer was applied, no replay row kept, the check still
        waits: an unverified message changes no check. One whose answer (naming
        its transaction) was refused only carries a note saying so."""
        self.assertEqual((check.result, check.pages_received), (False, 0))
        self.assertFalse(check.sudo().raw_response)
        self.assertFalse(self.env["spp.dci.replay.entry"].search([]))
        self.assertEqual((check.state, check.failure_kind), ("checking", False))
        self.assertEqual(bool(check.refusal_note), noted, check.refusal_note)

    # -- the happy path ----------------------------------------------------

    def test_signed_answer_completes_the_check(self):
        check, reference = self.waiting_check()
        body = self.on_search_body(
            [self.item(reference, [beneficiary("NID", "1000000001", "Cash Transfer")])]
        )
        response = self.post(body)
        self.assertEqual(response.status_code, 200, response.text)
        ack = response.json()["message"]
        self.assertEqual(ack["ack_status"], "ACK")
        self.assertTrue(ack["correlation_id"] and ack["timestamp"])
        self.assertEqual((check.state, check.result), ("completed", "confirmed_match"))
        self.assertEqual(check.matched_programs, "Cash Transfer")
        self.assertIn("Cash Transfer", check.raw_response)

    def test_rsa_sender(self):
        rsa = SigningKey.generate("ibr.rsa", "rs256")
        sender = self.env["spp.dci.ibr.sender"].create({"name": "RSA IBR", "sender_id": "ibr.rsa"})
        sender._store_keys([rsa.public])
        self.connection.ibr_sender_id = sender
        check, reference = self.waiting_check()
        body = self.on_search_body([self.item(reference)], key=rsa, sender_id="ibr.rsa")
        self.assertEqual(self.post(body).status_code, 200)
        self.assertEqual((check.state, check.result), ("completed", "no_match"))

    # -- refusals: nothing written ---------------------------------------------

    def test_bad_inputs_are_refused(self):
        check, reference = self.waiting_check()
        good = json.loads(self.on_search_body([self.item(reference)]))
        other_key = SigningKey.generate(IBR_SENDER_ID, key_id="k1")  # same kid, other key

        def mutated(**changes):
            header = dict(good["header"], **changes)
            return json.dumps(sign_envelope(header, good["message"], self.ibr_key)).encode()

        cases = [
            (b"not json", JSON, 400, "err.request.bad"),
            (json.dumps(good).encode(), {"Content-Type": "text/plain"}, 415, "err.request.bad"),
            (b"[" * 5000 + b"]" * 5000, JSON, 400, "err.request.bad"),
            (mutated(action="on-subscribe"), JSON, 400, "err.request.bad"),
            (mutated(receiver_id="someone.else"), JSON, 403, "err.receiver_id.invalid"),
            (mutated(version="2.0.0"), JSON, 400, "err.version.not_supported"),
            (mutated(sender_id="ibr.unknown"), JSON, 403, "err.sender_id.invalid"),
            (json.dumps(dict(good, signature="")).encode(), JSON, 401, "err.signature.missing"),
            (
                json.dumps(
                    {**good, "message": {**good["message"], "correlation_id": "x"}}
                ).encode(),
                JSON,
                401,
                "err.signature.invalid",
            ),
            (
                self.on_search_body([self.item(reference)], key=other_key),
                JSON,
                401,
                "err.signature.invalid",
            ),
            (  # a digit int() does not read, in the signature and in Content-Length
                json.dumps(
                    dict(good, signature=good["signature"].replace('created="', 'created="\u00b2'))
                ).encode(),
                JSON,
                401,
                "err.signature.invalid",
            ),
            (b"not json", {**JSON, "Content-Length": b"\xb2"}, 400, "err.request.bad"),
        ]
        for body, headers, status, code in cases:
            self.assert_refused(self.post(body, headers=headers), status, code)
        header = dict(good["header"])
        header.pop("message_id")
        self.assert_refused(
            self.post(json.dumps(dict(good, header=header)).encode()), 400, "err.request.bad"
        )
        self.assert_untouched(check)

    def test_expired_and_oversized(self):
        check, reference = self.waiting_check()
        head = messages.callback_header("on-search", IBR_SENDER_ID, status="succ")
        message = {
            "transaction_id": "t",
            "correlation_id": "c",
            "search_response": [self.item(reference)],
        }
        expired = sign_envelope(head, message, self.ibr_key, now=1_600_000_000)
        self.assert_refused(self.post(json.dumps(expired).encode()), 401, "err.signature.invalid")
        self.set_param("callback_max_bytes", "100")
        self.assert_refused(
            self.post(self.on_search_body([self.item(reference)])), 413, "err.request.bad"
        )
        self.assert_untouched(check, noted=False)  # "t" is no transaction of ours

    def test_unsigned_only_in_development_mode(self):
        check, reference = self.waiting_check()
        unsigned = json.loads(self.on_search_body([self.item(reference)]))
        unsigned["signature"] = "unsigned-stub"
        body = json.dumps(unsigned).encode()
        self.assert_refused(self.post(body), 401, "err.signature.missing")
        self.assert_untouched(check)
        self.set_param("allow_unsigned_callbacks", "True")
        with self.assertLogs("odoo.addons.spp_dci_client_ibr.dci.inbound", "WARNING"):
            self.assertEqual(self.post(body).status_code, 200)
        self.assertEqual(check.state, "completed")

    def test_bearer_token_second_factor(self):
        self.sender.sudo().callback_token = "s3cret"
        check, reference = self.waiting_check()
        body = self.on_search_body([self.item(reference)])
        self.assert_refused(self.post(body), 401, "err.request.unauthorized")
        wrong = dict(JSON, Authorization="Bearer nope")
        self.assert_refused(self.post(body, headers=wrong), 401, "err.request.unauthorized")
        self.assert_untouched(check, noted=False)  # without the token: not even a note
        right = dict(JSON, Authorization="Bearer s3cret")
        self.assertEqual(self.post(body, headers=right).status_code, 200)
        self.assertEqual(check.state, "completed")

    # -- correlation, pages, duplicates -----------------------------------

    def test_correlation_fallbacks(self):
        by_transaction, _ = self.waiting_check(transaction_id="txn-A", correlation_id="c-A")
        by_correlation, _ = self.waiting_check(transaction_id="txn-B", correlation_id="c-B")
        for check, txn, corr in (
            (by_transaction, "txn-A", "other"),
            (by_correlation, "unknown", "c-B"),
        ):
            body = self.on_search_body(
                [self.item("not-our-reference")], transaction_id=txn, correlation_id=corr
            )
            self.assertEqual(self.post(body).status_code, 200)
            self.assertEqual(check.state, "completed")

    def test_pages_accumulate_and_duplicates_apply_once(self):
        check, reference = self.waiting_check()
        page = {"page_size": 1, "total_count": 2}
        first = self.on_search_body(
            [
                self.item(
                    reference,
                    [beneficiary("NID", "1000000001", "A", status="Exited")],
                    pagination=dict(page, page_number=1),
                )
            ]
        )
        self.assertEqual(self.post(first).status_code, 200)
        self.assertEqual(self.post(first).status_code, 200)  # the same message again
        self.assertEqual((check.state, check.pages_received), ("checking", 1))
        self.assertFalse(check.result, "no result before the whole answer arrived")
        second = self.on_search_body(
            [
                self.item(
                    reference,
                    [beneficiary("NID", "1000000001", "B")],
                    pagination=dict(page, page_number=2),
                )
            ]
        )
        self.assertEqual(self.post(second).status_code, 200)
        self.assertEqual((check.state, check.pages_received), ("completed", 2))
        self.assertEqual((check.result, check.matched_programs), ("confirmed_match", "A\nB"))
        self.assertEqual(len(json.loads(check.raw_response)), 2)

    def test_replayed_message_id_with_other_content(self):
        check, reference = self.waiting_check()
        first = json.loads(self.on_search_body([self.item(reference, status="pdng")]))
        self.assertEqual(self.post(json.dumps(first).encode()).status_code, 200)
        forged = sign_envelope(
            first["header"], dict(first["message"], correlation_id="z"), self.ibr_key
        )
        self.assert_refused(self.post(json.dumps(forged).encode()), 409, "err.request.bad")
        self.assertEqual(check.state, "checking")  # pdng leaves it waiting

    def test_rejected_item_fails_the_check(self):
        check, reference = self.waiting_check()
        body = self.on_search_body(
            [
                self.item(
                    reference,
                    status="rjct",
                    status_reason_code="rjct.search.too_many_records_found",
                    status_reason_message="too broad",
                )
            ]
        )
        self.assertEqual(self.post(body).status_code, 200)
        self.assertEqual(check.state, "failed")
        self.assertIn("rjct.search.too_many_records_found", check.error_message)
        self.assertFalse(check.result)

    def test_wrong_sender_and_unknown_items_become_orphans(self):
        check, reference = self.waiting_check()
        intruder = SigningKey.generate("ibr.intruder")
        other = self.env["spp.dci.ibr.sender"].create(
            {"name": "Other", "sender_id": "ibr.intruder"}
        )
        other._store_keys([intruder.public])
        body = self.on_search_body(
            [self.item(reference), self.item("unknown-ref")],
            key=intruder,
            sender_id="ibr.intruder",
            transaction_id="nope",
            correlation_id="nope",
        )
        self.assertEqual(self.post(body).status_code, 200)
        self.assertEqual(check.state, "checking")
        orphans = self.env["spp.dci.callback.orphan"].search([("sender_id", "=", "ibr.intruder")])
        self.assertEqual(sorted(orphans.mapped("reference_id")), sorted([reference, "unknown-ref"]))
        # an answer that overtook its check is applied once the check waits for it,
        # by the job the callback scheduled to run soon
        late = self.make_check()
        body = self.on_search_body(
            [self.item("late-ref")], transaction_id="late", correlation_id="late"
        )
        reconcile_job = self.env.ref("spp_dci_client_ibr.ir_cron_fail_stale_checks")
        triggers = self.env["ir.cron.trigger"].search([("cron_id", "=", reconcile_job.id)])
        self.post(body)
        soon = self.env["ir.cron.trigger"].search([("cron_id", "=", reconcile_job.id)]) - triggers
        self.assertTrue(soon, "an unmatched answer should schedule the reconcile job")
        self.assertLessEqual(soon[0].call_at, fields.Datetime.now())
        orphan = self.env["spp.dci.callback.orphan"].search([("reference_id", "=", "late-ref")])
        late.write({"state": "checking", "reference_id": "late-ref"})
        self.env["spp.dci.duplication.check"]._cron_watch_answers()
        self.assertEqual((late.state, orphan.state), ("completed", "applied"))

    def test_reconcile_reads_only_orphans_a_waiting_check_may_be_for(self):
        orphan_model = self.env["spp.dci.callback.orphan"]
        early = self.make_check()
        stranger = self.on_search_body(
            [self.item("never-ours")], transaction_id="t-gone", correlation_id="c-gone"
        )
        answer = self.on_search_body(
            [self.item("early-ref")], transaction_id="t-early", correlation_id="c-early"
        )
        for body in (stranger, answer):
            self.assertEqual(self.post(body).status_code, 200)
        logged = orphan_model.search([("reference_id", "in", ["never-ours", "early-ref"])])
        self.assertEqual(len(logged), 2)
        # the search is committed only now: its answer was early
        early.write({"state": "checking", "reference_id": "early-ref", "transaction_id": "t-early"})
        reapplied = []
        reapply = type(orphan_model).action_reapply

        def recording_reapply(records):
            reapplied.extend(records.mapped("reference_id"))
            return reapply(records)

        with patch.object(type(orphan_model), "action_reapply", recording_reapply):
            orphan_model._reconcile()
        self.assertEqual(reapplied, ["early-ref"])  # the stranger is not even parsed
        self.assertEqual(early.state, "completed")
        self.assertEqual(
            sorted(logged.mapped(lambda o: (o.reference_id, o.state))),
            [("early-ref", "applied"), ("never-ours", "open")],
        )

    def test_database_error_is_not_acknowledged(self):
        check, reference = self.waiting_check()
        body = self.on_search_body([self.item(reference)])
        model = type(self.env["spp.dci.duplication.check"])
        with (
            patch.object(model, "_process_ibr_search_result", side_effect=RuntimeError("db")),
            mute_logger("odoo.addons.spp_dci_client_ibr.models.callback_service"),
        ):
            self.assert_refused(self.post(body), 503, "err.service.unavailable")
        self.assert_untouched(check, noted=False)  # a failure to apply is sent again
        self.assertEqual(self.post(body).status_code, 200)  # the IBR's retry is applied
        self.assertEqual(check.state, "completed")

    def test_key_rotation_mid_stream(self):
        new_key = SigningKey.generate(IBR_SENDER_ID, key_id="k2")
        first, ref1 = self.waiting_check()
        self.assertEqual(self.post(self.on_search_body([self.item(ref1)])).status_code, 200)
        jwks = json.dumps({"keys": [new_key.public.to_jwk()]}).encode()
        with LoopbackServer({"/jwks.json": (200, {}, jwks)}) as server:
            self.sender.write({"jwks_url": server.url + "/jwks.json", "last_key_fetch": False})
            second, ref2 = self.waiting_check()
            body = self.on_search_body([self.item(ref2)], key=new_key)
            self.assertEqual(self.post(body).status_code, 200)
            self.assertEqual(len(server.requests), 1)  # one refresh for the unknown kid
        self.assertEqual(second.state, "completed")
        third, ref3 = self.waiting_check()
        old = self.on_search_body([self.item(ref3)])  # the retired key no longer verifies
        self.assert_refused(self.post(old), 401, "err.signature.invalid")
        self.assertEqual((third.state, third.failure_kind), ("checking", False))
        self.assertIn("err.signature.invalid", third.refusal_note)

    # -- on-subscribe, JWKS, the runner's rights -----------------------------

    def test_on_subscribe_is_recorded(self):
        header = messages.request_header(
            "on-subscribe", IBR_SENDER_ID, total_count=1, receiver_id=OUR_SENDER_ID
        )
        message = {
            "transaction_id": "sub-1",
            "correlation_id": "c-1",
            "subscribe_response": [
                {
                    "reference_id": "r-1",
                    "timestamp": messages.now_iso(),
                    "status": "succ",
                    "subscriptions": [
                        {
                            "code": "SUB-42",
                            "status": "subscribe",
                            "timestamp": "2027-01-01T00:00:00Z",
                        }
                    ],
                }
            ],
        }
        body = json.dumps(sign_envelope(header, message, self.ibr_key)).encode()
        self.assertEqual(self.post(body, "/ibr/on-subscribe").status_code, 200)
        record = self.env["spp.dci.ibr.subscription"].search([("code", "=", "SUB-42")])
        self.assertEqual(
            (record.status, record.subscription_status, record.sender_id),
            ("succ", "subscribe", IBR_SENDER_ID),
        )
        self.assert_refused(
            self.post(body.replace(b"SUB-42", b"SUB-43"), "/ibr/on-subscribe"),
            401,
            "err.signature.invalid",
        )

    def test_jwks_publishes_public_keys_only(self):
        with self._create_test_client(app=self.endpoint._get_app(), user=self.runner) as client:
            keys = client.get("/ibr/jwks.json").json()["keys"]
        ours = [k for k in keys if k["kid"] == self.connection.signing_kid]
        self.assertEqual(len(ours), 1)
        self.assertFalse({"d", "p", "q"} & ours[0].keys())

    def test_runner_has_no_blanket_rights(self):
        connection = self.connection.with_user(self.runner)
        with self.assertRaises(AccessError):
            connection.signing_private_key  # noqa: B018 - the read is the test
        check, _ = self.waiting_check()
        with self.assertRaises(AccessError):
            check.with_user(self.runner).unlink()
        with self.assertRaises(AccessError):
            self.env["res.partner"].with_user(self.runner).create({"name": "x"})
