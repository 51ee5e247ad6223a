"""19.0.2.4.0: every IBR record belongs to a company.

Connections take the main company; checks and match lines their
connection's (else the main company). The columns are filled here, by SQL in
chunks, before the ORM adds them: it would otherwise compute the checks'
company one record at a time, and a year of checks is millions of rows.
"""

from odoo.tools import SQL
from odoo.tools.sql import column_exists, table_exists

CHUNK = 200_000
CHECK_COMPANY = SQL(
    "coalesce((SELECT c.company_id FROM spp_dci_ibr_connection c WHERE c.id = t.data_source_id),"
    " (SELECT id FROM res_company ORDER BY sequence, id LIMIT 1))"
)
MATCH_COMPANY = SQL(
    "(SELECT c.company_id FROM spp_dci_duplication_check c WHERE c.id = t.check_id)"
)


def _fill_in_chunks(cr, table, company):
    """``UPDATE table SET company_id = company`` over id ranges of ``CHUNK`` rows."""
    cr.execute(SQL("SELECT coalesce(min(id), 0), coalesce(max(id), 0) FROM %s", table))
    low, high = cr.fetchone()
    for start in range(low, high + 1, CHUNK):
        cr.execute(
            SQL(
                "UPDATE %s t SET company_id = %s"
                " WHERE t.id >= %s AND t.id < %s AND t.company_id IS NULL",
                table,
                company,
                start,
                start + CHUNK,
            )
        )


def migrate(cr, version):
    if not version or not table_exists(cr, "spp_dci_ibr_connection"):
        return
    for name in (
        "spp_dci_ibr_connection",
        "spp_dci_duplication_check",
        "spp_dci_duplication_match",
    ):
        if table_exists(cr, name) and not column_exists(cr, name, "company_id"):
            cr.execute(SQL("ALTER TABLE %s ADD COLUMN company_id integer", SQL.identifier(name)))
    cr.execute(
        "UPDATE spp_dci_ibr_connection SET company_id = "
        "(SELECT id FROM res_company ORDER BY sequence, id LIMIT 1) WHERE company_id IS NULL"
    )
    _fill_in_chunks(cr, SQL.identifier("spp_dci_duplication_check"), CHECK_COMPANY)
    if table_exists(cr, "spp_dci_duplication_match"):
        _fill_in_chunks(cr, SQL.identifier("spp_dci_duplication_match"), MATCH_COMPANY)
