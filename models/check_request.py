"""An officer's "Check in IBR" on many registrants, turned into checks by the send job.

Creating tens of thousands of checks takes longer than a web request may
last, so a large selection is kept here as a list of registrant ids and
expanded chunk by chunk by the send job, which sends each chunk's checks
before it expands the next. The officer's click only stores this record.
A small selection is expanded at once, by the same code.
"""

import json

from odoo import api, fields, models

EXPAND_NOW = 500  # registrants expanded within the officer's request
EXPAND_CHUNK = 2000  # registrants expanded per step of the send job


class CheckRequest(models.Model):
    _name = "spp.dci.check.request"
    _description = "IBR Check Request (many registrants)"
    _order = "id desc"

    identifier_type = fields.Char(required=True, readonly=True)
    connection_id = fields.Many2one(
        "spp.dci.ibr.connection", string="IBR Connection", required=True, readonly=True
    )
    partner_ids_json = fields.Text(required=True, readonly=True, help="Registrant ids, in order.")
    partner_count = fields.Integer(string="Registrants", readonly=True)
    expanded_count = fields.Integer(string="Registrants Done", readonly=True)
    check_count = fields.Integer(string="Checks Created", readonly=True)
    skipped_count = fields.Integer(
        string="Skipped", readonly=True, help="Registrants without an identifier of this type."
    )
    state = fields.Selection(
        [("pending", "Being Queued"), ("done", "Queued")],
        default="pending",
        required=True,
        readonly=True,
        index=True,
    )
    check_ids = fields.One2many("spp.dci.duplication.check", "request_id", readonly=True)

    @api.model
    def _queue(self, partners, identifier_type, connection):
        """Record the officer's request; expand it now when it is small.
        (sudo: the officer creates it; its own counters are the job's to keep)"""
        request = self.sudo().create(
            {
                "identifier_type": identifier_type,
                "connection_id": connection.id,
                "partner_ids_json": json.dumps(partners.ids),
                "partner_count": len(partners),
            }
        )
        if len(partners) <= EXPAND_NOW:
            request._expand()
        self.env.ref("spp_dci_client_ibr.ir_cron_send_queued_checks").sudo()._trigger()
        return request

    def _expand(self, limit=None):
        """Create the queued checks of the next ``limit`` registrants (all by default)."""
        self.ensure_one()
        ids = json.loads(self.partner_ids_json)
        start = self.expanded_count
        chunk = ids[start : start + limit] if limit else ids[start:]
        partners = self.env["res.partner"].browse(chunk).exists()
        pairs = []
        for partner in partners:
            values = [v for t, v in partner._get_ibr_identifiers() if t == self.identifier_type]
            if values:
                pairs.append((partner.id, values[0]))
        checks = (
            self.env["spp.dci.duplication.check"]
            .with_user(self.create_uid)  # the officer asked: the checks are theirs
            .sudo()  # ...and the job may read identifiers the officer may not see
            .create(
                [
                    {
                        "partner_id": partner_id,
                        "identifier_type": self.identifier_type,
                        "identifier_value": value,
                        "data_source_id": self.connection_id.id,
                        "request_id": self.id,
                        "state": "queued",
                    }
                    for partner_id, value in pairs
                ]
            )
        )
        done = start + len(chunk)
        self.write(
            {
                "expanded_count": done,
                "check_count": self.check_count + len(checks),
                "skipped_count": self.skipped_count + len(chunk) - len(pairs),
                "state": "done" if done >= len(ids) else "pending",
            }
        )
        return checks

    @api.model
    def _expand_next(self):
        """One step of the send job: expand a chunk of the oldest pending request
        no other job is expanding. Returns how many registrants it went through."""
        self.flush_model()
        self.env.cr.execute(
            """SELECT id FROM spp_dci_check_request WHERE state = 'pending'
                ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED""",
            log_exceptions=False,
        )
        row = self.env.cr.fetchone()
        if not row:
            return 0
        request = self.browse(row[0])
        before = request.expanded_count
        request._expand(EXPAND_CHUNK)
        return request.expanded_count - before

    @api.model
    def _pending_registrants(self):
        pending = self.search_read([("state", "=", "pending")], ["partner_count", "expanded_count"])
        return sum(r["partner_count"] - r["expanded_count"] for r in pending)
