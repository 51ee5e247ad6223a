"""The send job against the built-in IBR simulator, in real transactions.

The simulator answers at once, over real HTTP, through Odoo's threaded
server: its callbacks race our own commits. The job runs as the scheduler
runs it (its own cursor, a commit per batch). Everything committed here is
removed in the class cleanup.
"""

import json
import logging
import threading
import time
from unittest.mock import patch

import psycopg2

from odoo import api
from odoo.tests import tagged
from odoo.tools import mute_logger

from ..dci.client import IbrClient
from .common import SimulatorCommittedCase, recorded_logs

EXPECTED = {
    "1000000001": "confirmed_match",
    "1000000002": "possible_match",
    "1000000003": "no_match",
}
# what the simulator's sample data says about those people: never in a log line
PERSONAL = ("1000000001", "1000000002", "Amina", "Diallo", "Jonas", "1990-05-02")
BATCH = 4


class _Killed(BaseException):
    """The process dies: not an ``Exception``, so no handler on the way swallows it."""


@tagged("post_install", "-at_install")
class TestOutbox(SimulatorCommittedCase):
    label = "outbox test"
    our_sender_id = "spmis.outbox"
    officer_login = "outbox_officer"
    connection_vals = {"batch_size": BATCH}

    # -- helpers -----------------------------------------------------------

    def _queue_as_officer(self, count):
        """The officer selects ``count`` registrants and presses Check: committed.
        Returns the checks' ids and how many times the send job was woken."""
        values = list(EXPECTED)
        ids = self.queue_as_officer([values[n % len(values)] for n in range(count)])
        with self.env_cursor() as env:
            job = env.ref("spp_dci_client_ibr.ir_cron_send_queued_checks")
            triggered = env["ir.cron.trigger"].search_count([("cron_id", "=", job.id)])
        return ids, triggered

    def _run_job(self):
        """The send job, the way the scheduler runs it."""
        with self.env_cursor() as env:
            env.ref("spp_dci_client_ibr.ir_cron_send_queued_checks").method_direct_trigger()

    def _checks(self, env, ids):
        return env["spp.dci.duplication.check"].browse(ids)

    def _wait_until_answered(self, ids, timeout=30):
        """Until no check waits any more. Only waiting: no reconcile job runs."""
        deadline = time.monotonic() + timeout
        while True:
            with self.env_cursor() as env:
                states = dict(zip(ids, self._checks(env, ids).mapped("state"), strict=True))
            if "checking" not in states.values() or time.monotonic() > deadline:
                return states
            time.sleep(0.1)

    def _results(self, ids):
        with self.env_cursor() as env:
            checks = self._checks(env, ids)
            return {
                check.id: (check.state, check.result, len(check.message_ids)) for check in checks
            }, {check.id: check.identifier_value for check in checks}

    def _orphans(self):
        with self.env_cursor() as env:
            return env["spp.dci.callback.orphan"].search_count(
                [("sender_id", "=", self.sim.sender_id)]
            )

    def assert_each_completed_once(self, ids):
        outcome, values = self._results(ids)
        self.assertEqual(
            outcome,
            {i: ("completed", EXPECTED[values[i]], 0) for i in ids},
            "each check completes with its answer, and no chatter row",
        )

    # -- the tests ---------------------------------------------------------

    def test_fast_answers_find_their_checks(self):
        ids, triggered = self._queue_as_officer(10)
        self.assertTrue(triggered, "the officer's click wakes the send job")
        outbox = type(self.env["spp.dci.ibr.transaction"])
        finish = outbox._finish

        def slow_finish(txn, vals):
            time.sleep(0.3)  # the answers arrive while the job still records the ACK
            return finish(txn, vals)

        with recorded_logs() as logs, patch.object(outbox, "_finish", slow_finish):
            self._run_job()
            self._wait_until_answered(ids)
        self.assert_each_completed_once(ids)
        self.assertEqual(self._orphans(), 0, "an answer never outruns its check's commit")
        self.assertEqual(len(self.searches()), 3)  # 4 + 4 + 2
        self.assertEqual(self.sim.stats["callbacks_sent"], 3)
        problems = [r.getMessage() for r in logs if r.levelno >= logging.WARNING]
        self.assertEqual(problems, [])
        text = "\n".join(r.getMessage() for r in logs)
        for personal in PERSONAL:
            self.assertNotIn(personal, text)

    def test_killed_between_commit_and_send(self):
        ids, _ = self._queue_as_officer(6)
        outbox = type(self.env["spp.dci.ibr.transaction"])
        send = outbox._send
        calls = []

        def die_before_sending(txn):
            calls.append(txn.transaction_id)
            if len(calls) > 1:
                return send(txn)
            # the batch is committed; the process dies now: its database
            # session goes, so no cleanup of ours or Odoo's can commit anything
            pid = txn.env.cr._cnx.info.backend_pid
            with self.env_cursor() as env:
                env.cr.execute("SELECT pg_terminate_backend(%s)", (pid,))
            raise _Killed()

        with (
            patch.object(outbox, "_send", die_before_sending),
            mute_logger("odoo.sql_db", "odoo.addons.base.models.ir_cron"),
        ):
            with self.assertRaises(BaseException) as died:
                self._run_job()
        # our "death", or Odoo's error on the session that is gone
        self.assertIsInstance(died.exception, (_Killed, psycopg2.Error))
        self.assertEqual(self.searches(), [], "nothing reached the IBR")
        with self.env_cursor() as env:
            killed = env["spp.dci.ibr.transaction"].search([("transaction_id", "=", calls[0])])
            self.assertEqual((killed.state, len(killed.check_ids)), ("sending", BATCH))
            self.assertEqual(set(killed.check_ids.mapped("state")), {"checking"})
            killed_references = sorted(killed.check_ids.mapped("reference_id"))
        # the restart: the rest is sent; the abandoned message waits for its lease
        self._run_job()
        self._wait_until_answered(ids)
        self.assertEqual(len(self.searches()), 1)
        with self.env_cursor() as env:
            env.cr.execute(
                "UPDATE spp_dci_ibr_transaction SET lease_until = '2000-01-01' "
                "WHERE transaction_id = %s",
                (calls[0],),
            )
        self._run_job()
        self._wait_until_answered(ids)
        self.assert_each_completed_once(ids)
        # the IBR saw the killed batch once, under the ids committed before the crash
        resent = [refs for txn, refs in self.searches() if txn == calls[0]]
        self.assertEqual([sorted(refs) for refs in resent], [killed_references])
        self.assertEqual(self._orphans(), 0)

    def test_killed_after_the_ibr_got_the_search(self):
        ids, _ = self._queue_as_officer(3)
        search = IbrClient.search

        def send_then_die(client, *args, **kwargs):
            search(client, *args, **kwargs)  # the IBR has it and answers...
            raise _Killed()  # ...and we die before recording its acknowledgement

        with (
            patch.object(IbrClient, "search", send_then_die),
            mute_logger("odoo.addons.base.models.ir_cron"),
        ):
            with self.assertRaises(_Killed):
                self._run_job()
        self._wait_until_answered(ids)
        with self.env_cursor() as env:
            env.cr.execute("UPDATE spp_dci_ibr_transaction SET lease_until = '2000-01-01'")
        self._run_job()  # finds the abandoned message: all its checks are answered
        self.assert_each_completed_once(ids)
        self.assertEqual(len(self.searches()), 1, "answered checks are not sent again")
        with self.env_cursor() as env:
            txn = self._checks(env, ids).ibr_transaction_id
            self.assertEqual((len(txn), txn.state), (1, "sent"))

    def test_two_jobs_at_once_never_send_a_check_twice(self):
        ids, _ = self._queue_as_officer(24)
        start = threading.Barrier(2, timeout=10)
        errors = []

        def worker():
            try:
                start.wait()
                with self.env_cursor() as env:
                    env["spp.dci.ibr.transaction"]._cron_send_queued()
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        self.assertEqual(errors, [])
        self._wait_until_answered(ids)
        self.assert_each_completed_once(ids)
        with self.env_cursor() as env:
            ours = set(self._checks(env, ids).mapped("reference_id"))
        references = [ref for _txn, refs in self.searches() for ref in refs if ref in ours]
        self.assertEqual(len(references), 24)
        self.assertEqual(len(set(references)), 24, "a check was sent twice")

    def test_a_queue_larger_than_one_run_drains_in_consecutive_runs(self):
        ids, _ = self._queue_as_officer(3 * BATCH)
        statuses = []
        process = type(self.env["ir.cron"])._run_job.__func__

        def run_and_record(cls, job):
            status = process(cls, job)
            statuses.append(status)
            return status

        job_id = self.env.ref("spp_dci_client_ibr.ir_cron_send_queued_checks").id
        cron_module = "odoo.addons.base.models.ir_cron"
        with (
            # one batch per run: the run's time budget is spent after one batch
            patch(f"{cron_module}.MIN_RUNS_PER_JOB", 1),
            patch(f"{cron_module}.MIN_TIME_PER_JOB", 0),
            patch.object(type(self.env["ir.cron"]), "_run_job", classmethod(run_and_record)),
            recorded_logs() as logs,
        ):
            for _run in range(5):
                with self.env_cursor() as env:
                    env["ir.cron.trigger"].search([("cron_id", "=", job_id)]).unlink()
                self._run_job()
                with self.env_cursor() as env:
                    queued = env["spp.dci.duplication.check"].search_count(
                        [("id", "in", ids), ("state", "=", "queued")]
                    )
                    asap = env["ir.cron.trigger"].search_count(
                        [("cron_id", "=", job_id), ("call_at", "<=", env.cr.now())]
                    )
                if not queued:
                    break
                self.assertTrue(asap, "work is left: the job must run again at once")
        self.assertEqual(queued, 0)
        self.assertEqual(statuses, ["partially done", "partially done", "fully done"])
        self._wait_until_answered(ids)
        self.assert_each_completed_once(ids)
        self.assertEqual([r.getMessage() for r in logs if r.levelno >= logging.ERROR], [])

    def test_answers_being_applied_do_not_hide_a_large_request_from_the_send_job(self):
        # a pending request, committed (not expanded: more than the officer's request expands)
        with self.env_cursor() as env:
            partners = env["res.partner"].create(
                [{"name": f"{self.label} pending {n}"} for n in range(3)]
            )
            self.ids["partners"].extend(partners.ids)
            request = env["spp.dci.check.request"].create(
                {
                    "identifier_type": "NID",
                    "connection_id": self.ids["connection"],
                    "partner_ids_json": json.dumps(partners.ids),
                    "partner_count": len(partners),
                }
            )
            request_id = request.id
        try:
            # an answer to this batch is being applied: its figures row refers to the
            # request (a KEY SHARE lock on it until that transaction ends)
            with self.registry.cursor() as answering:
                api.Environment(answering, api.SUPERUSER_ID, {})[
                    "spp.dci.check.request.tally"
                ]._add({request_id: (1, 0, 0, 0)})
                with self.env_cursor() as env:
                    expanded = env["spp.dci.check.request"]._expand_next()
                answering.rollback()
            self.assertEqual(expanded, 3, "the send job expands the request all the same")
        finally:
            with self.env_cursor() as env:
                request = env["spp.dci.check.request"].browse(request_id)
                request.check_ids.unlink()
                request.unlink()
