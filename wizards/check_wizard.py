"""Check one or many registrants in the IBR, choosing the identifier to search."""

from odoo import api, fields, models
from odoo.exceptions import UserError


class IbrCheckWizard(models.TransientModel):
    _name = "spp.dci.check.wizard"
    _description = "Check Registrants in IBR"

    partner_ids = fields.Many2many("res.partner", string="Registrants", required=True)
    connection_id = fields.Many2one(
        "spp.dci.ibr.connection",
        string="IBR Connection",
        required=True,
        default=lambda self: self.env["spp.dci.ibr.connection"].search([], limit=1),
    )
    identifier_type = fields.Char(required=True, help="Which identifier to search by, e.g. NID.")
    identifier_value = fields.Char(
        help="For a single registrant: the value to search (prefilled from its identifiers)."
    )
    available_identifiers = fields.Text(compute="_compute_available_identifiers")
    partner_count = fields.Integer(compute="_compute_available_identifiers")

    @api.depends("partner_ids")
    def _compute_available_identifiers(self):
        for wizard in self:
            wizard.partner_count = len(wizard.partner_ids)
            types = {}
            for partner in wizard.partner_ids._origin:  # the hook sees real records
                for id_type, _value in partner._get_ibr_identifiers():
                    types[id_type] = types.get(id_type, 0) + 1
            wizard.available_identifiers = "\n".join(
                f"{id_type}: {count} registrant(s)" for id_type, count in sorted(types.items())
            )

    @api.onchange("partner_ids", "identifier_type")
    def _onchange_prefill_value(self):
        if len(self.partner_ids) == 1:
            identifiers = self.partner_ids._origin._get_ibr_identifiers()
            if not self.identifier_type and identifiers:
                self.identifier_type = identifiers[0][0]
            for id_type, value in identifiers:
                if id_type == self.identifier_type:
                    self.identifier_value = value

    def _check_values(self):
        """``[(partner, value)]`` to check; raise when none can be checked."""
        self.ensure_one()
        id_type = (self.identifier_type or "").strip()
        if len(self.partner_ids) == 1 and (self.identifier_value or "").strip():
            return [(self.partner_ids, self.identifier_value.strip())]
        pairs = []
        for partner in self.partner_ids:
            values = [v for t, v in partner._get_ibr_identifiers() if t == id_type]
            if values:
                pairs.append((partner, values[0]))
        if not pairs:
            raise UserError(
                self.env._(
                    "None of the selected registrants has a %(type)s identifier. "
                    "Pick another identifier type or enter the value.",
                    type=id_type,
                )
            )
        return pairs

    def action_confirm(self):
        self.ensure_one()
        pairs = self._check_values()
        checks = self.env["spp.dci.duplication.check"].create(
            [
                {
                    "partner_id": partner.id,
                    "identifier_type": self.identifier_type.strip(),
                    "identifier_value": value,
                    "data_source_id": self.connection_id.id,
                }
                for partner, value in pairs
            ]
        )
        checks.action_run_check()  # queued: the send job sends them in batches
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "spp_dci_client_ibr.action_dci_duplication_check"
        )
        action["domain"] = [("id", "in", checks.ids)]
        skipped = len(self.partner_ids) - len(checks)
        if skipped:
            action["help"] = self.env._(
                "%(n)s registrant(s) had no %(type)s identifier and were not checked.",
                n=skipped,
                type=self.identifier_type,
            )
        return action
