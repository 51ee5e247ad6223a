"""Identifiers of a registrant, for registries without OpenSPP's ``reg_ids``.

In plain Odoo a contact has no identity documents: these lines give it the
``(type, value)`` pairs an IBR is searched by, entered by hand or imported.
When OpenSPP's registry is installed, its ``reg_ids`` are used instead.
"""

from odoo import api, fields, models

from .groups import PII_GROUP


class RegistrantIdentifier(models.Model):
    _name = "spp.dci.registrant.identifier"
    _description = "Registrant Identifier (for IBR checks)"
    _order = "partner_id, id_type, id"

    partner_id = fields.Many2one(
        "res.partner", string="Registrant", required=True, ondelete="cascade", index=True
    )
    id_type = fields.Char(string="Identifier Type", required=True, help="e.g. NID, UIN, BRN")
    value = fields.Char(required=True, groups=PII_GROUP)
    status = fields.Selection(
        [("valid", "Valid"), ("invalid", "Invalid")],
        default="valid",
        required=True,
        help="Invalid identifiers are never sent to an IBR.",
    )

    _identifier_unique = models.Constraint(
        "UNIQUE(partner_id, id_type, value)", "This registrant already has this identifier."
    )

    @api.depends("partner_id", "id_type")
    def _compute_display_name(self):
        # the type, not the value: the value is personal data
        for line in self:
            line.display_name = self.env._(
                "%(type)s of %(registrant)s",
                type=line.id_type,
                registrant=line.partner_id.display_name,
            )
