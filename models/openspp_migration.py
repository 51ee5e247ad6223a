"""Taking over a database where OpenSPP2's ``spp_dci_client_ibr`` ran.

Run by ``migrations/19.0.2.1.0`` when this module replaces upstream's
(19.0.2.0.0) under the same name; callable again by hand, it changes
nothing the second time. What it does is listed in the README ("Coming
from OpenSPP2").
"""

import logging

from odoo import api, models
from odoo.tools import SQL
from odoo.tools.sql import column_exists, table_exists

from ..dci.errors import DCIError
from ..dci.keys import public_key_from_pem

_logger = logging.getLogger(__name__)

LEGACY_COLUMN = "openspp2_data_source_id"


def pre_migrate(cr):
    """Before the models load: upstream's checks point ``data_source_id`` at
    ``spp.dci.data.source``; ours points at ``spp.dci.ibr.connection``. Keep
    the old ids aside and free the column, so its foreign key can change."""
    if not column_exists(cr, "spp_dci_duplication_check", "data_source_id"):
        return
    cr.execute(
        """SELECT con.conname FROM pg_constraint con
             JOIN pg_class target ON target.oid = con.confrelid
            WHERE con.conrelid = 'spp_dci_duplication_check'::regclass
              AND con.contype = 'f' AND target.relname = 'spp_dci_data_source'"""
    )
    constraints = [row[0] for row in cr.fetchall()]
    if not constraints:
        return  # already ours
    if not column_exists(cr, "spp_dci_duplication_check", LEGACY_COLUMN):
        cr.execute("ALTER TABLE spp_dci_duplication_check ADD COLUMN openspp2_data_source_id int4")
    for name in constraints:
        cr.execute(
            SQL("ALTER TABLE spp_dci_duplication_check DROP CONSTRAINT %s", SQL.identifier(name))
        )
    cr.execute(
        """UPDATE spp_dci_duplication_check
               SET openspp2_data_source_id = data_source_id, data_source_id = NULL
             WHERE data_source_id IS NOT NULL"""
    )
    _logger.info("OpenSPP2 checks: %s data source reference(s) set aside", cr.rowcount)


class OpenSpp2Migration(models.AbstractModel):
    _name = "spp.dci.ibr.openspp2.migration"
    _description = "Migration from OpenSPP2's IBR client"

    @api.model
    def _migrate(self):
        """After the models load: connections from the old data sources,
        senders completed, checks that could never be answered failed."""
        self._migrate_data_sources()
        self._migrate_senders()
        self._fail_unanswerable_checks()
        self._date_completed_checks()

    def _migrate_data_sources(self):
        cr = self.env.cr
        if not column_exists(cr, "spp_dci_duplication_check", LEGACY_COLUMN):
            return
        cr.execute(
            """SELECT DISTINCT openspp2_data_source_id FROM spp_dci_duplication_check
                 WHERE openspp2_data_source_id IS NOT NULL AND data_source_id IS NULL"""
        )
        old_ids = [row[0] for row in cr.fetchall()]
        if not old_ids:
            return
        sources = {}
        if table_exists(cr, "spp_dci_data_source"):
            cr.execute(
                """SELECT id, name, base_url, our_sender_id, receiver_id, timeout
                     FROM spp_dci_data_source WHERE id = ANY(%s)""",
                (old_ids,),
            )
            sources = {row[0]: row[1:] for row in cr.fetchall()}
        connections = self.env["spp.dci.ibr.connection"].with_context(active_test=False)
        for old_id in old_ids:
            name, base_url, our_sender_id, receiver_id, timeout = sources.get(
                old_id, (None, None, None, None, None)
            )
            url = base_url if (base_url or "").startswith(("http://", "https://")) else None
            connection = connections.create(
                {
                    "name": self.env._(
                        "%(name)s (from OpenSPP2)", name=name or f"data source {old_id}"
                    ),
                    "base_url": url or "https://ibr.invalid",
                    "our_sender_id": our_sender_id or "openspp",
                    "receiver_id": receiver_id or False,
                    "timeout": timeout if (timeout or 0) > 0 else 30,
                    # no signing key and no trusted sender yet: an administrator
                    # completes it and un-archives it
                    "active": False,
                }
            )
            self.env["spp.dci.duplication.check"].flush_model(["data_source_id"])
            cr.execute(
                """UPDATE spp_dci_duplication_check SET data_source_id = %s
                     WHERE openspp2_data_source_id = %s AND data_source_id IS NULL""",
                (connection.id, old_id),
            )
        self.env["spp.dci.duplication.check"].invalidate_model(["data_source_id"])

    def _migrate_senders(self):
        """Upstream left ``algorithm`` empty on pasted keys: take the key's own."""
        senders = self.env["spp.dci.ibr.sender"].with_context(active_test=False)
        for sender in senders.search([("algorithm", "=", False), ("public_key", "!=", False)]):
            try:
                sender.algorithm = public_key_from_pem(sender.public_key).algorithm
            except DCIError as exc:
                sender.last_fetch_error = exc.message

    def _fail_unanswerable_checks(self):
        """Upstream matched answers by ``notes ilike correlation_id``, and its
        checks carry none of our ids: a check it left waiting can never be
        answered. Fail it with a reason, so an officer retries it."""
        waiting = self.env["spp.dci.duplication.check"].search(
            [
                ("state", "=", "checking"),
                ("reference_id", "=", False),
                ("transaction_id", "=", False),
                ("correlation_id", "=", False),
            ]
        )
        waiting.write(
            {
                "state": "failed",
                "error_message": self.env._(
                    "Sent by the previous IBR module, whose answers cannot be matched to "
                    "it. Retry the check."
                ),
            }
        )

    def _date_completed_checks(self):
        """Upstream's completed checks have no ``completed_at``: date them by
        their last write (their answer), so that a result's age counts, and
        a decision on them records when the result came."""
        checks = self.env["spp.dci.duplication.check"]
        checks.flush_model(["state", "completed_at"])
        self.env.cr.execute(
            """UPDATE spp_dci_duplication_check
                  SET completed_at = coalesce(write_date, check_date, create_date)
                WHERE state = 'completed' AND completed_at IS NULL"""
        )
        checks.invalidate_model(["completed_at"])
