"""19.0.2.6.0: the plain ``is_latest`` index goes (no plan used it: the
default list is served by a partial index on its sort order instead)."""


def migrate(cr, version):
    if version:
        cr.execute("DROP INDEX IF EXISTS spp_dci_duplication_check__is_latest_index")
