"""spp_registry's roles get this module's rights, without depending on it.

OpenSPP2's module grants its duplication-check rights to spp_registry's
Viewer / Officer / Manager groups. This module has its own groups (and runs
without spp_registry), so whenever spp_registry's groups exist they are made
to imply ours: each registry role gets the matching IBR role. The link is
(re)made when the registry finishes loading, so it holds whether spp_registry
is installed before or after this module, and it is only written when missing.
OpenSPP2's personal-data group (``spp_dci.group_dci_admin``, which gates
identifier values and raw answers in its views) gets ours likewise.
"""

import logging

from odoo import api, models
from odoo.fields import Command

_logger = logging.getLogger(__name__)

# their group -> our group it implies
UPSTREAM_GROUPS = {
    "spp_registry.group_registry_viewer": "spp_dci_client_ibr.group_ibr_viewer",
    "spp_registry.group_registry_officer": "spp_dci_client_ibr.group_ibr_officer",
    "spp_registry.group_registry_manager": "spp_dci_client_ibr.group_ibr_manager",
    "spp_dci.group_dci_admin": "spp_dci_client_ibr.group_ibr_pii",
}


class ResGroups(models.Model):
    _inherit = "res.groups"

    def _register_hook(self):
        super()._register_hook()
        self._link_upstream_groups()

    @api.model
    def _link_upstream_groups(self):
        """Make each installed upstream group imply its IBR group; return the
        upstream groups that were linked now."""
        linked = self.browse()
        for theirs_xmlid, ours_xmlid in UPSTREAM_GROUPS.items():
            theirs = self.env.ref(theirs_xmlid, raise_if_not_found=False)
            ours = self.env.ref(ours_xmlid, raise_if_not_found=False)
            if not (theirs and ours) or theirs._name != "res.groups":
                continue
            if ours not in theirs.sudo().implied_ids:
                theirs.sudo().write({"implied_ids": [Command.link(ours.id)]})
                _logger.info("%s now implies %s", theirs_xmlid, ours_xmlid)
                linked |= theirs
        return linked
