"""The dialog where an officer reviews a possible match, or a manager
overrides a block, and says why (the decision model checks who may)."""

from odoo import fields, models

from ..models.clearance_decision import KINDS


class ClearanceDecisionWizard(models.TransientModel):
    _name = "spp.dci.clearance.decision.wizard"
    _description = "Review or Override an IBR Result"

    check_id = fields.Many2one("spp.dci.duplication.check", required=True, ondelete="cascade")
    kind = fields.Selection(KINDS, string="Decision", required=True)
    reason = fields.Text(required=True, help="Kept with the decision, for the audit.")

    def action_confirm(self):
        self.ensure_one()
        self.env["spp.dci.clearance.decision"]._decide(self.check_id, self.kind, self.reason)
        return {"type": "ir.actions.act_window_close"}
