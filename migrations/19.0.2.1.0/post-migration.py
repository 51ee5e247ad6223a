"""From OpenSPP2's spp_dci_client_ibr (19.0.2.0.0): connections, senders, waiting checks."""

from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    if version:
        env = api.Environment(cr, SUPERUSER_ID, {})
        env["spp.dci.ibr.openspp2.migration"]._migrate()
