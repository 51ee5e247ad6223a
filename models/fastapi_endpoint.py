"""Registers the ``dci_api`` FastAPI app that serves the IBR callback routes."""

from odoo import fields, models

from ..routers import ibr_callback_router

PARAM_API_DOCS = "spp_dci_client_ibr.api_docs"


class FastapiEndpoint(models.Model):
    _inherit = "fastapi.endpoint"

    app = fields.Selection(selection_add=[("dci_api", "DCI API")], ondelete={"dci_api": "cascade"})

    def _prepare_fastapi_app_params(self):
        """The API's own documentation (``/docs``, ``/redoc``, ``/openapi.json``)
        is served only when the system parameter ``PARAM_API_DOCS`` is true
        (development): in production it would show anyone the routes and
        schemas. The app is built once per endpoint: after changing the
        parameter, sync the endpoint again or restart the server."""
        params = super()._prepare_fastapi_app_params()
        if self.app == "dci_api" and not self._api_docs_enabled():
            params.update(docs_url=None, redoc_url=None, openapi_url=None)
        return params

    def _api_docs_enabled(self):
        value = self.env["ir.config_parameter"].sudo().get_param(PARAM_API_DOCS, "")
        return str(value).strip().lower() in ("1", "true", "yes")

    def _get_fastapi_routers(self):
        """Cooperative: the routers other modules add to an app (``dci_api``
        included, e.g. a DCI server's) are kept; ours is appended once."""
        routers = list(super()._get_fastapi_routers())
        if self.app == "dci_api" and ibr_callback_router not in routers:
            routers.append(ibr_callback_router)
        return routers
