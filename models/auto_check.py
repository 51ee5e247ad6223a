"""Checks nobody clicked for, per connection policy (``connection_policy.py``).

- Registration: a registrant created with an identifier of the connection's
  type, or whose identifier of that type is added or changed, is noted; when
  the transaction commits, all those noted are queued as one check request,
  like the officer's list action (a bulk import of 100,000 is one request,
  expanded by the send job). Nothing is sent inside the user's transaction.
- Re-check: a nightly job queues registrants whose latest completed check
  on the connection is older than N days, oldest first, at most M a day.

Automatic requests tell nobody when they finish: no officer asked.
"""

import logging

from odoo import api, fields, models
from odoo.tools import SQL

from .connection_policy import AUTO_ORIGINS

_logger = logging.getLogger(__name__)

ORIGINS = [
    ("officer", "Officer"),
    ("registration", "Registration"),
    ("recheck", "Nightly Re-check"),
    ("programme", "Programme"),
]
NOTED = "spp_dci_client_ibr:identifiers_changed"  # precommit data key: registrant ids


class CheckRequestOrigin(models.Model):
    _inherit = "spp.dci.check.request"

    origin = fields.Selection(ORIGINS, default="officer", required=True, readonly=True, index=True)
    programme_res_id = fields.Integer(
        string="Programme", readonly=True, help="The spp.program whose beneficiaries it checks."
    )

    @api.model_create_multi
    def create(self, vals_list):
        # set by the product's own callers (a context key, not a default: those
        # are the user's to give)
        origin = self.env.context.get("dci_request_origin")
        programme = self.env.context.get("dci_programme_id")
        for vals in vals_list:
            if origin:
                vals.setdefault("origin", origin)
            if programme:
                vals.setdefault("programme_res_id", programme)
        return super().create(vals_list)

    def _readable_by_asker(self, ids):
        # the product chose these registrants itself, in no user's name
        if self.origin in AUTO_ORIGINS:
            return (
                self.env["res.partner"].sudo().with_context(active_test=False).browse(ids).exists()
            )
        return super()._readable_by_asker(ids)

    def _notify_finished(self):
        if self.origin in AUTO_ORIGINS:
            self.sudo().notified_at = fields.Datetime.now()
            return
        super()._notify_finished()
        if self.origin == "programme":
            self._mark_programme_duplicates()

    def _mark_programme_duplicates(self):
        # the answers are applied whatever happens here: a failure is logged and
        # the programme's officer runs the check again
        try:
            with self.env.cr.savepoint():
                self.env["spp.dci.enrolment.gate"].sudo()._mark_duplicates(self)
        except Exception as exc:  # noqa: BLE001 - logged, never lost in the callback
            # the error's kind only: its text or traceback may quote the failed row
            # (registrants' names, identifiers)
            _logger.error(
                "Marking duplicates of programme %s failed (%s)",
                self.programme_res_id,
                type(exc).__name__,
            )

    @api.model
    def _queue_automatic(self, partners, connection, origin):
        """Queue one request of ``origin`` for those of ``partners`` that have an
        identifier of the connection's automatic type; return it (or nothing)."""
        partners = partners._ibr_with_identifier(connection.auto_identifier_type)
        if not partners:
            return self.browse()
        return self.with_context(dci_request_origin=origin)._queue(
            partners, connection.auto_identifier_type, connection
        )

    @api.model
    def _cron_recheck(self):
        """The nightly re-check: per connection asking for it, the registrants
        whose latest completed check is older than its N days, oldest first,
        up to what is left of its daily cap."""
        today = fields.Datetime.to_datetime(fields.Date.context_today(self))
        connections = self.env["spp.dci.ibr.connection"].search(
            [
                ("recheck_after_days", ">", 0),
                ("recheck_daily_cap", ">", 0),
                ("auto_identifier_type", "!=", False),
            ]
        )
        queued = dict(
            self._read_group(
                [
                    ("connection_id", "in", connections.ids),
                    ("origin", "=", "recheck"),
                    ("create_date", ">=", today),
                ],
                ["connection_id"],
                ["partner_count:sum"],
            )
        )
        requests = self.browse()
        for connection in connections:
            room = connection.recheck_daily_cap - queued.get(connection, 0)
            if room <= 0:
                continue
            due = self._due_for_recheck(connection, room)
            requests |= self._queue_automatic(due, connection, "recheck")
        return requests

    @api.model
    def _due_for_recheck(self, connection, limit):
        """Up to ``limit`` registrants whose latest completed check on
        ``connection`` is older than its re-check delay and that have no check
        waiting there, oldest first (one statement)."""
        self.env["spp.dci.duplication.check"].flush_model()
        older_than = fields.Datetime.subtract(
            fields.Datetime.now(), days=connection.recheck_after_days
        )
        self.env.cr.execute(
            SQL(
                """SELECT l.partner_id FROM (
                       SELECT DISTINCT ON (c.partner_id) c.partner_id, c.completed_at
                         FROM spp_dci_duplication_check c
                        WHERE c.data_source_id = %(conn)s AND c.state = 'completed'
                     ORDER BY c.partner_id, c.completed_at DESC
                   ) l
                   WHERE l.completed_at < %(older_than)s AND NOT EXISTS (
                       SELECT 1 FROM spp_dci_duplication_check w
                        WHERE w.partner_id = l.partner_id AND w.data_source_id = %(conn)s
                          AND w.state IN ('ready', 'queued', 'checking'))
                ORDER BY l.completed_at, l.partner_id LIMIT %(limit)s""",
                conn=connection.id,
                older_than=older_than,
                limit=limit,
            )
        )
        return self.env["res.partner"].browse([row[0] for row in self.env.cr.fetchall()])


