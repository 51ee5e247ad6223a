"""From OpenSPP2's spp_dci_client_ibr (19.0.2.0.0): free ``data_source_id``.
From our 19.0.1.x: the replay guard's unique key becomes an index on the
message id's digest (message ids have no length limit)."""

from odoo.tools import SQL
from odoo.tools.sql import table_exists

from odoo.addons.spp_dci_client_ibr.models.openspp_migration import pre_migrate


def migrate(cr, version):
    if not version:
        return
    pre_migrate(cr)
    if table_exists(cr, "spp_dci_replay_entry"):
        cr.execute(
            """SELECT conname FROM pg_constraint
                WHERE conrelid = 'spp_dci_replay_entry'::regclass AND contype = 'u'"""
        )
        for (name,) in cr.fetchall():
            cr.execute(
                SQL("ALTER TABLE spp_dci_replay_entry DROP CONSTRAINT %s", SQL.identifier(name))
            )
