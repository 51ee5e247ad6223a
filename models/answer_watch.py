"""The answer watch: the scheduled job that makes sure no check waits forever.

Every run it (1) re-applies unmatched answers whose check now exists, (2) tells
officers about batches that finished, and (3) fails the checks that waited past
their connection's limit, after asking the IBR for the status of their message
when the connection says so (``txn/status``, synchronous or by callback).
"""

from odoo import api, fields, models
from odoo.fields import Domain

from ..dci.errors import DCIError
from .db_retry import retry_on_conflict


def _minutes_text(env, minutes):
    return env._("1 minute") if minutes == 1 else env._("%(n)s minutes", n=minutes)


class DuplicationCheck(models.Model):
    _inherit = "spp.dci.duplication.check"

    @api.model
    def _cron_watch_answers(self):
        """Reconcile unmatched answers, notify finished batches, and fail the
        checks that waited past their connection's limit, so none waits forever
        (polling the IBR's transaction status first when the connection asks)."""
        # a conflict with a delivery applying the same checks is retried, not logged
        retry_on_conflict(self.env, self.env["spp.dci.callback.orphan"]._reconcile)
        self.env["spp.dci.check.request"]._cron_notify_finished()
        now = fields.Datetime.now()
        for connection in (
            self.env["spp.dci.ibr.connection"]
            .with_context(active_test=False)
            .search([("stale_after_minutes", ">", 0)])
        ):
            limit = fields.Datetime.subtract(now, minutes=connection.stale_after_minutes)
            stale = self.search(
                Domain("state", "=", "checking")
                & Domain("data_source_id", "=", connection.id)
                & Domain("sent_at", "<", limit)
                & self._stale_clock_domain(limit)
            )
            if not stale:
                continue
            if (
                connection.poll_status_before_failing
                and connection.active
                and connection.ibr_sender_id  # an unverifiable status is no answer
            ):
                if connection.txn_status_async:
                    stale = stale._request_status(connection, limit)
                else:
                    stale = stale._poll_status(connection)
                stale = stale.filtered(lambda c: c.state == "checking")
            delay = _minutes_text(self.env, connection.stale_after_minutes)
            refused = stale.filtered("refusal_note")
            (stale - refused)._mark_failed(
                self.env._(
                    "No answer from the IBR within %(delay)s. Retry the check.", delay=delay
                ),
                "no_answer",
            )
            for note, checks in refused.grouped("refusal_note").items():
                checks._mark_failed(
                    self.env._(
                        "No verified answer from the IBR within %(delay)s: %(note)s. Ask an "
                        "administrator to check the connection's trusted IBR sender and its "
                        "keys, then retry the check.",
                        delay=delay,
                        note=note,
                    ),
                    "answer_refused",
                )

    @api.model
    def _stale_clock_domain(self, limit):
        """Checks whose wait for an answer started before ``limit``: the wait
        starts when the IBR took their message (its last send was acknowledged).
        A message still sending or waiting to be sent again is the outbox's:
        its retry budget decides, never the stale delay, so no setting of the
        one can fail checks the other is still resending."""
        return Domain("ibr_transaction_id", "=", False) | (
            Domain("ibr_transaction_id.state", "=", "sent")
            & (
                Domain("ibr_transaction_id.sent_at", "=", False)
                | Domain("ibr_transaction_id.sent_at", "<", limit)
            )
        )

    def _request_status(self, connection, limit):
        """Ask the IBR (``/registry/txn/status``, answered by ``txn/on-status``)
        about the messages of these stale checks that were not asked about yet;
        return the checks to fail now: those whose message was asked about
        before ``limit`` and is still unanswered, or could not be asked (a
        transient failure is asked again, with back-off, within the
        connection's retry budget)."""
        client = connection._get_client()
        txns = self.ibr_transaction_id
        asked = txns.filtered(lambda t: t.status_requested_at)
        spared = asked.filtered(lambda t: t.status_requested_at >= limit)
        now = fields.Datetime.now()
        for txn in txns - asked:
            if txn.status_next_at and txn.status_next_at > now:
                spared |= txn  # its status request is to be sent again later
                continue
            try:
                client.request_txn_status(
                    txn.transaction_id,
                    sender_uri=connection.get_callback_url("txn/on-status"),
                    correlation_id=txn.correlation_id or None,
                )
            except DCIError as exc:
                if txn._status_request_failed(connection, exc):
                    spared |= txn
                continue
            spared |= txn
            txn.write({"status_requested_at": now, "status_next_at": False})
        return self.filtered(lambda c: c.ibr_transaction_id not in spared)

    def _poll_status(self, connection):
        """Ask ``/registry/sync/txn/status`` about these checks' messages and
        apply the answers; return the checks to fail now (those of a message
        whose status request failed transiently, within the connection's retry
        budget, wait for the next run)."""
        client = connection._get_client()
        spared = self.env["spp.dci.ibr.transaction"]
        now = fields.Datetime.now()
        for txn in self.ibr_transaction_id:
            if txn.status_next_at and txn.status_next_at > now:
                spared |= txn
                continue
            try:
                answer = client.txn_status(txn.transaction_id)
            except DCIError as exc:
                if txn._status_request_failed(connection, exc):
                    spared |= txn
                continue
            response = answer.message.search_answer()
            if response is not None:  # else not a search answer: nothing to apply
                self._apply_answer(response, connection.ibr_sender_id)
        return self.filtered(lambda c: c.ibr_transaction_id not in spared)
