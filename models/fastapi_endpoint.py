"""Registers the ``dci_api`` FastAPI app that serves the IBR callback routes."""

from odoo import fields, models

from ..routers import ibr_callback_router


class FastapiEndpoint(models.Model):
    _inherit = "fastapi.endpoint"

    app = fields.Selection(selection_add=[("dci_api", "DCI API")], ondelete={"dci_api": "cascade"})

    def _get_fastapi_routers(self):
        """Extension point: add routers to the ``dci_api`` app by overriding this."""
        if self.app == "dci_api":
            return [ibr_callback_router]
        return super()._get_fastapi_routers()
