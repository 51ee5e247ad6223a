"""The outbox: one row per signed search message we send to an IBR.

A batch of checks is given its ids and committed here *before* the request
leaves, so an answer can be matched the moment it arrives, even if it
overtakes the IBR's acknowledgement. After the send, only this row is
written (acknowledged or failed), never the checks: the callbacks that are
completing those checks at the same moment never wait on the send job.

A row still ``sending`` after its lease ran out belongs to a job that died
between commit and acknowledgement: the next job run sends it again under
the same transaction and reference ids, so the IBR never sees two different
transactions for one attempt.
"""

import logging
import random
import time

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY

from ..dci import messages
from ..dci.errors import DCIError

_logger = logging.getLogger(__name__)

STATES = [
    ("sending", "Sending"),
    ("sent", "Sent"),
    ("failed", "Failed"),
]
CONFLICT_TRIES = 5


class IbrTransaction(models.Model):
    _name = "spp.dci.ibr.transaction"
    _description = "IBR Search Message (outbox)"
    _order = "id desc"
    _rec_name = "transaction_id"

    transaction_id = fields.Char(string="Transaction ID", required=True, readonly=True)
    connection_id = fields.Many2one(
        "spp.dci.ibr.connection", string="IBR Connection", required=True, readonly=True
    )
    company_id = fields.Many2one(related="connection_id.company_id", store=True, index=True)
    state = fields.Selection(STATES, default="sending", required=True, readonly=True, index=True)
    message_id = fields.Char(string="Message ID", readonly=True, help="Of the latest send.")
    correlation_id = fields.Char(
        string="Correlation ID", readonly=True, index="btree_not_null", help="The IBR's id."
    )
    attempts = fields.Integer(readonly=True, default=0)
    lease_until = fields.Datetime(
        readonly=True, help="While a job sends it, no other job touches it until this time."
    )
    sent_at = fields.Datetime(readonly=True)
    acknowledged_at = fields.Datetime(readonly=True)
    error_message = fields.Text(readonly=True)
    status_requested_at = fields.Datetime(
        readonly=True, help="When the IBR was asked for this message's status (txn/status)."
    )
    check_ids = fields.One2many("spp.dci.duplication.check", "ibr_transaction_id", readonly=True)

    _transaction_id_unique = models.UniqueIndex("(transaction_id)")

    # -- claiming work (each claim is committed before anything is sent) -------

    @api.model
    def _claim(self):
        """The next message to send, committed as ``sending``: an abandoned one
        first (its job died mid-send), else a new one made of queued checks.
        Returns an empty recordset when there is nothing to send."""
        return self._retry_on_conflict(lambda: self._claim_abandoned() or self._claim_queued())

    def _claim_abandoned(self):
        self.flush_model()
        self.env.cr.execute(
            """SELECT id FROM spp_dci_ibr_transaction
                WHERE state = 'sending' AND lease_until < now() AT TIME ZONE 'UTC'
                ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED""",
            log_exceptions=False,
        )
        row = self.env.cr.fetchone()
        if not row:
            return self.browse()
        txn = self.browse(row[0])
        _logger.info("resending IBR transaction %s (its job stopped mid-send)", txn.id)
        txn.write({"lease_until": txn.connection_id._lease_end()})
        return txn

    def _claim_queued(self):
        checks = self.env["spp.dci.duplication.check"]
        checks.flush_model()
        cr = self.env.cr
        cr.execute(
            """SELECT data_source_id FROM spp_dci_duplication_check
                WHERE state = 'queued' ORDER BY id LIMIT 1""",
            log_exceptions=False,
        )
        row = cr.fetchone()
        if not row:
            return self.browse()
        connection = self.env["spp.dci.ibr.connection"].browse(row[0]).exists()
        if not connection:  # queued without a connection: the default one takes them
            connection = self.env["spp.dci.ibr.connection"].search([], limit=1)
        cr.execute(
            """SELECT id FROM spp_dci_duplication_check
                WHERE state = 'queued' AND data_source_id IS NOT DISTINCT FROM %s
                ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED""",
            (row[0], connection.batch_size or 50),
            log_exceptions=False,
        )
        batch = checks.browse([r[0] for r in cr.fetchall()])
        if not batch:
            return self.browse()
        try:
            connection = batch._ensure_runnable(connection)
        except UserError as exc:  # a configuration problem: fail the batch, don't spin
            batch._mark_failed(str(exc), "configuration")
            return self._claim_queued()
        txn = self.create(
            {
                "transaction_id": messages.new_id(),
                "connection_id": connection.id,
                "lease_until": connection._lease_end(),
            }
        )
        batch._assign_to(txn)
        return txn

    # -- sending -----------------------------------------------------------

    def _send(self):
        """Send this claimed message and record how the IBR took it.

        Only the checks still waiting are (re)sent: on a resend, answers to
        the first send may have completed some already.
        """
        self.ensure_one()
        connection = self.connection_id
        checks = self.check_ids.filtered(lambda c: c.state == "checking")
        if not checks:
            self._finish({"state": "sent"})
            return
        try:
            client = connection._get_client()
            if connection.use_enrolled_precheck:
                checks = checks._enrolled_precheck(client)
                if not checks:
                    self._finish({"state": "sent"})
                    return
            queries = checks._search_queries()
            vals = {"attempts": self.attempts + 1, "sent_at": fields.Datetime.now()}
            if connection.mode == "sync":
                answer = client.sync_search(
                    queries, transaction_id=self.transaction_id, page_size=connection.page_size
                )
                self._apply_sync_answer(checks, answer)
                vals.update(state="sent", message_id=answer.header.message_id)
            else:
                submission = client.search(
                    queries,
                    sender_uri=connection.get_callback_url(),
                    transaction_id=self.transaction_id,
                    page_size=connection.page_size,
                )
                vals.update(
                    state="sent",
                    message_id=submission.message_id,
                    correlation_id=submission.correlation_id,
                    acknowledged_at=fields.Datetime.now(),
                )
        except (DCIError, UserError) as exc:
            self._fail(exc)
            return
        self._finish(vals)

    def _apply_sync_answer(self, checks, answer):
        checks._apply_answer(answer.message, self.connection_id.ibr_sender_id)
        checks.filtered(lambda c: c.state == "checking")._mark_failed(
            self.env._("The IBR's answer did not cover this check."), "unreadable"
        )

    def _fail(self, exc):
        """The IBR refused the message or could not be reached: its waiting checks fail."""
        if isinstance(exc, DCIError):
            _logger.info("IBR transaction %s failed: %s", self.id, exc.code)
            kind, message = self.env["spp.dci.duplication.check"]._failure_of(exc)
        else:
            kind, message = "configuration", str(exc)

        def record():
            self.check_ids.filtered(lambda c: c.state == "checking")._mark_failed(message, kind)
            self.write({"state": "failed", "error_message": message})

        self._retry_on_conflict(record)

    def _finish(self, vals):
        self._retry_on_conflict(lambda: self.write(vals))

    # -- transactions ------------------------------------------------------

    def _commit(self):
        """Make the work so far durable (the Odoo suite's TransactionCase
        tests replace this: their cursor cannot commit). The outbox exists to
        commit a batch before its request leaves: that is the point of it."""
        self.env.cr.commit()  # pylint: disable=invalid-commit

    def _retry_on_conflict(self, work):
        """Run ``work`` and commit it; on a serialization conflict with a
        concurrent callback or job, roll back and run it again.

        The statements that can conflict (row locks, lookups) carry ids only,
        and are not logged when they fail: no personal data reaches the log.
        """
        for attempt in range(1, CONFLICT_TRIES + 1):
            try:
                result = work()
                self.env.flush_all()
                self._commit()
                return result
            except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY:
                if attempt == CONFLICT_TRIES:
                    raise
                self.env.cr.rollback()
                self.env.invalidate_all()
                time.sleep(random.uniform(0, 0.05 * attempt))
        return None  # pragma: no cover - the loop returns or raises
