"""Attempts: one latest check per registrant and connection.

Every new check of a registrant at an IBR connection is its latest attempt
and supersedes the one before, whatever created it (the wizard, a batch, a
notification, Retry): ``previous_check_id`` and ``attempt`` chain them, and
only the newest has ``is_latest``. So a monthly sweep leaves one latest
check per registrant, and the default list ("Latest Attempts") shows a
month, not a year.
"""

from odoo import api, models
from odoo.tools import SQL

CHAIN_CHUNK = 20_000  # registrants per statement when chains are rebuilt

# the chain of each (registrant, connection) of a range of registrants, in
# creation order, written only where it differs (an unchanged row is not rewritten)
_FIX_CHAINS = """
UPDATE spp_dci_duplication_check c
   SET previous_check_id = o.previous_id, attempt = o.attempt, is_latest = o.is_latest
  FROM (SELECT id,
               lag(id) OVER chain AS previous_id,
               row_number() OVER chain AS attempt,
               lead(id) OVER chain IS NULL AS is_latest
          FROM spp_dci_duplication_check
         WHERE partner_id >= %(low)s AND partner_id < %(high)s
        WINDOW chain AS (PARTITION BY partner_id, coalesce(data_source_id, 0) ORDER BY id)) o
 WHERE c.id = o.id
   AND (c.previous_check_id, c.attempt, c.is_latest)
       IS DISTINCT FROM (o.previous_id, o.attempt::int, o.is_latest)
"""


class DuplicationCheckAttempts(models.Model):
    _inherit = "spp.dci.duplication.check"

    def _chain_attempts(self, vals_list):
        """Make each new check the latest attempt of its registrant and
        connection, whatever creates it (wizard, batch, notification, retry):
        fill its ``previous_check_id`` and ``attempt`` from the current latest,
        found for the whole batch in one query. Returns the ids of the checks
        it supersedes (several new checks of one pair chain in their order)."""
        default_source = None
        if any("data_source_id" not in vals for vals in vals_list):
            default_source = self.default_get(["data_source_id"]).get("data_source_id") or False
        for vals in vals_list:
            vals.setdefault("data_source_id", default_source)
        pairs = {(vals.get("partner_id"), vals["data_source_id"] or 0) for vals in vals_list}
        pairs.discard((None, 0))
        latest = {}
        if pairs:
            partners, sources = zip(*pairs, strict=True)
            self.flush_model(["partner_id", "data_source_id", "is_latest", "attempt"])
            # served by the (partner_id, data_source_id) WHERE is_latest index
            self.env.cr.execute(
                """SELECT DISTINCT ON (c.partner_id, coalesce(c.data_source_id, 0))
                          c.partner_id, coalesce(c.data_source_id, 0), c.id, c.attempt
                     FROM spp_dci_duplication_check c
                     JOIN unnest(%s::int[], %s::int[]) AS p(partner_id, source_id)
                       ON c.partner_id = p.partner_id
                      AND coalesce(c.data_source_id, 0) = p.source_id
                    WHERE c.is_latest IS TRUE
                    ORDER BY c.partner_id, coalesce(c.data_source_id, 0), c.id DESC""",
                (list(partners), list(sources)),
            )
            latest = {
                (p, s): (check_id, attempt) for p, s, check_id, attempt in self.env.cr.fetchall()
            }
        superseded = [check_id for check_id, _attempt in latest.values()]
        repeats = []  # (index, index of the new check it follows)
        new_index = {}
        for index, vals in enumerate(vals_list):
            key = (vals.get("partner_id"), vals["data_source_id"] or 0)
            previous_id, previous_attempt = latest.get(key, (False, 0))
            if key in new_index:
                repeats.append((index, new_index[key]))
                previous_id = False
            vals.update(previous_check_id=previous_id, attempt=previous_attempt + 1, is_latest=True)
            latest[key] = (False, previous_attempt + 1)
            new_index[key] = index
        return superseded, repeats

    @api.model
    def _fix_attempt_chains(self, after_chunk=None):
        """Rebuild every chain from the checks' creation order, a range of
        registrants at a time (``after_chunk()`` is called after each: the
        migration commits there, so a year of checks is never one
        transaction). Returns how many checks changed."""
        self.flush_model()
        cr = self.env.cr
        cr.execute(
            SQL(
                "SELECT coalesce(min(partner_id), 0), coalesce(max(partner_id), 0) FROM %s",
                SQL.identifier(self._table),
            )
        )
        low, high = cr.fetchone()
        changed = 0
        for start in range(low, high + 1, CHAIN_CHUNK):
            cr.execute(SQL(_FIX_CHAINS, low=start, high=start + CHAIN_CHUNK))
            changed += cr.rowcount
            if after_chunk:
                after_chunk()
        self.invalidate_model(["previous_check_id", "attempt", "is_latest"])
        return changed
