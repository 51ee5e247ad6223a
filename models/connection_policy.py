"""What a connection does by itself: how long a result clears a registrant,
how the enrolment gate treats doubtful ones, and the automatic checks.

All off (or lenient) by default: an administrator chooses. Connections are
written by administrators only (access rules), so these fields are too.
"""

from odoo import api, fields, models
from odoo.exceptions import ValidationError

GATE_POLICIES = [
    ("allow", "Allow"),
    ("warn", "Allow, with a note"),
    ("refuse", "Refuse"),
]
AUTO_ORIGINS = ("registration", "recheck")


class IbrConnectionPolicy(models.Model):
    _inherit = "spp.dci.ibr.connection"

    # -- clearance and the enrolment gate ------------------------------------
    clearance_max_age_days = fields.Integer(
        string="Results Clear For (days)",
        default=365,
        help="A 'no match' older than this no longer clears a registrant (its clearance is "
        "Unknown until checked again). 0: it never expires. Matches never expire: a newer "
        "check replaces them.",
    )
    gate_on_review = fields.Selection(
        GATE_POLICIES,
        string="Enrolling a Possible Match",
        default="warn",
        required=True,
        help="When a programme enrols a registrant whose possible match is not reviewed yet.",
    )
    gate_on_unknown = fields.Selection(
        GATE_POLICIES,
        string="Enrolling an Unchecked Registrant",
        default="allow",
        required=True,
        help="When a programme enrols a registrant without a recent enough result "
        "(or whose check is still waiting).",
    )

    # -- automatic checks ------------------------------------------------------
    auto_identifier_type = fields.Char(
        string="Automatic Checks By",
        help="The identifier type automatic checks search by, e.g. NID.",
    )
    auto_check_registration = fields.Boolean(
        string="Check New Registrants",
        help="Queue a check for each new registrant with an identifier of this type, and "
        "for each registrant whose identifier of this type is added or changed.",
    )
    recheck_after_days = fields.Integer(
        string="Check Again After (days)",
        help="Registrants whose latest completed check here is older than this are checked "
        "again by a nightly job. 0: never.",
    )
    recheck_daily_cap = fields.Integer(
        string="At Most Per Day",
        default=1000,
        help="Registrants the nightly job queues per day, at most: a large registry is "
        "spread over days.",
    )
    auto_queued_today = fields.Integer(
        string="Queued Automatically Today",
        compute="_compute_auto_figures",
        help="Registrants queued today by the registration trigger and the nightly job.",
    )
    recheck_next_run = fields.Datetime(string="Next Nightly Run", compute="_compute_auto_figures")

    _clearance_age_positive = models.Constraint(
        "CHECK(clearance_max_age_days >= 0 AND recheck_after_days >= 0 AND recheck_daily_cap >= 0)",
        "Days and daily limits cannot be negative.",
    )

    @api.constrains("auto_check_registration", "recheck_after_days", "auto_identifier_type")
    def _check_auto_identifier_type(self):
        for connection in self:
            wants = connection.auto_check_registration or connection.recheck_after_days
            if wants and not (connection.auto_identifier_type or "").strip():
                raise ValidationError(
                    self.env._(
                        "%(name)s: automatic checks need the identifier type to search by "
                        "(e.g. NID).",
                        name=connection.name,
                    )
                )

    @api.depends("auto_check_registration", "recheck_after_days")
    def _compute_auto_figures(self):
        today = fields.Datetime.to_datetime(fields.Date.context_today(self))
        queued = dict(
            self.env["spp.dci.check.request"]
            .sudo()
            ._read_group(
                [
                    ("connection_id", "in", self.ids),
                    ("origin", "in", AUTO_ORIGINS),
                    ("create_date", ">=", today),
                ],
                ["connection_id"],
                ["partner_count:sum"],
            )
        )
        cron = self.env.ref("spp_dci_client_ibr.ir_cron_recheck", raise_if_not_found=False)
        next_run = cron.sudo().nextcall if cron and cron.sudo().active else False
        for connection in self:
            connection.auto_queued_today = queued.get(connection, 0)
            connection.recheck_next_run = next_run if connection.recheck_after_days else False
