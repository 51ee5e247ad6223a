"""Registrant side: the checks of a partner, its latest result, and actions."""

from odoo import api, fields, models

from .duplication_check import RESULTS


class ResPartner(models.Model):
    _inherit = "res.partner"

    dci_check_ids = fields.One2many(
        "spp.dci.duplication.check",
        "partner_id",
        string="IBR Duplication Checks",
        groups="spp_dci_client_ibr.group_ibr_viewer",
    )
    dci_identifier_ids = fields.One2many(
        "spp.dci.registrant.identifier",
        "partner_id",
        string="Identifiers (IBR)",
        groups="spp_dci_client_ibr.group_ibr_viewer",
    )
    dci_check_count = fields.Integer(
        compute="_compute_dci_latest", groups="spp_dci_client_ibr.group_ibr_viewer"
    )
    dci_last_result = fields.Selection(
        RESULTS,
        string="Latest IBR Result",
        compute="_compute_dci_latest",
        groups="spp_dci_client_ibr.group_ibr_viewer",
    )

    @api.depends("dci_check_ids.state", "dci_check_ids.result")
    def _compute_dci_latest(self):
        checks = self.env["spp.dci.duplication.check"]
        counts = dict(
            checks._read_group([("partner_id", "in", self.ids)], ["partner_id"], ["__count"])
        )
        latest = {}
        for check in checks.search(
            [("partner_id", "in", self.ids), ("state", "=", "completed")],
            order="completed_at desc, id desc",
        ):
            latest.setdefault(check.partner_id.id, check.result)
        for partner in self:
            partner.dci_check_count = counts.get(partner, 0)
            partner.dci_last_result = latest.get(partner.id, False)

    def _get_ibr_identifiers(self):
        """Hook: the ``(type, value)`` identifiers of this registrant that can be
        searched in an IBR: OpenSPP's ``reg_ids`` when installed, else the
        registrant's own valid identifier lines."""
        self.ensure_one()
        identifiers = []
        if "reg_ids" in self._fields:
            for reg_id in self.reg_ids:
                id_type = getattr(reg_id, "id_type", None) or getattr(reg_id, "id_type_id", None)
                type_name = getattr(id_type, "name", id_type) if id_type else ""
                value = getattr(reg_id, "value", "")
                if type_name and value:
                    identifiers.append((str(type_name), str(value)))
            return identifiers
        return [
            (line.id_type, line.value)
            for line in self.sudo().dci_identifier_ids
            if line.status == "valid"
        ]

    def action_view_dci_checks(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "spp_dci_client_ibr.action_duplication_check"
        )
        action["domain"] = [("partner_id", "=", self.id)]
        action["context"] = {"default_partner_id": self.id}
        return action

    def action_open_ibr_check_wizard(self):
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "spp_dci_client_ibr.action_ibr_check_wizard"
        )
        action["context"] = {"default_partner_ids": self.ids}
        return action