class ResPartnerAutoCheck(models.Model):
    _inherit = "res.partner"

    # OpenSPP's identifiers (``reg_ids``) given or edited on the registrant; this
    # module's own identifier lines note their registrant themselves (below)
    @api.model_create_multi
    def create(self, vals_list):
        partners = super().create(vals_list)
        if any("reg_ids" in vals for vals in vals_list):
            partners._ibr_identifiers_changed()
        return partners

    def write(self, vals):
        result = super().write(vals)
        if "reg_ids" in vals:
            self._ibr_identifiers_changed()
        return result

    def _ibr_with_identifier(self, identifier_type):
        """Hook: those of these registrants that have a usable identifier of
        ``identifier_type`` (OpenSPP's ``reg_ids`` when present, else this
        module's identifier lines), in one search."""
        if not identifier_type:
            return self.browse()
        if "reg_ids" in self._fields:
            ids_model = self.env[self._fields["reg_ids"].comodel_name]
            condition = [("id_type_id.code", "=", identifier_type), ("value", "!=", False)]
            if "status" in ids_model._fields:
                condition.append(("status", "!=", "invalid"))
            domain = [("reg_ids", "any", condition)]
        else:
            domain = [
                (
                    "dci_identifier_ids",
                    "any",
                    [("id_type", "=", identifier_type), ("status", "=", "valid")],
                )
            ]
        return (
            self.sudo()
            .with_context(active_test=False)
            .search([("id", "in", self.ids), *domain])
            .with_env(self.env)
        )

    def _ibr_identifiers_changed(self):
        """Note these registrants for the automatic check; it is queued when
        the transaction commits, once for all those noted in it."""
        if not self or not self.env["spp.dci.ibr.connection"].sudo().search_count(
            [("auto_check_registration", "=", True)], limit=1
        ):
            return
        data = self.env.cr.precommit.data
        if NOTED not in data:
            data[NOTED] = set()
            self.env.cr.precommit.add(self._queue_registration_checks)
        data[NOTED].update(self.ids)

    def _queue_registration_checks(self):
        ids = sorted(self.env.cr.precommit.data.pop(NOTED, ()))
        partners = self.sudo().with_context(active_test=False).browse(ids).exists()
        requests = self.env["spp.dci.check.request"].sudo()
        for connection in (
            self.env["spp.dci.ibr.connection"]
            .sudo()
            .search([("auto_check_registration", "=", True)])
        ):
            mine = partners.filtered_domain(
                [("company_id", "in", [False, connection.company_id.id])]
            )
            requests._queue_automatic(mine, connection, "registration")


class RegistrantIdentifierAutoCheck(models.Model):
    _inherit = "spp.dci.registrant.identifier"

    @api.model_create_multi
    def create(self, vals_list):
        lines = super().create(vals_list)
        lines.partner_id._ibr_identifiers_changed()
        return lines

    def write(self, vals):
        before = self.partner_id
        result = super().write(vals)
        if {"partner_id", "id_type", "value", "status"} & set(vals):
            (before | self.partner_id)._ibr_identifiers_changed()
        return result
