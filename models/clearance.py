"""Clearance: may this registrant be enrolled, as far as the IBRs tell?

One method, :meth:`ResPartner._get_ibr_clearance`, the hook a programme
module calls before it enrols anyone. Per registrant, from the latest
completed check on each IBR connection and the decisions taken on it:

- ``blocked``: a confirmed match (or a possible match an officer judged the
  same person), not overridden by a manager;
- ``review``: a possible match nobody reviewed yet;
- ``pending``: neither, and a check is waiting for its answer;
- ``cleared``: every latest check found no match (or its possible match
  was judged another person, or a manager overrode the block), recently
  enough (the connection's ``clearance_max_age_days``);
- ``unknown``: no completed check, or none recent enough.

A decision counts until a newer check on the same connection gives another
result; it stays in the history. Matches never expire: a newer check
replaces them. The states are worked out in SQL (one statement for any
number of registrants), so the list filters use the same statement.
"""

from odoo import api, fields, models
from odoo.fields import Domain
from odoo.tools import SQL

from .duplication_check import OPEN_STATES
from .groups import VIEWER_GROUP

CLEARANCE_STATES = [
    ("cleared", "Cleared"),
    ("review", "Needs Review"),
    ("blocked", "Blocked"),
    ("pending", "Check Waiting"),
    ("unknown", "Unknown"),
]
# waiting checks that make a registrant ``pending`` (``ready`` ones were never asked)
WAITING_STATES = tuple(state for state in OPEN_STATES if state != "ready")


