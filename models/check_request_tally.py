"""The figures of a check batch, kept as they change, never counted per view.

Each write that moves checks of a batch between "in progress", "completed",
"failed" and "match" inserts one row of differences per batch (insert-only:
concurrent answers to one batch never update the same row, so they never
conflict). A batch's figures are the sum of its rows, read in one grouped
query for a whole list of batches; the retention job folds each batch's rows
into one. A check deleted by retention leaves the figures as they were: they
say what the batch did.
"""

from odoo import api, fields, models
from odoo.tools import SQL

from .duplication_check import MATCH_RESULTS, OPEN_STATES

COUNTERS = ("open_count", "completed_count", "failed_count", "match_count")
# what checks add to their batches' figures, by batch: the one definition of
# "in progress", "completed", "failed" and "match"
_SHARES = """SELECT request_id,
                    count(*) FILTER (WHERE state IN %(open)s),
                    count(*) FILTER (WHERE state = 'completed'),
                    count(*) FILTER (WHERE state = 'failed'),
                    count(*) FILTER (WHERE state = 'completed' AND result IN %(matches)s)
               FROM spp_dci_duplication_check
              WHERE request_id IS NOT NULL %(among)s
              GROUP BY request_id"""


class CheckRequestTally(models.Model):
    _name = "spp.dci.check.request.tally"
    _description = "IBR Check Batch Figures (differences, summed)"
    _log_access = False

    request_id = fields.Many2one(
        "spp.dci.check.request", required=True, ondelete="cascade", index=True
    )
    open_count = fields.Integer()
    completed_count = fields.Integer()
    failed_count = fields.Integer()
    match_count = fields.Integer()

    @api.model
    def _add(self, deltas):
        """Insert ``{request id: (open, completed, failed, match)}`` differences,
        one statement for all batches (zero rows left out)."""
        rows = [(rid, *d) for rid, d in deltas.items() if rid and any(d)]
        if not rows:
            return
        self.env.cr.execute(
            """INSERT INTO spp_dci_check_request_tally
                      (request_id, open_count, completed_count, failed_count, match_count)
               SELECT * FROM unnest(%s::int[], %s::int[], %s::int[], %s::int[], %s::int[])""",
            [list(column) for column in zip(*rows, strict=True)],
        )

    @api.model
    def _figures(self, request_ids):
        """``{request id: {counter: sum}}`` in one grouped query."""
        groups = self.sudo()._read_group(
            [("request_id", "in", list(request_ids))],
            ["request_id"],
            [f"{name}:sum" for name in COUNTERS],
        )
        return {request.id: dict(zip(COUNTERS, sums, strict=True)) for request, *sums in groups}

    @api.model
    def _fold(self):
        """One row per batch: each batch's differences replaced by their sum
        (rows inserted meanwhile by another transaction are left for next time).
        Returns how many batches it folded."""
        self.env.cr.execute(
            """WITH gone AS (
                   DELETE FROM spp_dci_check_request_tally
                    WHERE request_id IN (SELECT request_id FROM spp_dci_check_request_tally
                                          GROUP BY request_id HAVING count(*) > 1)
                RETURNING *)
               INSERT INTO spp_dci_check_request_tally
                      (request_id, open_count, completed_count, failed_count, match_count)
               SELECT request_id, sum(open_count), sum(completed_count), sum(failed_count),
                      sum(match_count)
                 FROM gone GROUP BY request_id"""
        )
        return self.env.cr.rowcount

    @api.model
    def _rebuild(self):
        """The figures of every batch counted again from its checks (the
        migration that introduced them): one grouped statement."""
        self.env["spp.dci.duplication.check"].flush_model(["request_id", "state", "result"])
        self.env.cr.execute(
            SQL(
                """DELETE FROM spp_dci_check_request_tally;
                   INSERT INTO spp_dci_check_request_tally
                          (request_id, open_count, completed_count, failed_count, match_count)
                   %s""",
                self._shares_query(SQL()),
            )
        )
        self.invalidate_model()

    @api.model
    def _shares(self, check_ids):
        """``{batch id: (open, completed, failed, match)}``: what the checks of
        ``check_ids`` add to their batches' figures, as the database has them."""
        if not check_ids:
            return {}
        self.env.cr.execute(self._shares_query(SQL("AND id = ANY(%s)", list(check_ids))))
        return {rid: tuple(share) for rid, *share in self.env.cr.fetchall()}

    def _shares_query(self, among):
        return SQL(_SHARES, open=OPEN_STATES, matches=MATCH_RESULTS, among=among)
