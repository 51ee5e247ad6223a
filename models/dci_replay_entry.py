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

    sender_id = fields.Char(string="Sender ID", required=True)
    message_id = fields.Char(string="Message ID", required=True)
    digest = fields.Char(required=True)
    keep_until = fields.Datetime(required=True, index=True)

    # message ids have no length limit in the spec: the index holds their digest
    _sender_message_digest_unique = models.UniqueIndex("(sender_id, md5(message_id))")

    @api.model
    def _cron_purge(self):
        self.search([("keep_until", "<", fields.Datetime.now())]).unlink()


class OdooReplayGuard(ReplayGuard):
    """The core's replay guard interface over ``spp.dci.replay.entry``."""

    def __init__(self, env):
        self.model = env["spp.dci.replay.entry"]

    def lookup(self, sender_id, message_id):
        self.model.flush_model()
        self.model.env.cr.execute(
            """SELECT digest FROM spp_dci_replay_entry
                WHERE sender_id = %s AND md5(message_id) = md5(%s)""",
            (sender_id, message_id),
        )
        row = self.model.env.cr.fetchone()
        return row[0] if row else None

    def remember(self, sender_id, message_id, digest, keep_until):
        # ON CONFLICT: a concurrent delivery of the same message makes
        # PostgreSQL raise a serialization failure here, and Odoo retries the
        # request, which then sees this row and answers "duplicate". That is
        # expected, not an error to log.
        self.model.flush_model()
        self.model.env.cr.execute(
            """INSERT INTO spp_dci_replay_entry (sender_id, message_id, digest, keep_until)
               VALUES (%s, %s, %s, to_timestamp(%s) AT TIME ZONE 'UTC')
               ON CONFLICT (sender_id, md5(message_id)) DO NOTHING""",
            (sender_id, message_id, digest, keep_until),
            log_exceptions=False,
        )
