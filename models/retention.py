"""Retention: personal data kept only as long as it is needed.

Per IBR connection, an administrator sets three windows (0 keeps for ever):

- answers: a finished check older than this keeps its decision (result,
  programmes, state, dates, who asked, its ids) and loses the IBR's raw
  answer and its match lines' personal fields (the matched person's name,
  sex, birth date, identifiers and IBR member id);
- earlier attempts: a check superseded by a newer attempt and older than
  this is deleted, with its match lines (a batch's figures stay as they were);
- logs: unmatched answers, notification events, enrolment reports, the id
  lists of finished batches, sent or failed outbox messages no waiting
  check needs, and delivery-log rows older than this go. Rows that belong to
  no connection (unmatched answers, notifications, the delivery log) keep
  the longest logs window of any connection (0 there keeps them).

The daily job works in bounded chunks, one statement each, committed with
Odoo's cron progress: a run stops when its time is up and the next resumes
where the work is (each chunk looks for what is still to do).
"""

from odoo import api, fields, models
from odoo.tools import SQL

CHUNK = 5000  # rows per statement

MATCH_PERSONAL = ("person_name", "sex", "birth_date", "identifiers", "member_identifier")


class IbrConnectionRetention(models.Model):
    _inherit = "spp.dci.ibr.connection"

    keep_answers_days = fields.Integer(
        string="Keep Answers (days)",
        default=180,
        required=True,
        help="A finished check older than this keeps its result and programmes but loses the "
        "IBR's raw answer and the matched persons' names, sexes, birth dates and identifiers "
        "(0: keep them for ever).",
    )
    keep_attempts_days = fields.Integer(
        string="Keep Earlier Attempts (days)",
        default=365,
        required=True,
        help="A check replaced by a newer attempt of the same registrant is deleted when "
        "older than this (0: keep every attempt).",
    )
    keep_logs_days = fields.Integer(
        string="Keep Logs (days)",
        default=90,
        required=True,
        help="Unmatched answers, notification events, enrolment reports, finished batches' "
        "registrant lists, sent outbox messages and refused deliveries older than this are "
        "deleted (0: keep them for ever).",
    )

    _retention_positive = models.Constraint(
        "CHECK (keep_answers_days >= 0 AND keep_attempts_days >= 0 AND keep_logs_days >= 0)",
        "Retention windows are days: 0 (keep for ever) or more.",
    )


