"""19.0.2.7.0: checks taken over from OpenSPP2 before this version are dated.

Their completed checks had no ``completed_at``: a result's age (clearance,
re-checks) could not count, and deciding on one failed.
"""

from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    if version:
        api.Environment(cr, SUPERUSER_ID, {})[
            "spp.dci.ibr.openspp2.migration"
        ]._date_completed_checks()
