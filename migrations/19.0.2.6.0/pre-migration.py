"""19.0.2.6.0: the plain ``is_latest`` index goes (no plan used it: the
default list is served by a partial index on its sort order instead), and
``pg_trgm`` is created when allowed (identifier searches by trigram index)."""

from odoo.modules.registry import Registry

from odoo.addons.spp_dci_client_ibr.hooks import ensure_trigram


def migrate(cr, version):
    if not version:
        return
    cr.execute("DROP INDEX IF EXISTS spp_dci_duplication_check__is_latest_index")
    ensure_trigram(cr, Registry(cr.dbname))
