"""19.0.2.6.0: one latest check per registrant and connection; batch figures kept.

Before, only Retry and Reset chained attempts: every check of a monthly
sweep stayed "latest". The chains are rebuilt from creation order, a range
of registrants per statement, committed after each (one UPDATE of millions
of rows would hold one transaction for minutes and double the table: here
autovacuum reclaims each chunk's old rows while the next runs; rebuilding
again gives the same result, so a migration stopped midway can be re-run).
The batches' figures start from what their checks are now.
"""

from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    if not version:
        return
    env = api.Environment(cr, SUPERUSER_ID, {})
    env["spp.dci.duplication.check"]._fix_attempt_chains(after_chunk=cr.commit)
    env["spp.dci.check.request.tally"]._rebuild()
