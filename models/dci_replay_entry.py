"""Persisted replay guard: the (sender, message_id) pairs already accepted.

Rows are written in the same transaction that applies a callback, so a
rolled-back delivery leaves no trace and its retry is treated as new.
"""

from odoo import api, fields, models

from ..dci.replay import ReplayGuard


class DciReplayEntry(models.Model):
    _name = "spp.dci.replay.entry"
    _description = "DCI Message Seen (replay guard)"
    _log_access = False

    sender_id = fields.Char(required=True)
    message_id = fields.Char(required=True)
    digest = fields.Char(required=True)
    keep_until = fields.Datetime(required=True, index=True)

    _sender_message_unique = models.Constraint(
        "UNIQUE(sender_id, message_id)", "This message was already received."
    )

    @api.model
    def _cron_purge(self):
        self.search([("keep_until", "<", fields.Datetime.now())]).unlink()


class OdooReplayGuard(ReplayGuard):
    """The core's replay guard interface over ``spp.dci.replay.entry``."""

    def __init__(self, env):
        self.model = env["spp.dci.replay.entry"]

    def lookup(self, sender_id, message_id):
        entry = self.model.search(
            [("sender_id", "=", sender_id), ("message_id", "=", message_id)], limit=1
        )
        return entry.digest if entry else None

    def remember(self, sender_id, message_id, digest, keep_until):
        # ON CONFLICT: a concurrent delivery of the same message makes
        # PostgreSQL raise a serialization failure here, and Odoo retries the
        # request, which then sees this row and answers "duplicate". That is
        # expected, not an error to log.
        self.model.flush_model()
        self.model.env.cr.execute(
            """INSERT INTO spp_dci_replay_entry (sender_id, message_id, digest, keep_until)
               VALUES (%s, %s, %s, to_timestamp(%s) AT TIME ZONE 'UTC')
               ON CONFLICT (sender_id, message_id) DO NOTHING""",
            (sender_id, message_id, digest, keep_until),
            log_exceptions=False,
        )
