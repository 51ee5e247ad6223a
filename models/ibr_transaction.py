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

A transient failure (the IBR unreachable, a reset, a timeout before the
acknowledgement, HTTP 5xx or 429, an unreadable answer: the core's
``transient`` flag) leaves the row ``retrying``: it is sent again, under the
same ids, at ``next_attempt_at`` (exponential back-off with jitter, never
before the IBR's Retry-After), and its checks keep waiting. Only when the
connection's retry budget is spent, or on a permanent failure (a coded
refusal), do the checks fail, with the last reason.
"""

import logging

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools.misc import format_datetime

from ..dci import messages
from ..dci.errors import DCIError
from .db_retry import retry_on_conflict

_logger = logging.getLogger(__name__)

STATES = [
    ("sending", "Sending"),
    ("retrying", "Waiting to Resend"),
    ("sent", "Sent"),
    ("failed", "Failed"),
]
SEND_JOB = "spp_dci_client_ibr.ir_cron_send_queued_checks"


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
    attempts = fields.Integer(readonly=True, default=0, help="Sends made so far.")
    next_attempt_at = fields.Datetime(
        string="Next Attempt", readonly=True, help="When a message waiting to resend goes again."
    )
    failure_kind = fields.Char(readonly=True, help="The kind of the last failure (core kinds).")
    lease_until = fields.Datetime(
        readonly=True, help="While a job sends it, no other job touches it until this time."
    )
    sent_at = fields.Datetime(readonly=True)
    acknowledged_at = fields.Datetime(readonly=True)
    error_message = fields.Text(readonly=True)
    status_requested_at = fields.Datetime(
        readonly=True, help="When the IBR was asked for this message's status (txn/status)."
    )
    status_attempts = fields.Integer(readonly=True, help="Status requests that failed.")
    status_next_at = fields.Datetime(
        readonly=True, help="When a status request that failed transiently is sent again."
    )
    check_ids = fields.One2many("spp.dci.duplication.check", "ibr_transaction_id", readonly=True)

    _transaction_id_unique = models.UniqueIndex("(transaction_id)")

    # -- the send job ----------------------------------------------------------

    @api.model
    def _cron_send_queued(self):
        """The send job: claim a batch (committed), send it, record the answer;
        repeat while the cron run's time budget lasts, reporting what is left
        so Odoo runs the job again at once until the queue is empty."""
        requests = self.env["spp.dci.check.request"]
        cron = self.env["ir.cron"]
        in_cron = bool(self.env.context.get("ir_cron_progress_id"))
        while True:
            txn = self._claim()
            if txn:
                txn._send()
                processed = len(txn.check_ids)
            else:  # all queued checks are out: queue more of a large request
                processed = retry_on_conflict(self.env, requests._expand_next)
                if not processed:
                    if in_cron:
                        cron._commit_progress(remaining=0)
                    return
            if in_cron:
                remaining = self._queue_size()
                if cron._commit_progress(processed, remaining=remaining) <= 0:
                    if remaining:
                        # Odoo reschedules a partly done job without waking the
                        # cron workers (they sleep up to a minute): wake them
                        self.env.ref(SEND_JOB)._trigger()
                    return

    @api.model
    def _queue_size(self):
        """What the send job has left: queued checks, messages to resend,
        registrants of large requests not yet queued."""
        return (
            self.env["spp.dci.duplication.check"].search_count([("state", "=", "queued")])
            + self.search_count(
                [
                    "|",
                    ("state", "=", "sending"),
                    "&",
                    ("state", "=", "retrying"),
                    ("next_attempt_at", "<=", fields.Datetime.now()),
                ]
            )
            + self.env["spp.dci.check.request"]._pending_registrants()
        )

    # -- claiming work (each claim is committed before anything is sent) -------

    @api.model
    def _claim(self):
        """The next message to send, committed as ``sending``: an abandoned one
        first (its job died mid-send), else a new one made of queued checks.
        Returns an empty recordset when there is nothing to send."""
        return retry_on_conflict(self.env, lambda: self._claim_abandoned() or self._claim_queued())

    def _claim_abandoned(self):
        """A message due to be sent again: its resend time came, or its job
        died mid-send (its lease ran out)."""
        self.flush_model()
        self.env.cr.execute(
            """SELECT id, state FROM spp_dci_ibr_transaction
                WHERE (state = 'sending' AND lease_until < %(now)s)
                   OR (state = 'retrying' AND next_attempt_at <= %(now)s)
                ORDER BY id LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED""",
            # the clock the lease and the resend time were set with (not the
            # transaction's start: a long job run would see the past)
            {"now": fields.Datetime.now()},
            log_exceptions=False,
        )
        row = self.env.cr.fetchone()
        if not row:
            return self.browse()
        txn = self.browse(row[0])
        why = "its resend time came" if row[1] == "retrying" else "its job stopped mid-send"
        _logger.info("resending IBR transaction %s (%s)", txn.id, why)
        txn.write({"state": "sending", "lease_until": txn.connection_id._lease_end()})
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
                ORDER BY id LIMIT %s FOR NO KEY UPDATE SKIP LOCKED""",
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
        # in the order they were queued (the list's order is newest first)
        checks = self.check_ids.filtered(lambda c: c.state == "checking").sorted("id")
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
            vals = {
                "attempts": self.attempts + 1,
                "sent_at": fields.Datetime.now(),
                "next_attempt_at": False,
                "failure_kind": False,
                "error_message": False,
            }
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
        retry_on_conflict(self.env, connection._note_success)

    def _apply_sync_answer(self, checks, answer):
        checks._apply_answer(answer.message, self.connection_id.ibr_sender_id)
        checks.filtered(lambda c: c.state == "checking")._mark_failed(
            self.env._("The IBR's answer did not cover this check."), "unreadable"
        )

    def _fail(self, exc):
        """This send failed: schedule the resend when the failure is transient
        and the connection's retry budget allows, else fail the waiting checks
        with the last reason."""
        connection = self.connection_id
        failure = connection._failure_of(exc)
        attempts = self.attempts + 1
        when = connection._next_attempt_at(self.create_date, attempts, failure)
        _logger.info(
            "IBR transaction %s: attempt %s failed (%s, %s)%s",
            self.id,
            attempts,
            failure.kind,
            getattr(exc, "code", "configuration"),
            f", next at {when}" if when else "",
        )
        vals = {
            "attempts": attempts,
            "sent_at": fields.Datetime.now(),
            "failure_kind": failure.kind,
            "error_message": failure.officer,
        }
        if when:
            retry_on_conflict(
                self.env, lambda: self.write(dict(vals, state="retrying", next_attempt_at=when))
            )
            self.env.ref(SEND_JOB).sudo()._trigger(when)
        else:
            message = failure.officer
            if failure.transient:  # the budget is spent
                message = self.env._(
                    "%(reason)s Sent %(count)s times since %(since)s without an answer: "
                    "Retry the check later.",
                    reason=failure.officer,
                    count=attempts,
                    since=format_datetime(self.env, self.create_date),
                )

            def record():
                waiting = self.check_ids.filtered(lambda c: c.state == "checking")
                waiting._mark_failed(message, failure.kind)
                self.write(dict(vals, state="failed", next_attempt_at=False, error_message=message))

            retry_on_conflict(self.env, record)
        if failure.kind != "configuration":  # our own settings say nothing of the IBR
            retry_on_conflict(self.env, lambda: connection._note_failure(failure))

    def _status_request_failed(self, connection, exc):
        """A status request about this message failed; True when it is to be
        sent again later (transient, within the retry budget): its checks wait."""
        failure = connection._failure_of(exc)
        attempts = self.status_attempts + 1
        when = connection._next_attempt_at(None, attempts, failure)
        _logger.info(
            "IBR status request for transaction %s failed (%s)%s",
            self.id,
            failure.kind,
            f", again at {when}" if when else "",
        )
        self.write({"status_attempts": attempts, "status_next_at": when or False})
        return bool(when)

    def _retry_text(self):
        """What a check waiting for this message's resend shows."""
        self.ensure_one()
        if self.state != "retrying":
            return False
        return self.env._(
            "Retrying: %(reason)s (attempt %(attempt)s of %(total)s, next at %(at)s)",
            reason=self.error_message or self.failure_kind,
            attempt=self.attempts,
            total=self.connection_id.retry_max_attempts,
            at=format_datetime(self.env, self.next_attempt_at),
        )

    def _finish(self, vals):
        retry_on_conflict(self.env, lambda: self.write(vals))
