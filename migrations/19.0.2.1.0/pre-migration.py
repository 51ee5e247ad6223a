"""From OpenSPP2's spp_dci_client_ibr (19.0.2.0.0): free ``data_source_id``."""

from odoo.addons.spp_dci_client_ibr.models.openspp_migration import pre_migrate


def migrate(cr, version):
    if version:
        pre_migrate(cr)
