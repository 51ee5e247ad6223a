"""Deliveries we refused or could not apply, per IBR sender: what an
administrator needs to see why answers do not arrive.

Only ids and protocol codes are kept, never message content. Repeats of the
same refusal (trusted sender or none, route, code) within a clock hour add to
one row, which keeps the ids the latest one claimed: whatever anyone sends,
the table grows by at most one row per sender, route and code an hour.

Every refusal is counted, also when many arrive at once: the row is added to
by one atomic upsert (``INSERT ... ON CONFLICT ... DO UPDATE``) on a unique
index of that key. Two transactions adding to the same row wait for each
other; one whose snapshot cannot see the other's new row fails with a
serialization error, and Odoo runs its request again, which then counts it.
"""

from odoo import api, fields, models


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
    period_start = fields.Datetime(
        string="Hour", readonly=True, help="The clock hour this row counts refusals of."
    )

    # the key of an hourly row (rows kept from before have no hour: never added to)
    _hourly_key = models.UniqueIndex("(COALESCE(sender_id, 0), route, code, period_start)")

    @api.model
    def _record(self, route, error, envelope_ids, sender, checks_affected=0):
        """Add one refused delivery (``error`` a DCIError) to its hourly row;
        ``envelope_ids`` are the ids read from the refused message (unverified).
        Not the claimed sender id in the key: anyone can claim a new one each time."""
        now = fields.Datetime.now()
        values = {
            "sender": sender.id or None,
            "claimed": envelope_ids.get("sender_id") or None,
            "route": route,
            "status": error.http_status,
            "code": error.code,
            "reason": (error.message or "")[:250],
            "message_id": envelope_ids.get("message_id") or None,
            "transaction_id": envelope_ids.get("transaction_id") or None,
            "affected": checks_affected,
            "now": now,
            "hour": now.replace(minute=0, second=0, microsecond=0),
            "uid": self.env.uid,
        }
        self.env.cr.execute(
            """INSERT INTO spp_dci_delivery_log AS log
                   (sender_id, claimed_sender_id, route, http_status, code, reason, message_id,
                    transaction_id, count, checks_affected, first_at, last_at, period_start,
                    create_uid, create_date, write_uid, write_date)
               VALUES (%(sender)s, %(claimed)s, %(route)s, %(status)s, %(code)s, %(reason)s,
                       %(message_id)s, %(transaction_id)s, 1, %(affected)s, %(now)s, %(now)s,
                       %(hour)s, %(uid)s, %(now)s, %(uid)s, %(now)s)
               ON CONFLICT ((COALESCE(sender_id, 0)), route, code, period_start) DO UPDATE SET
                   count = log.count + 1,
                   checks_affected = log.checks_affected + EXCLUDED.checks_affected,
                   claimed_sender_id = EXCLUDED.claimed_sender_id,
                   http_status = EXCLUDED.http_status,
                   reason = EXCLUDED.reason,
                   message_id = EXCLUDED.message_id,
                   transaction_id = EXCLUDED.transaction_id,
                   last_at = EXCLUDED.last_at,
                   write_uid = EXCLUDED.write_uid,
                   write_date = EXCLUDED.write_date
               RETURNING id""",
            values,
            log_exceptions=False,  # its values are claimed by whoever sent the message
        )
        self.invalidate_model()
        return self.browse(self.env.cr.fetchone()[0])
