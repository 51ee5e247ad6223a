"""Odoo dies in the middle of the batch job: no check is lost, none stays ``checking``.

The queue job runs as the scheduler runs it (``method_direct_trigger``: its
own cursor, a commit per batch) against the built-in IBR simulator, whose
signed callbacks come back through Odoo's threaded HTTP server. The second
batch's search reaches the IBR, then the server "dies" before committing: its
database session is terminated and the job is interrupted, so nothing of that
batch can be committed (a Python exception alone would not do: the scheduler
commits in a ``finally``). A second run (the restart) must send what was
left, and every check must end with the IBR's answer.

The registry stays out of test mode: all of it is committed, then removed.
"""

import time
from unittest.mock import patch

import psycopg2

from odoo import api
from odoo.tests import tagged
from odoo.tools import mute_logger

from ..dci.keys import KeySet
from ..dci.simulator import IbrSimulator
from .common import CommittingHttpCase

# identifier -> the result the simulator's sample data gives it
EXPECTED = {
    "1000000001": "confirmed_match",
    "1000000002": "possible_match",
    "1000000003": "no_match",
}
CHECKS = 10
BATCH = 4


class _Killed(BaseException):
    """The process dies: not an ``Exception``, so no handler on the way swallows it."""


@tagged("post_install", "-at_install")
class TestRestartMidBatch(CommittingHttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sim = IbrSimulator().start()
        cls.addClassCleanup(cls.sim.stop)
        with cls.registry.cursor() as cr:
            env = api.Environment(cr, api.SUPERUSER_ID, {"tracking_disable": True})
            sender = env["spp.dci.ibr.sender"].create(
                {"name": "Simulator", "sender_id": cls.sim.sender_id}
            )
            sender._store_keys([cls.sim.signing_key.public])
            connection = env["spp.dci.ibr.connection"].create(
                {
                    "name": "Simulator (restart test)",
                    "base_url": cls.sim.url,
                    "our_sender_id": "spmis.restart",
                    "receiver_id": cls.sim.sender_id,
                    "ibr_sender_id": sender.id,
                    "callback_url": f"{cls.base_url()}/dci_api/ibr/on-search",
                    "batch_size": BATCH,
                    "sequence": 0,
                }
            )
            connection.action_generate_signing_key()
            cls.sim.client_keys = KeySet([connection._signing_key().public])
            values = list(EXPECTED)
            partners = env["res.partner"].create(
                [{"name": f"Restart registrant {n}"} for n in range(CHECKS)]
            )
            checks = env["spp.dci.duplication.check"].create(
                [
                    {
                        "partner_id": partner.id,
                        "identifier_type": "NID",
                        "identifier_value": values[n % len(values)],
                        "data_source_id": connection.id,
                        "queued": True,
                    }
                    for n, partner in enumerate(partners)
                ]
            )
            cls.ids = {
                "sender": sender.id,
                "connection": connection.id,
                "partners": partners.ids,
                "checks": checks.ids,
            }
        cls.addClassCleanup(cls._remove_committed_data)

    @classmethod
    def _remove_committed_data(cls):
        with cls.registry.cursor() as cr:
            env = api.Environment(cr, api.SUPERUSER_ID, {"active_test": False})
            env["spp.dci.duplication.check"].browse(cls.ids["checks"]).unlink()
            sender_id = cls.sim.sender_id
            env["spp.dci.replay.entry"].search([("sender_id", "=", sender_id)]).unlink()
            env["spp.dci.callback.orphan"].search([("sender_id", "=", sender_id)]).unlink()
            env["spp.dci.ibr.connection"].browse(cls.ids["connection"]).unlink()
            env["spp.dci.ibr.sender"].browse(cls.ids["sender"]).unlink()
            env["res.partner"].browse(cls.ids["partners"]).unlink()

    # -- helpers -----------------------------------------------------------

    def _run_queue_job(self):
        """Run the queue job the way the scheduler does (own cursor, commit per batch)."""
        with self.registry.cursor() as cr:
            env = api.Environment(cr, api.SUPERUSER_ID, {})
            env.ref("spp_dci_client_ibr.ir_cron_send_queued_checks").method_direct_trigger()

    def _states(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, api.SUPERUSER_ID, {})
            checks = env["spp.dci.duplication.check"].browse(self.ids["checks"])
            return {
                check.id: (check.state, check.queued, check.identifier_value, check.result)
                for check in checks
            }

    def _wait_for_answers(self, timeout=30):
        """Until no check is ``checking`` (or ``timeout`` seconds passed)."""
        deadline = time.monotonic() + timeout
        while True:
            states = self._states()
            if not any(state == "checking" for state, *_ in states.values()):
                return states
            if time.monotonic() > deadline:
                return states
            with self.registry.cursor() as cr:
                # A callback can beat our own commit of its search: the orphan log keeps
                # it and schedules this job, which the scheduler would run (no
                # scheduler thread runs during tests).
                env = api.Environment(cr, api.SUPERUSER_ID, {})
                env["spp.dci.duplication.check"]._cron_fail_stale()
            time.sleep(0.2)

    # -- the test ----------------------------------------------------------

    def test_killed_mid_batch_then_restarted_loses_no_check(self):
        check_model = type(self.env["spp.dci.duplication.check"])
        send_batch = check_model._send_batch
        batches = []

        def send_then_die(checks, connection):
            send_batch(checks, connection)  # the IBR has this batch's search...
            batches.append(checks.ids)
            if len(batches) == 2:
                # ...and the server dies before committing: its database session
                # goes (no Python cleanup of ours or Odoo's can commit anything)
                pid = checks.env.cr._cnx.info.backend_pid
                with self.registry.cursor() as killer:
                    killer.execute("SELECT pg_terminate_backend(%s)", (pid,))
                raise _Killed()

        died = None
        with (
            patch.object(check_model, "_send_batch", send_then_die),
            mute_logger("odoo.sql_db", "odoo.addons.base.models.ir_cron"),
        ):
            try:
                self._run_queue_job()
            except (_Killed, psycopg2.Error) as exc:  # or Odoo's error on the dead session
                died = exc
        self.assertIsNotNone(died, "the job ran to the end instead of dying")
        self.assertEqual(len(batches), 2)

        after_crash = self._states()
        sent = [i for i, (state, queued, *_) in after_crash.items() if not queued]
        still_queued = [i for i, (state, queued, *_) in after_crash.items() if queued]
        # the first batch was committed; the killed one rolled back into the queue
        self.assertEqual(len(sent), BATCH)
        self.assertEqual(len(still_queued), CHECKS - BATCH)
        self.assertTrue(
            all(after_crash[i][0] == "ready" for i in still_queued),
            "a check of the killed batch was left half-sent",
        )

        self._run_queue_job()  # the restart
        final = self._wait_for_answers()

        self.assertEqual(
            {i: (state, queued, result) for i, (state, queued, _, result) in final.items()},
            {i: ("completed", False, EXPECTED[value]) for i, (_, _, value, _) in final.items()},
        )
        # four searches reached the IBR: batch 1, the killed batch 2, and after the
        # restart the 6 checks left, in batches of 4 and 2
        self.assertEqual(self.sim.stats["requests"], 1 + 1 + 2)
