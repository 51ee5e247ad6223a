"""What an IBR told us about subscribed registrants, and enrolments we reported.

Every ``notify`` event is recorded, applied or not: one that belongs to an
active subscription of ours becomes a new completed check for its registrant
(the IBR's record read like a search answer) and a message on the
registrant; one that matches no subscription is kept as ``unmatched`` and
changes nothing. Nothing is logged but ids.
"""

import json
import logging

from odoo import api, fields, models
from odoo.fields import Domain
from odoo.tools import format_datetime

from ..dci.interpret import person_identifier
from .groups import PII_GROUP

_logger = logging.getLogger(__name__)


class DciIbrNotification(models.Model):
    _name = "spp.dci.ibr.notification"
    _description = "IBR Notification"
    _order = "id desc"

    sender_id = fields.Char(string="IBR Sender ID", readonly=True)
    company_id = fields.Many2one(
        "res.company",
        readonly=True,
        index=True,
        help="The company of the subscription it applies to (empty: none matched).",
    )
    subscription_id = fields.Many2one(
        "spp.dci.ibr.subscription", readonly=True, index="btree_not_null", ondelete="set null"
    )
    partner_id = fields.Many2one(
        "res.partner", string="Registrant", readonly=True, ondelete="set null"
    )
    check_id = fields.Many2one(
        "spp.dci.duplication.check", string="Resulting Check", readonly=True, ondelete="set null"
    )
    transaction_id = fields.Char(string="Transaction ID", readonly=True, index=True)
    reference_id = fields.Char(string="Reference ID", readonly=True)
    event_type = fields.Char(readonly=True)
    state = fields.Selection(
        [("applied", "Applied"), ("unmatched", "No Subscription")], required=True, readonly=True
    )
    item_json = fields.Text(string="Event", readonly=True, groups=PII_GROUP)
    item_pretty = fields.Text(
        string="Event (formatted)", compute="_compute_item_pretty", groups=PII_GROUP
    )

    @api.depends("event_type", "partner_id", "create_date")
    def _compute_display_name(self):
        for note in self:
            values = {
                "event": note.event_type or self.env._("Event"),
                "date": format_datetime(self.env, note.create_date, dt_format="short"),
            }
            note.display_name = (
                self.env._(
                    "%(event)s for %(registrant)s, %(date)s",
                    registrant=note.partner_id.display_name,
                    **values,
                )
                if note.partner_id
                else self.env._(
                    "%(event)s from %(sender)s, %(date)s", sender=note.sender_id, **values
                )
            )

    @api.depends("item_json")
    def _compute_item_pretty(self):
        for note in self:
            try:
                note.item_pretty = json.dumps(
                    json.loads(note.item_json), indent=2, ensure_ascii=False
                )
            except (TypeError, ValueError):
                note.item_pretty = note.item_json

    @api.model
    def _apply_notify(self, request, sender):
        """Apply a verified ``NotifyEventRequest`` from ``sender``; return the log rows."""
        items = request.notify_event
        subs = self.env["spp.dci.ibr.subscription"]
        mine = Domain("state", "=", "active") & Domain(
            "connection_id.ibr_sender_id", "=", sender.id
        )
        codes = [(i.model_extra or {}).get("subscription_code") for i in items]
        codes = [c if isinstance(c, str) else None for c in codes]
        by_code = {
            s.code: s for s in subs.search(mine & Domain("code", "in", [c for c in codes if c]))
        }
        people = [self._identifiers_of(i) for i in items]
        wanted_types = {t for ids in people for t, _v in ids}
        by_person = {}
        if wanted_types:
            for sub in subs.sudo().search(
                mine & Domain("identifier_type", "in", list(wanted_types))
            ):
                key = ((sub.identifier_type or "").upper(), sub.identifier_value or "")
                by_person.setdefault(key, sub.with_env(subs.env))
        rows = []
        for item, code, persons in zip(items, codes, people, strict=True):
            sub = by_code.get(code) or next((by_person[p] for p in persons if p in by_person), None)
            row = {
                "sender_id": sender.sender_id,
                "transaction_id": request.transaction_id,
                "reference_id": item.reference_id[:255],
                "event_type": (item.data.reg_event_type or "")[:100] or False,
                "item_json": json.dumps(item.dump(), ensure_ascii=False),
                "state": "unmatched",
            }
            if sub is not None:
                check = sub._apply_event(item, request.transaction_id)
                row.update(
                    state="applied",
                    company_id=sub.company_id.id,
                    subscription_id=sub.id,
                    partner_id=sub.partner_id.id,
                    check_id=check.id,
                )
            rows.append(row)
        unmatched = sum(1 for r in rows if r["state"] == "unmatched")
        if unmatched:
            _logger.warning(
                "%s notify event(s) from %s match no active subscription (recorded)",
                unmatched,
                sender.sender_id,
            )
        return self.sudo().create(rows)

    @staticmethod
    def _identifiers_of(item):
        records = item.data.reg_records
        records = records if isinstance(records, list) else [records]
        return [p for p in map(person_identifier, records) if p]


class DciIbrEnrolmentUpdate(models.Model):
    _name = "spp.dci.ibr.enrolment.update"
    _description = "IBR Enrolment Report"
    _order = "id desc"

    connection_id = fields.Many2one("spp.dci.ibr.connection", readonly=True, required=True)
    company_id = fields.Many2one(related="connection_id.company_id", store=True, index=True)
    partner_ids = fields.Many2many("res.partner", string="Registrants", readonly=True)
    transaction_id = fields.Char(string="Transaction ID", readonly=True)
    correlation_id = fields.Char(string="Correlation ID", readonly=True)
    beneficiary_count = fields.Integer(readonly=True)
    accepted_count = fields.Integer(readonly=True)
    state = fields.Selection(
        [("sent", "Answered"), ("failed", "Failed")], required=True, readonly=True
    )
    error_message = fields.Text(readonly=True)
    answer_json = fields.Text(string="IBR Answer", readonly=True, groups=PII_GROUP)

    @api.depends("connection_id", "beneficiary_count", "create_date")
    def _compute_display_name(self):
        for report in self:
            values = {
                "connection": report.connection_id.display_name,
                "n": report.beneficiary_count,
                "date": format_datetime(self.env, report.create_date, dt_format="short"),
            }
            report.display_name = (
                self.env._("1 enrolment reported to %(connection)s, %(date)s", **values)
                if report.beneficiary_count == 1
                else self.env._("%(n)s enrolments reported to %(connection)s, %(date)s", **values)
            )
