"""Registers the ``dci_api`` FastAPI app that serves the IBR callback routes."""

from odoo import fields, models

from ..routers import ibr_callback_router


class FastapiEndpoint(models.Model):
    _inherit = "fastapi.endpoint"

    app = fields.Selection(selection_add=[("dci_api", "DCI API")], ondelete={"dci_api": "cascade"})

    def _get_fastapi_routers(self):
        """Cooperative: the routers other modules add to an app (``dci_api``
        included, e.g. a DCI server's) are kept; ours is appended once."""
        routers = list(super()._get_fastapi_routers())
        if self.app == "dci_api" and ibr_callback_router not in routers:
            routers.append(ibr_callback_router)
        return routers
