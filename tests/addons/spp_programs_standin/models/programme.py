"""The fields of OpenSPP2's programme models that the enrolment gate uses."""

from odoo import fields, models


class Programme(models.Model):
    _name = "spp.program"
    _description = "Programme (stand-in)"

    name = fields.Char(required=True)
    company_id = fields.Many2one("res.company", default=lambda self: self.env.company)


class Membership(models.Model):
    _name = "spp.program.membership"
    _description = "Programme Membership (stand-in)"
    _inherit = ["mail.thread"]

    partner_id = fields.Many2one("res.partner", required=True, ondelete="cascade")
    program_id = fields.Many2one("spp.program", required=True)
    state = fields.Selection(
        [
            ("draft", "Draft"),
            ("enrolled", "Enrolled"),
            ("paused", "Paused"),
            ("exited", "Exited"),
            ("not_eligible", "Not Eligible"),
            ("duplicated", "Duplicated"),
        ],
        default="draft",
    )
    last_deduplication = fields.Date()
    deduplication_status = fields.Selection(
        [
            ("new", "New"),
            ("processing", "Processing"),
            ("verified", "Verified"),
            ("duplicated", "Duplicated"),
        ],
        default="new",
    )


class MembershipDuplicate(models.Model):
    _name = "spp.program.membership.duplicate"
    _description = "Programme Membership Duplicate (stand-in)"

    beneficiary_ids = fields.Many2many("spp.program.membership")
    state = fields.Selection([("duplicate", "Duplicate"), ("not_duplicate", "Not Duplicate")])
    reason = fields.Char()
    comment = fields.Text()
