"""Check one or many registrants in the IBR, choosing the identifier to search."""

import json

from odoo import api, fields, models
from odoo.exceptions import UserError

SAMPLE = 1000  # registrants whose identifiers the wizard summarises


class IbrCheckWizard(models.TransientModel):
    _name = "spp.dci.check.wizard"
    _description = "Check Registrants in IBR"

    partner_ids = fields.Many2many("res.partner", string="Registrants")
    # A large selection travels as a list of ids: as a many2many it would be
    # 50,000 relation rows to write and 50,000 tags for the browser to draw.
    selection_ids_json = fields.Text(string="Selected Registrant IDs")
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

    @api.depends("partner_ids", "selection_ids_json")
    def _compute_available_identifiers(self):
        for wizard in self:
            partners = wizard._selection()._origin  # the hook sees real records
            wizard.partner_count = len(partners)
            sample = partners[:SAMPLE]  # a glance, not a census, for huge selections
            types = {}
            for partner in sample:
                for id_type in dict(partner._get_ibr_identifiers()):
                    types[id_type] = types.get(id_type, 0) + 1
            lines = [f"{t}: {n} registrant(s)" for t, n in sorted(types.items())]
            if len(partners) > SAMPLE:
                lines.insert(
                    0,
                    self.env._(
                        "Among the first %(sample)s of %(total)s registrants:",
                        sample=SAMPLE,
                        total=len(partners),
                    ),
                )
            wizard.available_identifiers = "\n".join(lines)

    def _selection(self):
        """The selected registrants, as they were selected. (Reading them without
        the archive filter also spares checking 50,000 records one by one.)"""
        self.ensure_one()
        if self.selection_ids_json:
            ids = json.loads(self.selection_ids_json)
            return self.env["res.partner"].with_context(active_test=False).browse(ids)
        return self.with_context(active_test=False).partner_ids

    @api.onchange("partner_ids", "identifier_type")
    def _onchange_prefill_value(self):
        if len(self.partner_ids) == 1:
            identifiers = self.partner_ids._origin._get_ibr_identifiers()
            if not self.identifier_type and identifiers:
                self.identifier_type = identifiers[0][0]
            for id_type, value in identifiers:
                if id_type == self.identifier_type:
                    self.identifier_value = value

    def action_confirm(self):
        """Queue the checks; for a large selection the send job creates them."""
        self.ensure_one()
        checks = self.env["spp.dci.duplication.check"]
        id_type = (self.identifier_type or "").strip()
        connection = checks._ensure_runnable(self.connection_id)
        typed = (self.identifier_value or "").strip()
        partners = self._selection()
        if not partners:
            raise UserError(self.env._("Select at least one registrant to check."))
        if len(partners) == 1 and typed:
            check = checks.create(
                {
                    "partner_id": partners.id,
                    "identifier_type": id_type,
                    "identifier_value": typed,
                    "data_source_id": connection.id,
                }
            )
            check.action_run_check()
            domain = [("id", "=", check.id)]
            help_text = False
        else:
            request = self.env["spp.dci.check.request"]._queue(partners, id_type, connection)
            if request.state == "done" and not request.check_count:
                raise UserError(
                    self.env._(
                        "None of the selected registrants has a %(type)s identifier. "
                        "Pick another identifier type or enter the value.",
                        type=id_type,
                    )
                )
            domain = [("request_id", "=", request.id)]
            if request.state == "pending":
                help_text = self.env._(
                    "The checks of %(n)s registrants are being queued: they appear here "
                    "as the send job creates them.",
                    n=request.partner_count,
                )
            elif request.skipped_count:
                help_text = self.env._(
                    "%(n)s registrant(s) had no %(type)s identifier and were not checked.",
                    n=request.skipped_count,
                    type=id_type,
                )
            else:
                help_text = False
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "spp_dci_client_ibr.action_dci_duplication_check"
        )
        action["domain"] = domain
        if help_text:
            action["help"] = help_text
        return action