class IbrRetention(models.AbstractModel):
    _name = "spp.dci.retention"
    _description = "IBR Data Retention (scheduled job)"

    @api.model
    def _cron_apply_retention(self):
        """Do the retention work a chunk at a time while the cron run's time
        lasts; what is left is reported and done by the next run."""
        cron = self.env["ir.cron"]
        in_cron = bool(self.env.context.get("ir_cron_progress_id"))
        while True:
            processed = self._retention_step()
            if not processed:
                if in_cron:
                    cron._commit_progress(remaining=0)
                return
            if in_cron and cron._commit_progress(processed, remaining=1) <= 0:
                return  # the next run goes on

    @api.model
    def _retention_step(self, limit=None):
        """One chunk of the first kind of work that has some left; returns the
        rows it changed or deleted (0: nothing left to do)."""
        limit = limit or CHUNK
        self.env.flush_all()
        for task in (
            self._minimise_answers,
            self._delete_earlier_attempts,
            self._delete_logs,
        ):
            done = task(limit)
            if done:
                self.env.invalidate_all()
                return done
        self.env["spp.dci.check.request.tally"]._fold()
        return 0

    def _windows(self, field):
        """``[(connection id, limit datetime)]`` of the connections with this window set."""
        now = fields.Datetime.now()
        connections = (
            self.env["spp.dci.ibr.connection"]
            .sudo()
            .with_context(active_test=False)
            .search([(field, ">", 0)])
        )
        return [(c.id, fields.Datetime.subtract(now, days=c[field])) for c in connections]

    def _minimise_answers(self, limit):
        cr = self.env.cr
        for connection_id, before in self._windows("keep_answers_days"):
            # served by the check's "not minimised yet" partial index
            cr.execute(
                SQL(
                    """WITH chunk AS (
                           SELECT id FROM spp_dci_duplication_check
                            WHERE raw_response IS NOT NULL AND check_date < %(before)s
                              AND data_source_id = %(connection)s
                              AND state IN ('completed', 'failed')
                            ORDER BY check_date LIMIT %(limit)s FOR NO KEY UPDATE SKIP LOCKED),
                       lines AS (
                           UPDATE spp_dci_duplication_match
                              SET %(blank)s
                            WHERE check_id IN (SELECT id FROM chunk))
                       UPDATE spp_dci_duplication_check SET raw_response = NULL
                        WHERE id IN (SELECT id FROM chunk)""",
                    before=before,
                    connection=connection_id,
                    limit=limit,
                    blank=SQL(", ").join(
                        SQL("%s = NULL", SQL.identifier(name)) for name in MATCH_PERSONAL
                    ),
                )
            )
            if cr.rowcount:
                return cr.rowcount
        return 0

    def _delete_earlier_attempts(self, limit):
        checks = self.env["spp.dci.duplication.check"].sudo()
        for connection_id, before in self._windows("keep_attempts_days"):
            # served by the check's date index, from its oldest end
            self.env.cr.execute(
                """SELECT id FROM spp_dci_duplication_check
                    WHERE is_latest IS NOT TRUE AND check_date < %s AND data_source_id = %s
                      AND state IN ('completed', 'failed')
                      AND NOT EXISTS (SELECT 1 FROM spp_dci_clearance_decision d
                                       WHERE d.check_id = spp_dci_duplication_check.id)
                    ORDER BY check_date LIMIT %s""",
                (before, connection_id, limit),
            )
            ids = [row[0] for row in self.env.cr.fetchall()]
            if ids:
                checks.browse(ids).unlink()
                return len(ids)
        return 0

    def _delete_logs(self, limit):
        windows = self._windows("keep_logs_days")
        connections = self.env["spp.dci.ibr.connection"].sudo().with_context(active_test=False)
        everywhere = None  # the longest window, for rows of no connection
        if windows and not connections.search_count([("keep_logs_days", "=", 0)]):
            everywhere = min(before for _connection, before in windows)
        cr = self.env.cr
        statements = []
        for connection_id, before in windows:
            statements += [
                # outbox messages done with, that no waiting check still needs
                SQL(
                    """DELETE FROM spp_dci_ibr_transaction WHERE id IN (
                           SELECT t.id FROM spp_dci_ibr_transaction t
                            WHERE t.connection_id = %(c)s AND t.state IN ('sent', 'failed')
                              AND t.create_date < %(before)s
                              AND NOT EXISTS (SELECT 1 FROM spp_dci_duplication_check k
                                               WHERE k.ibr_transaction_id = t.id
                                                 AND k.state IN ('ready', 'queued', 'checking'))
                            LIMIT %(limit)s)""",
                    c=connection_id,
                    before=before,
                    limit=limit,
                ),
                SQL(
                    """DELETE FROM spp_dci_ibr_enrolment_update WHERE id IN (
                           SELECT id FROM spp_dci_ibr_enrolment_update
                            WHERE connection_id = %(c)s AND create_date < %(before)s
                            LIMIT %(limit)s)""",
                    c=connection_id,
                    before=before,
                    limit=limit,
                ),
                # a finished batch keeps its figures, not whom it listed
                SQL(
                    """UPDATE spp_dci_check_request
                          SET partner_ids_json = '[]', values_json = NULL, skipped_json = NULL
                        WHERE id IN (
                           SELECT id FROM spp_dci_check_request
                            WHERE connection_id = %(c)s AND state = 'done'
                              AND create_date < %(before)s AND partner_ids_json != '[]'
                            LIMIT %(limit)s)""",
                    c=connection_id,
                    before=before,
                    limit=limit,
                ),
            ]
        if everywhere:
            for table, column in (
                ("spp_dci_callback_orphan", "create_date"),
                ("spp_dci_ibr_notification", "create_date"),
                ("spp_dci_delivery_log", "last_at"),
            ):
                statements.append(
                    SQL(
                        "DELETE FROM %(t)s WHERE id IN "
                        "(SELECT id FROM %(t)s WHERE %(col)s < %(before)s LIMIT %(limit)s)",
                        t=SQL.identifier(table),
                        col=SQL.identifier(column),
                        before=everywhere,
                        limit=limit,
                    )
                )
        for statement in statements:
            cr.execute(statement)
            if cr.rowcount:
                return cr.rowcount
        return 0
