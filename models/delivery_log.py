"""Deliveries we refused or could not apply, per IBR sender: what an
administrator needs to see why answers do not arrive.

Only ids and protocol codes are kept, never message content. Repeats of the
same refusal (trusted sender or none, route, code) within an hour add to one
row, which keeps the ids the latest one claimed: whatever anyone sends, the
table grows by at most one row per sender, route and code an hour.
"""

from odoo import api, fields, models

AGGREGATE_MINUTES = 60


class DeliveryLog(models.Model):
    _name = "spp.dci.delivery.log"
    _description = "Refused or Failed IBR Delivery"
    _order = "last_at desc, id desc"
    _rec_name = "code"

    sender_id = fields.Many2one(
        "spp.dci.ibr.sender", string="IBR Sender", ondelete="cascade", index="btree_not_null"
    )
    company_id = fields.Many2one(
        related="sender_id.company_id",
        store=True,
        index=True,
        help="The trusted sender's company (empty: a sender every company trusts, or none).",
    )
    claimed_sender_id = fields.Char(
        string="Sender ID Claimed", help="As the message's header gave it (not verified)."
    )
    route = fields.Char(required=True, help="The callback route, e.g. on-search.")
    http_status = fields.Integer(string="HTTP Status")
    code = fields.Char(string="Error Code", required=True)
    reason = fields.Char()
    message_id = fields.Char(string="Last Message ID")
    transaction_id = fields.Char(string="Last Transaction ID")
    count = fields.Integer(default=1, help="Deliveries refused alike within the hour.")
    checks_affected = fields.Integer(help="Waiting checks told their answer was refused.")
    first_at = fields.Datetime(default=fields.Datetime.now, required=True)
    last_at = fields.Datetime(default=fields.Datetime.now, required=True, index=True)

    @api.model
    def _record(self, route, error, envelope_ids, sender, checks_affected=0):
        """Add one refused delivery (``error`` a DCIError); ``envelope_ids`` are
        the ids read from the refused message (unverified)."""
        now = fields.Datetime.now()
        claimed = envelope_ids.get("sender_id") or False
        key = [  # not the claimed id: anyone can claim a new one each time
            ("sender_id", "=", sender.id or False),
            ("route", "=", route),
            ("code", "=", error.code),
            ("last_at", ">=", fields.Datetime.subtract(now, minutes=AGGREGATE_MINUTES)),
        ]
        vals = {
            "claimed_sender_id": claimed,
            "http_status": error.http_status,
            "reason": (error.message or "")[:250],
            "message_id": envelope_ids.get("message_id") or False,
            "transaction_id": envelope_ids.get("transaction_id") or False,
            "last_at": now,
        }
        row = self.sudo().search(key, limit=1)
        if row:
            vals.update(count=row.count + 1, checks_affected=row.checks_affected + checks_affected)
            row.write(vals)
            return row
        return self.sudo().create(
            dict(
                vals,
                sender_id=sender.id or False,
                route=route,
                code=error.code,
                checks_affected=checks_affected,
            )
        )
