"""The fields of OpenSPP2's registrant IDs that this module reads."""

from odoo import fields, models


class VocabularyCode(models.Model):
    _name = "spp.vocabulary.code"
    _description = "Vocabulary Code (stand-in)"
    _rec_name = "display"

    # like OpenSPP2's: no ``name``; ``code`` is the identifier type, ``display`` a label
    code = fields.Char(required=True, index=True)
    display = fields.Char()


class RegistryId(models.Model):
    _name = "spp.registry.id"
    _description = "Registrant ID (stand-in)"

    partner_id = fields.Many2one("res.partner", required=True, index=True, ondelete="cascade")
    id_type_id = fields.Many2one("spp.vocabulary.code", required=True)
    value = fields.Char(index=True)
    # empty: added in the registry; 'invalid': removed through a change request
    status = fields.Selection([("invalid", "Invalid"), ("valid", "Valid")])


class Partner(models.Model):
    _inherit = "res.partner"

    reg_ids = fields.One2many("spp.registry.id", "partner_id", string="Registrant IDs")
