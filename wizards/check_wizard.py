"""Check one or many registrants in the IBR, choosing the identifier to search.

Before the officer confirms, the wizard lists, registrant by registrant,
the value that will be sent or why the registrant will be skipped; a value
typed there is used for this check and, where the registrants' identifiers
are this module's own lines (no OpenSPP ``reg_ids``), kept on the registrant.
"""

import json

from odoo import Command, api, fields, models
from odoo.exceptions import UserError

SAMPLE = 1000  # registrants whose identifiers the wizard summarises
PREVIEW = 200  # registrants listed one by one before the officer confirms
TAGS = 8  # more registrants than this are counted, not shown as tags


def _type_counts(partners):
    """``{identifier type: registrants having one}`` among the first ``SAMPLE``
    registrants (a glance, not a census, for huge selections), first seen first."""
    counts = {}
    for partner in partners[:SAMPLE]:
        for id_type in dict(partner._get_ibr_identifiers()):
            counts[id_type] = counts.get(id_type, 0) + 1
    return counts


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
        domain=[("is_ready", "=", True)],
        default=lambda self: self.env["spp.dci.ibr.connection"].search(
            [("is_ready", "=", True)], limit=1
        ),
    )
    has_ready_connection = fields.Boolean(compute="_compute_has_ready_connection")
    identifier_type = fields.Char(required=True, help="Which identifier to search by, e.g. NID.")
    identifier_value = fields.Char(
        help="For a single registrant: the value to search (prefilled from its identifiers)."
    )
    available_identifiers = fields.Text(compute="_compute_available_identifiers")
    partner_count = fields.Integer(compute="_compute_available_identifiers")
    line_ids = fields.One2many(
        "spp.dci.check.wizard.line",
        "wizard_id",
        string="What Will Be Sent",
        compute="_compute_line_ids",
        store=True,
        readonly=False,
    )
    send_count = fields.Integer(string="Will Be Checked", compute="_compute_counts")
    skip_count = fields.Integer(string="Will Be Skipped", compute="_compute_counts")
    count_summary = fields.Char(compute="_compute_counts")
    preview_note = fields.Char(compute="_compute_counts")

    def _compute_has_ready_connection(self):
        # the connection field's default and domain: a ready one the user may read
        ready = bool(self.env["spp.dci.ibr.connection"].search_count([("is_ready", "=", True)]))
        self.has_ready_connection = ready

    @api.depends("partner_ids", "selection_ids_json")
    def _compute_available_identifiers(self):
        for wizard in self:
            partners = wizard._selection()._origin  # the hook sees real records
            wizard.partner_count = len(partners)
            types = _type_counts(partners)
            lines = [
                self.env._("%(type)s: 1 registrant", type=t)
                if n == 1
                else self.env._("%(type)s: %(n)s registrants", type=t, n=n)
                for t, n in sorted(types.items())
            ]
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

    @api.depends("partner_ids", "selection_ids_json", "identifier_type")
    def _compute_line_ids(self):
        for wizard in self:
            id_type = (wizard.identifier_type or "").strip()
            commands = [Command.clear()]
            for partner in wizard._selection()._origin[:PREVIEW]:
                value, reason = partner._ibr_identifier_for(id_type)
                commands.append(
                    Command.create(
                        {
                            "partner_id": partner.id,
                            "identifier_value": value or False,
                            "found_value": value or False,
                            "skip_reason": reason or False,
                        }
                    )
                )
            wizard.line_ids = commands

    @api.depends("line_ids.identifier_value", "partner_count")
    def _compute_counts(self):
        for wizard in self:
            sent = len(wizard.line_ids.filtered("identifier_value"))
            skipped = len(wizard.line_ids) - sent
            wizard.send_count = sent
            wizard.skip_count = skipped
            checked = (
                self.env._("1 registrant will be checked")
                if sent == 1
                else self.env._("%(n)s registrants will be checked", n=sent)
            )
            wizard.count_summary = (
                self.env._("%(checked)s, 1 skipped.", checked=checked)
                if skipped == 1
                else self.env._("%(checked)s, %(n)s skipped.", checked=checked, n=skipped)
            )
            wizard.preview_note = (
                self.env._(
                    "Counted among the first %(n)s of %(total)s registrants; the others are "
                    "checked or skipped likewise, and the summary says how many.",
                    n=len(wizard.line_ids),
                    total=wizard.partner_count,
                )
                if wizard.partner_count > len(wizard.line_ids)
                else False
            )

    def _selection(self):
        """The selected registrants the officer may read, in the order selected
        (archived ones too). The ids come from the caller: one search keeps
        only those the officer's access rules and companies allow."""
        self.ensure_one()
        if self.selection_ids_json:
            try:
                ids = json.loads(self.selection_ids_json)
            except ValueError:
                ids = None
            if not isinstance(ids, list) or not all(type(i) is int for i in ids):
                raise UserError(self.env._("The selection is not a list of registrant ids."))
        else:
            ids = self.with_context(active_test=False).partner_ids._origin.ids
        # as the officer, also inside the stored compute of the lines (run as superuser)
        partners = self.env(su=False)["res.partner"].with_context(active_test=False)
        return partners._ibr_readable(ids)

    @api.onchange("partner_ids", "selection_ids_json", "identifier_type")
    def _onchange_prefill_value(self):
        """Suggest the identifier type most of the selection has (the first
        seen on a tie); for a single registrant, prefill its value."""
        partners = self._selection()._origin
        counts = _type_counts(partners) if not self.identifier_type else {}
        if counts:
            self.identifier_type = max(counts, key=counts.get)
        if len(partners) == 1:
            self.identifier_value = partners._ibr_identifier_for(self.identifier_type)[0]

    def _typed_values(self, partners):
        """``{partner id: value}`` the officer typed or changed in the list
        (or, for one registrant, in ``identifier_value``); only for registrants
        of the selection ``partners`` (a line names its registrant as the client
        sent it)."""
        selected = set(partners.ids)
        typed = {
            line.partner_id.id: line.identifier_value.strip()
            for line in self.line_ids
            if line.partner_id.id in selected
            and (line.identifier_value or "").strip()
            and line.identifier_value.strip() != (line.found_value or "")
        }
        value = (self.identifier_value or "").strip()
        if len(partners) == 1 and value and value != (self.line_ids[:1].found_value or ""):
            typed[partners.id] = value
        return typed

    def _keep_typed_values(self, id_type, typed):
        """Save typed values as the registrants' identifier lines, where the
        registrants' identifiers are this module's lines (no ``reg_ids``)."""
        partners = self.env["res.partner"].browse(list(typed))
        if "reg_ids" in partners._fields or not typed:
            return
        lines = self.env["spp.dci.registrant.identifier"]
        known = {
            (line.partner_id.id, line.value)
            for line in lines.sudo().search(
                [("partner_id", "in", partners.ids), ("id_type", "=", id_type)]
            )
        }
        lines.create(
            [
                {"partner_id": partner_id, "id_type": id_type, "value": value}
                for partner_id, value in typed.items()
                if (partner_id, value) not in known
            ]
        )

    def action_confirm(self):
        """Queue the checks (a large selection's are created by the send job)
        and say how many were queued and skipped."""
        self.ensure_one()
        checks = self.env["spp.dci.duplication.check"]
        id_type = (self.identifier_type or "").strip()
        connection = checks._ensure_runnable(self.connection_id)
        partners = self._selection()
        if not partners:
            raise UserError(self.env._("Select at least one registrant to check."))
        if not id_type:
            raise UserError(self.env._("Choose the identifier type to search by, e.g. NID."))
        typed = self._typed_values(partners)
        self._keep_typed_values(id_type, typed)
        request = self.env["spp.dci.check.request"]._queue(partners, id_type, connection, typed)
        if request.state == "done" and not request.check_count:
            raise UserError(
                self.env._(
                    "None of the selected registrants has an identifier of type %(type)s. "
                    "Pick another identifier type, or type the values in the list.",
                    type=id_type,
                )
            )
        return request._summary_notification()


class IbrCheckWizardLine(models.TransientModel):
    _name = "spp.dci.check.wizard.line"
    _description = "Registrant to Check in IBR"

    wizard_id = fields.Many2one("spp.dci.check.wizard", required=True, ondelete="cascade")
    partner_id = fields.Many2one("res.partner", string="Registrant", required=True, readonly=True)
    identifier_value = fields.Char(
        string="Value to Send", help="Type a value to check a registrant that has none."
    )
    found_value = fields.Char(readonly=True)
    skip_reason = fields.Char(string="Why Skipped", readonly=True)
    will_send = fields.Boolean(compute="_compute_will_send")

    @api.depends("identifier_value")
    def _compute_will_send(self):
        for line in self:
            line.will_send = bool((line.identifier_value or "").strip())
