"""What an IBR found, as data: one line per enrolment of each record it returned.

Lines are written when a check completes, from the records of all its
pages (the core's :func:`~dci.interpret.match_lines` reads them). They are
personal data: only the personal-data group may read them (access rules).
"""

from datetime import date

from odoo import api, fields, models

# MatchLine attribute -> field, for the text values the IBR gave
_TEXT_FIELDS = (
    "programme_id",
    "programme_name",
    "enrolment_status",
    "enrolment_date",
    "end_date",
    "member_identifier",
    "person_name",
    "sex",
    "birth_date",
    "identifiers",
)


def _iso_date(text):
    """The date an ISO 8601 date or date-time starts with, else ``False``."""
    try:
        return date.fromisoformat((text or "")[:10])
    except ValueError:
        return False


class DuplicationMatch(models.Model):
    _name = "spp.dci.duplication.match"
    _description = "IBR Match (one enrolment the IBR returned)"
    _order = "check_date desc, id desc"  # newest first, read from the index below
    _rec_name = "programme_name"

    check_id = fields.Many2one(
        "spp.dci.duplication.check", required=True, ondelete="cascade", index=True
    )
    # copied from the check when the line is made (they never change after): the
    # figures group by them without a join, and no stored related field is recomputed
    partner_id = fields.Many2one("res.partner", string="Registrant", readonly=True, index=True)
    company_id = fields.Many2one("res.company", readonly=True, index=True)
    connection_id = fields.Many2one(
        "spp.dci.ibr.connection", string="IBR Connection", readonly=True, ondelete="set null"
    )
    # shown, not stored: a stored copy would be rewritten on every line whenever a
    # check's result is written (the lines are made as the check completes)
    result = fields.Selection(related="check_id.result", string="Check Result")
    check_date = fields.Datetime(readonly=True)
    programme_id = fields.Char(string="Programme ID")
    programme_name = fields.Char(string="Programme", index=True)
    enrolment_status = fields.Char()
    enrolment_date = fields.Char(help="As the IBR gave it.")
    end_date = fields.Char(help="As the IBR gave it.")
    enrolment_active = fields.Boolean(string="Active Enrolment")
    same_identifier = fields.Boolean(help="The record carries the identifier we searched.")
    member_identifier = fields.Char(string="IBR Member ID")
    person_name = fields.Char(string="Matched Person")
    sex = fields.Char()
    birth_date = fields.Char()
    identifiers = fields.Char(string="Identifiers in the IBR")
    # the IBR's ISO dates as dates, shown in the reader's format (empty when unreadable)
    enrolled_on = fields.Date(compute="_compute_dates")
    ended_on = fields.Date(compute="_compute_dates")
    born_on = fields.Date(compute="_compute_dates")

    @api.depends("enrolment_date", "end_date", "birth_date")
    def _compute_dates(self):
        for line in self:
            line.enrolled_on = _iso_date(line.enrolment_date)
            line.ended_on = _iso_date(line.end_date)
            line.born_on = _iso_date(line.birth_date)

    _date_index = models.Index("(check_date DESC, id DESC)")

    @staticmethod
    def _vals(check, line):
        """Create values of one core ``MatchLine`` of ``check``."""
        vals = {name: getattr(line, name) or False for name in _TEXT_FIELDS}
        vals.update(
            check_id=check.id,
            partner_id=check.partner_id.id,
            company_id=check.company_id.id,
            connection_id=check.data_source_id.id,
            check_date=check.check_date,
            enrolment_active=line.active,
            same_identifier=line.same_identifier,
        )
        return vals
