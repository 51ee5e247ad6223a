"""A person's decision on a check's result: the audit trail of clearance.

An officer reviews a possible match ("same person" blocks the registrant,
"not the same person" clears it); a manager may override a block. Each
decision is one record saying who, when, why, on which check and which
result. It is made only through :meth:`ClearanceDecision._decide`, which
checks the decider's group, and nobody edits or deletes it afterwards.
A newer check with another result makes it stop counting (see
``clearance.py``); it stays in the history.
"""

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import SQL

from .duplication_check import RESULTS
from .groups import MANAGER_GROUP, OFFICER_GROUP, PII_GROUP

KINDS = [
    ("review_same", "Reviewed: Same Person"),
    ("review_not_same", "Reviewed: Not the Same Person"),
    ("override", "Block Overridden"),
]


class ClearanceDecision(models.Model):
    _name = "spp.dci.clearance.decision"
    _description = "IBR Clearance Decision (review or override)"
    _order = "id desc"

    check_id = fields.Many2one(
        # restrict: a decided check is the audit's, no deletion may take the decision with it
        "spp.dci.duplication.check",
        required=True,
        readonly=True,
        ondelete="restrict",
        index=True,
    )
    # copied from the check when deciding (they never change): clearance reads them
    # in SQL without a join
    partner_id = fields.Many2one(
        "res.partner",
        string="Registrant",
        required=True,
        readonly=True,
        index=True,
        ondelete="cascade",  # the person's data goes with the person
    )
    connection_id = fields.Many2one(
        "spp.dci.ibr.connection",
        string="IBR Connection",
        required=True,
        readonly=True,
        ondelete="restrict",
    )
    company_id = fields.Many2one("res.company", required=True, readonly=True, index=True)
    result = fields.Selection(RESULTS, string="Result Decided On", required=True, readonly=True)
    check_completed_at = fields.Datetime(required=True, readonly=True)
    kind = fields.Selection(KINDS, string="Decision", required=True, readonly=True)
    reason = fields.Text(required=True, readonly=True, groups=PII_GROUP)
    user_id = fields.Many2one(
        "res.users", string="Decided By", required=True, readonly=True, ondelete="restrict"
    )
    decided_at = fields.Datetime(required=True, readonly=True)
    superseded = fields.Boolean(
        compute="_compute_superseded",
        help="A newer check on this connection gave another result: this decision no "
        "longer counts.",
    )

    _by_registrant = models.Index("(partner_id, connection_id, result)")

    @api.depends("check_id")
    def _compute_superseded(self):
        if not self.ids:
            self.superseded = False
            return
        self.env["spp.dci.duplication.check"].flush_model(
            ["partner_id", "data_source_id", "state", "result", "completed_at"]
        )
        self.env.cr.execute(
            SQL(
                """SELECT d.id FROM spp_dci_clearance_decision d
                    WHERE d.id = ANY(%s) AND EXISTS (
                        SELECT 1 FROM spp_dci_duplication_check o
                         WHERE o.partner_id = d.partner_id
                           AND o.data_source_id = d.connection_id
                           AND o.state = 'completed' AND o.result <> d.result
                           AND (o.completed_at, o.id) > (d.check_completed_at, d.check_id))""",
                self.ids,
            )
        )
        superseded = {row[0] for row in self.env.cr.fetchall()}
        for decision in self:
            decision.superseded = decision.id in superseded

    @api.depends("kind", "partner_id")
    def _compute_display_name(self):
        kinds = dict(self._fields["kind"]._description_selection(self.env))
        for decision in self:
            decision.display_name = self.env._(
                "%(kind)s · %(partner)s",
                kind=kinds.get(decision.kind, ""),
                partner=decision.partner_id.display_name,
            )

    # -- the only way in -------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        if not self.env.context.get("dci_deciding"):
            raise AccessError(
                self.env._("Decisions are made with Review or Override on a check, not written.")
            )
        return super().create(vals_list)

    def write(self, vals):
        if self:
            raise AccessError(self.env._("A clearance decision is never changed: decide again."))
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_never(self):
        raise AccessError(self.env._("A clearance decision is never deleted: it is the audit."))

    @api.model
    def _decide(self, check, kind, reason):
        """Record ``kind`` on ``check`` (the latest completed one of its registrant
        on its connection), by the environment's user, for ``reason``."""
        check.ensure_one()
        reason = (reason or "").strip()
        if not reason:
            raise UserError(self.env._("Say why: a decision without a reason is not recorded."))
        needed = MANAGER_GROUP if kind == "override" else OFFICER_GROUP
        if not self.env.user.has_group(needed):
            raise AccessError(
                self.env._("Only an IBR manager may override a block.")
                if kind == "override"
                else self.env._("Only an IBR officer may review a possible match.")
            )
        check.check_access("read")  # the decider's company sees the check
        partner = check.partner_id
        current = partner._get_ibr_clearance(connection=check.data_source_id, max_age_days=0)[
            partner.id
        ]
        if check.id not in current["check_ids"]:
            raise UserError(
                self.env._(
                    "Only the latest completed check of %(partner)s on %(connection)s can be "
                    "decided on: open that one.",
                    partner=partner.display_name,
                    connection=check.data_source_id.display_name,
                )
            )
        if kind in ("review_same", "review_not_same") and check.result != "possible_match":
            raise UserError(self.env._("Only a possible match is reviewed."))
        if kind == "override" and current["state"] != "blocked":
            raise UserError(
                self.env._(
                    "%(partner)s is not blocked by this check: there is nothing to override.",
                    partner=partner.display_name,
                )
            )
        return (
            self.sudo()
            .with_context(dci_deciding=True)
            .create(
                {
                    "check_id": check.id,
                    "partner_id": partner.id,
                    "connection_id": check.data_source_id.id,
                    "company_id": check.company_id.id,
                    "result": check.result,
                    # a check written by other code may lack its answer's date
                    "check_completed_at": check.completed_at or check.write_date,
                    "kind": kind,
                    "reason": reason,
                    "user_id": self.env.uid,
                    "decided_at": fields.Datetime.now(),
                }
            )
            .with_env(self.env)
        )
