"""Registrant side: the checks of a partner, its latest result, and actions."""

import json

from odoo import api, fields, models

from .duplication_check import RESULTS

# more registrants than this reach the wizard as a list of ids, not as tags
LARGE = 100


def identifiers_from_reg_ids(reg_ids):
    """``(type, value)`` pairs of spp_registry ID records, in order, once each.

    The type is the ID type's vocabulary ``code`` (``spp.vocabulary.code``
    has no ``name``; its ``display`` is a label, not an identifier type);
    IDs whose ``status`` is ``invalid`` (removed through a change request)
    and IDs without a type code or a value are skipped.
    """
    pairs = []
    for reg_id in reg_ids:
        if getattr(reg_id, "status", False) == "invalid":
            continue
        id_type = getattr(reg_id, "id_type_id", None)
        code = (getattr(id_type, "code", None) or "") if id_type else ""
        value = getattr(reg_id, "value", None) or ""
        pair = (str(code).strip(), str(value).strip())
        if all(pair) and pair not in pairs:
            pairs.append(pair)
    return pairs


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
        searched in an IBR: OpenSPP's ``reg_ids`` (spp_registry's
        ``spp.registry.id``) when that field exists, else the registrant's own
        valid identifier lines. Override it for other registries."""
        self.ensure_one()
        if "reg_ids" in self._fields:
            return identifiers_from_reg_ids(self.reg_ids)
        return [
            (line.id_type, line.value)
            for line in self.sudo().dci_identifier_ids
            if line.status == "valid"
        ]

    def action_view_dci_checks(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "spp_dci_client_ibr.action_dci_duplication_check"
        )
        action["domain"] = [("partner_id", "=", self.id)]
        action["context"] = {"default_partner_id": self.id}
        return action

    def action_open_ibr_check_wizard(self):
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "spp_dci_client_ibr.action_ibr_check_wizard"
        )
        if len(self) > LARGE:
            action["context"] = {"default_selection_ids_json": json.dumps(self.ids)}
        else:
            action["context"] = {"default_partner_ids": self.ids}
        return action
