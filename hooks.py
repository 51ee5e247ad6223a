"""Install hook: PostgreSQL's ``pg_trgm``, when this database may have it.

With it, "Identifier contains" searches are served by a trigram index; without
it (the database user may not create extensions) they still work, by a scan.
"""

import logging

import psycopg2

from odoo.modules.db import has_trigram

_logger = logging.getLogger(__name__)


def ensure_trigram(cr, registry):
    """Create ``pg_trgm`` if it is missing and allowed; tell the registry, so the
    trigram indexes of this load are made. Never fails the install."""
    if registry.has_trigram:
        return
    try:
        with cr.savepoint(flush=False):
            cr.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except psycopg2.Error as exc:
        _logger.info("pg_trgm not created (%s): identifier searches will scan", exc.pgerror)
        return
    registry.has_trigram = has_trigram(cr)


def pre_init_hook(env):
    ensure_trigram(env.cr, env.registry)