class ResPartnerClearance(models.Model):
    _inherit = "res.partner"

    dci_clearance = fields.Selection(
        CLEARANCE_STATES,
        string="IBR Clearance",
        compute="_compute_dci_clearance",
        search="_search_dci_clearance",
        groups=VIEWER_GROUP,
        help="May this registrant be enrolled, per the latest IBR checks and the decisions "
        "taken on them.",
    )
    dci_clearance_overridden = fields.Boolean(
        string="IBR Block Overridden",
        compute="_compute_dci_clearance",
        groups=VIEWER_GROUP,
    )

    dci_decision_ids = fields.One2many(
        "spp.dci.clearance.decision",
        "partner_id",
        string="IBR Decisions",
        groups=VIEWER_GROUP,
    )

    def _compute_dci_clearance(self):
        clearance = self._get_ibr_clearance()
        for partner in self:
            mine = clearance[partner.id]
            partner.dci_clearance = mine["state"]
            partner.dci_clearance_overridden = mine["overridden"]

    def _search_dci_clearance(self, operator, value):
        if operator not in ("in", "not in"):
            return NotImplemented
        states = {value} if isinstance(value, str) else set(value)
        if False in states:  # no clearance shown: nothing known
            states = (states - {False}) | {"unknown"}
        wanted = states - {"unknown"}
        self.env.flush_all()  # the statement reads checks and decisions as stored
        known = self._clearance_query(None, None, None)
        domain = Domain.FALSE
        if wanted:
            domain |= Domain(
                "id",
                "any!",
                SQL("SELECT partner_id FROM (%s) AS cl WHERE cl.state IN %s", known, tuple(wanted)),
            )
        if "unknown" in states:
            domain |= Domain(
                "id",
                "not any!",
                SQL("SELECT partner_id FROM (%s) AS cl WHERE cl.state <> 'unknown'", known),
            )
        return domain if operator == "in" else ~domain

    @api.model
    def _get_ibr_clearance(self, connection=None, max_age_days=None):
        """The IBR clearance of these registrants, for a programme deciding
        whether to enrol them: ``{partner id: {"state": ..., "check_ids": [...],
        "decision_ids": [...], "overridden": bool}}``, every id of ``self``
        present (``unknown`` when nothing is known).

        ``state`` is one of ``CLEARANCE_STATES``; ``check_ids`` are the latest
        completed checks it rests on (one per connection), ``decision_ids``
        the decisions that count on them; ``overridden``: a manager lifted a
        block. ``connection``: only that IBR (default: every active
        connection). ``max_age_days``: how old a "no match" may be and still
        clear (default: each connection's own setting; 0: any age).

        Reads the checks of the environment's companies, whatever the user's
        rights: a programme's rules must not depend on who clicks. One SQL
        statement, whatever the number of registrants.
        """
        unknown = {"state": "unknown", "check_ids": [], "decision_ids": [], "overridden": False}
        result = {partner_id: dict(unknown) for partner_id in self.ids}
        if not self.ids:
            return result
        self.env.flush_all()
        self.env.cr.execute(self._clearance_query(self.ids, connection, max_age_days))
        for partner_id, state, check_ids, decision_ids, overridden in self.env.cr.fetchall():
            result[partner_id] = {
                "state": state,
                "check_ids": check_ids or [],
                "decision_ids": decision_ids or [],
                "overridden": bool(overridden),
            }
        return result

    @api.model
    def _clearance_query(self, partner_ids, connection, max_age_days):
        """One row ``(partner_id, state, check_ids, decision_ids, overridden)``
        per registrant that has a completed or waiting check (``partner_ids``:
        only those; ``None``: all)."""
        scope = SQL("c.company_id = ANY(%s)", self.env.companies.ids)
        if partner_ids is not None:
            scope = SQL("%s AND c.partner_id = ANY(%s)", scope, list(partner_ids))
        if connection:
            scope = SQL("%s AND c.data_source_id = %s", scope, connection.id)
        else:
            scope = SQL("%s AND k.active", scope)
        if max_age_days is None:
            age = SQL("k.clearance_max_age_days")
        else:
            age = SQL("%s::int", int(max_age_days))
        now = fields.Datetime.now()
        return SQL(
            """
            WITH latest AS (
                SELECT DISTINCT ON (c.partner_id, c.data_source_id)
                       c.id, c.partner_id, c.data_source_id, c.result, c.completed_at,
                       %(age)s AS age
                  FROM spp_dci_duplication_check c
                  JOIN spp_dci_ibr_connection k ON k.id = c.data_source_id
                 WHERE c.state = 'completed' AND %(scope)s
              ORDER BY c.partner_id, c.data_source_id, c.completed_at DESC NULLS LAST, c.id DESC
            ), judged AS (
                SELECT l.partner_id, l.id AS check_id, d.id AS decision_id,
                       d.kind = 'override' AS overridden,
                       CASE
                           WHEN d.kind = 'override' THEN 'cleared'
                           WHEN l.result = 'confirmed_match' OR d.kind = 'review_same'
                               THEN 'blocked'
                           WHEN l.result = 'possible_match' AND d.kind IS NULL THEN 'review'
                           WHEN l.age = 0
                             OR l.completed_at >= %(now)s - make_interval(days => l.age)
                               THEN 'cleared'
                           ELSE 'unknown'
                       END AS verdict
                  FROM latest l
             LEFT JOIN LATERAL (
                    -- the newest decision on this result that no other result followed
                    SELECT d.id, d.kind
                      FROM spp_dci_clearance_decision d
                     WHERE d.partner_id = l.partner_id AND d.connection_id = l.data_source_id
                       AND d.result = l.result
                       AND NOT EXISTS (
                           SELECT 1 FROM spp_dci_duplication_check o
                            WHERE o.partner_id = l.partner_id
                              AND o.data_source_id = l.data_source_id
                              AND o.state = 'completed' AND o.result <> l.result
                              AND (o.completed_at, o.id) > (d.check_completed_at, d.check_id))
                  ORDER BY d.id DESC LIMIT 1
                  ) d ON TRUE
            ), waiting AS (
                SELECT DISTINCT c.partner_id
                  FROM spp_dci_duplication_check c
                  JOIN spp_dci_ibr_connection k ON k.id = c.data_source_id
                 WHERE c.state IN %(waiting)s AND %(scope)s
            )
            SELECT p.partner_id,
                   CASE
                       WHEN bool_or(j.verdict = 'blocked') THEN 'blocked'
                       WHEN bool_or(j.verdict = 'review') THEN 'review'
                       WHEN bool_or(w.partner_id IS NOT NULL) THEN 'pending'
                       WHEN bool_and(j.verdict = 'cleared') THEN 'cleared'
                       ELSE 'unknown'
                   END AS state,
                   array_agg(j.check_id ORDER BY j.check_id)
                       FILTER (WHERE j.check_id IS NOT NULL),
                   array_agg(j.decision_id ORDER BY j.decision_id)
                       FILTER (WHERE j.decision_id IS NOT NULL),
                   coalesce(bool_or(j.overridden), FALSE)
              FROM (SELECT partner_id FROM judged UNION SELECT partner_id FROM waiting) p
         LEFT JOIN judged j ON j.partner_id = p.partner_id
         LEFT JOIN waiting w ON w.partner_id = p.partner_id
          GROUP BY p.partner_id
            """,
            age=age,
            scope=scope,
            now=now,
            waiting=WAITING_STATES,
        )
