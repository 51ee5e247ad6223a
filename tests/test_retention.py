"""Retention: what a connection's windows keep and what they take away, read
back with SQL; the job works in chunks, stops at its budget and resumes."""

import json
from datetime import timedelta
from unittest.mock import patch

from odoo import fields
from odoo.tests import tagged

from ..models import retention
from .common import IbrCase

PERSONAL = ("person_name", "sex", "birth_date", "identifiers", "member_identifier")


@tagged("post_install", "-at_install")
class TestRetention(IbrCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.connection.write(
            {"keep_answers_days": 30, "keep_attempts_days": 60, "keep_logs_days": 10}
        )
        cls.checks = cls.env["spp.dci.duplication.check"].sudo()
        cls.job = cls.env["spp.dci.retention"]

    def finished(self, partner, days_ago, state="completed"):
        check = self.make_check(partner)
        check.sudo().write(
            {
                "state": state,
                "result": "confirmed_match" if state == "completed" else False,
                "matched_programs": "Grant",
                "raw_response": json.dumps([{"reg_records": ["personal"]}]),
            }
        )
        self.env["spp.dci.duplication.match"].sudo().create(
            {
                "check_id": check.id,
                "programme_name": "Grant",
                "enrolment_status": "active",
                **{name: f"{name} value" for name in PERSONAL},
            }
        )
        self.age("spp_dci_duplication_check", check, days_ago, "check_date")
        return check

    def age(self, table, records, days_ago, column="create_date"):
        self.env.flush_all()
        self.env.cr.execute(
            f"UPDATE {table} SET {column} = %s WHERE id = ANY(%s)",  # noqa: S608 - test names
            (fields.Datetime.now() - timedelta(days=days_ago), records.ids),
        )
        self.env.invalidate_all()

    def row(self, table, record_id, columns):
        self.env.cr.execute(
            f"SELECT {', '.join(columns)} FROM {table} WHERE id = %s",  # noqa: S608
            (record_id,),
        )
        return self.env.cr.fetchone()

    def run_job(self):
        while self.job._retention_step():
            pass

    def test_answers_attempts_and_logs_per_window(self):
        superseded_old = self.finished(self.partner, 90)
        superseded_recent = self.finished(self.partner2, 40)
        latest_old = self.finished(self.partner, 70)  # supersedes superseded_old
        recent = self.finished(self.partner2, 5)  # supersedes superseded_recent
        waiting = self.finished(self.env["res.partner"].create({"name": "W"}), 50, "checking")
        self.assertFalse(superseded_old.is_latest or superseded_recent.is_latest)
        logs, batches = self.make_logs()
        self.run_job()

        self.assertFalse(superseded_old.exists(), "superseded, older than 60 days")
        self.assertTrue(superseded_recent.exists())
        # past 30 days a finished check keeps its decision, not the personal data
        for check, minimised in (
            (latest_old, True),
            (superseded_recent, True),
            (recent, False),
            (waiting, False),
        ):
            raw, result, programmes = self.row(
                "spp_dci_duplication_check",
                check.id,
                ("raw_response", "result", "matched_programs"),
            )
            self.assertEqual(raw is None, minimised, check)
            self.assertEqual(programmes, "Grant")
            self.assertEqual(result, check.result or None)
            line = self.row(
                "spp_dci_duplication_match",
                check.match_ids.id,
                (*PERSONAL, "programme_name", "enrolment_status"),
            )
            expected = [None] * 5 if minimised else [f"{n} value" for n in PERSONAL]
            self.assertEqual(list(line), [*expected, "Grant", "active"])
        # logs past 10 days are gone, recent ones stay, a waiting check keeps its message
        for name, (old, new) in logs.items():
            self.assertFalse(old.exists(), name)
            self.assertTrue(new.exists(), name)
        self.assertTrue(waiting.ibr_transaction_id.exists())
        # an old batch's registrant list is gone, not the batch; a recent one keeps it
        lists = [
            self.row("spp_dci_check_request", b.id, ("partner_ids_json", "values_json"))
            for b in batches
        ]
        self.assertEqual(lists, [("[]", None), (json.dumps([self.partner.id]), "{}")])

    def make_logs(self):
        env = self.env
        logs = {}
        for name, model, vals, column in (
            ("orphan", "spp.dci.callback.orphan", {"reason": "x"}, "create_date"),
            ("notification", "spp.dci.ibr.notification", {"state": "unmatched"}, "create_date"),
            (
                "enrolment report",
                "spp.dci.ibr.enrolment.update",
                {"connection_id": self.connection.id, "state": "sent"},
                "create_date",
            ),
            (
                "delivery log",
                "spp.dci.delivery.log",
                {"route": "on-search", "code": "e"},
                "last_at",
            ),
        ):
            old, new = env[model].sudo().create([dict(vals), dict(vals)])
            self.age(old._table, old, 20, column)
            logs[name] = (old, new)
        txns = env["spp.dci.ibr.transaction"].sudo()
        old, new = txns.create(
            [
                {"transaction_id": t, "connection_id": self.connection.id, "state": "sent"}
                for t in ("t-old", "t-new")
            ]
        )
        self.age(old._table, old, 20)
        logs["outbox"] = (old, new)
        waiting = self.checks.search([("state", "=", "checking")])
        needed = txns.create(
            {"transaction_id": "t-needed", "connection_id": self.connection.id, "state": "sent"}
        )
        waiting.write({"ibr_transaction_id": needed.id})
        self.age(needed._table, needed, 20)
        requests = env["spp.dci.check.request"].sudo()
        batches = requests.create(
            [
                {
                    "identifier_type": "NID",
                    "connection_id": self.connection.id,
                    "partner_ids_json": json.dumps([self.partner.id]),
                    "values_json": "{}",
                    "state": "done",
                }
                for _n in range(2)
            ]
        )
        self.age(requests._table, batches[0], 20)
        return logs, batches

    def test_a_decided_attempt_is_kept_for_the_audit(self):
        decided = self.finished(self.partner, 90)
        decided.sudo().write({"result": "possible_match", "completed_at": decided.check_date})
        decision = (
            self.env["spp.dci.clearance.decision"]
            .with_user(self.officer)
            ._decide(decided.with_user(self.officer), "review_not_same", "other birth date")
        )
        later = self.finished(self.partner, 70)  # supersedes the decided check
        self.assertFalse(decided.is_latest)
        self.run_job()
        self.assertTrue(decided.exists(), "a superseded attempt with a decision stays")
        self.assertTrue(decision.exists())
        self.assertTrue(later.exists())

    def test_zero_keeps_for_ever(self):
        self.connection.write(
            {"keep_answers_days": 0, "keep_attempts_days": 0, "keep_logs_days": 0}
        )
        old = self.finished(self.partner, 400)
        newer = self.finished(self.partner, 390)
        logs, batches = self.make_logs()
        self.run_job()
        self.assertTrue(old.exists() and newer.exists())
        self.assertNotEqual(batches[0].partner_ids_json, "[]")
        self.assertTrue(self.row("spp_dci_duplication_check", newer.id, ("raw_response",))[0])
        for name, (old_log, _new) in logs.items():
            self.assertTrue(old_log.exists(), name)

    def test_a_run_stops_at_its_budget_and_the_next_resumes(self):
        checks = self.checks
        for n in range(5):
            checks |= self.finished(self.env["res.partner"].create({"name": f"P{n}"}), 40)
        cron = type(self.env["ir.cron"])
        job = self.job.with_context(ir_cron_progress_id=1)
        with (
            patch.object(retention, "CHUNK", 2),
            patch.object(cron, "_commit_progress", side_effect=[5.0, 0.0]) as progress,
        ):
            job._cron_apply_retention()  # two chunks of 2, then its time is up
        self.assertEqual([c.args for c in progress.call_args_list], [(2,), (2,)])

        def minimised():
            self.env.invalidate_all()
            return sum(
                self.row("spp_dci_duplication_check", c.id, ("raw_response",))[0] is None
                for c in checks
            )

        self.assertEqual(minimised(), 4)
        with (
            patch.object(retention, "CHUNK", 2),
            patch.object(cron, "_commit_progress", return_value=5.0) as progress,
        ):
            job._cron_apply_retention()  # the next run: the last one, then nothing left
        self.assertEqual(minimised(), 5)
        self.assertEqual(progress.call_args_list[-1].kwargs, {"remaining": 0})
