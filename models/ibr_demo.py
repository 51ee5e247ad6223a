"""Demo data that cannot be XML: the demo connection wired to the built-in
simulator (URLs, our signing key, the simulator's keys) and a batch ready to send.

Called by ``demo/ibr_demo_connection.xml`` at install, and by ``make odoo-demo``
(``tools/odoo_demo.py``) at every start, after it has set the two system
parameters to where the simulator and Odoo listen.
"""

import logging

from odoo import api, models

from ..dci.errors import DCIError
from .ibr_connection import CALLBACK_PATH

_logger = logging.getLogger(__name__)

DEMO_CONNECTION = "spp_dci_client_ibr.demo_ibr_connection"
DEMO_OFFICER = "spp_dci_client_ibr.demo_user_officer"
DEMO_CATEGORY = "spp_dci_client_ibr.demo_registrant_category"
DEMO_BATCH = "demo_check_batch"  # xml id (in this module) of the ready batch
PARAM_IBR_URL = "spp_dci_client_ibr.demo_ibr_url"
PARAM_ODOO_URL = "spp_dci_client_ibr.demo_odoo_url"
# where ``python -m dci simulate`` and ``odoo-bin`` listen by default
DEFAULT_IBR_URL = "http://127.0.0.1:8000"
DEFAULT_ODOO_URL = "http://127.0.0.1:8069"


class IbrConnectionDemo(models.Model):
    _inherit = "spp.dci.ibr.connection"

    @api.model
    def _demo_setup(self):
        """Point the demo connection at the simulator and at this server, give
        it a signing key if it has none that fits, and fetch the simulator's
        keys from its JWKS. Idempotent. Returns the demo connection (empty
        when the demo data is not installed); it is ready when the simulator
        answered, else its sender says why (Fetch Public Key repeats it)."""
        conn = self.env.ref(DEMO_CONNECTION, raise_if_not_found=False)
        if not conn:
            return self.browse()
        params = self.env["ir.config_parameter"].sudo()
        ibr_url = (params.get_param(PARAM_IBR_URL) or DEFAULT_IBR_URL).rstrip("/")
        odoo_url = (params.get_param(PARAM_ODOO_URL) or DEFAULT_ODOO_URL).rstrip("/")
        conn.write({"base_url": ibr_url, "callback_url": odoo_url + CALLBACK_PATH})
        sender = conn.ibr_sender_id
        sender.write({"jwks_url": ibr_url + "/.well-known/jwks.json"})
        if not conn.has_signing_key or conn.signing_key_mismatch:
            conn.action_generate_signing_key()
        try:
            sender._store_keys(sender._fetch_keys())
        except DCIError as exc:  # the simulator is not running yet: the sender says so
            sender.write({"last_fetch_error": exc.message})
            _logger.info("demo IBR sender: keys not fetched from %s: %s", ibr_url, exc.code)
        return conn

    @api.model
    def _demo_ready_batch(self):
        """One batch of every demo registrant by NID, as the demo officer asked
        it, its checks ``ready``: Run Checks sends them as one signed search.
        Registrants without a valid NID are recorded as skipped, with why."""
        if self.env.ref(f"spp_dci_client_ibr.{DEMO_BATCH}", raise_if_not_found=False):
            return False
        conn = self.env.ref(DEMO_CONNECTION)
        officer = self.env.ref(DEMO_OFFICER)
        partners = self.env["res.partner"].search(
            [("category_id", "in", self.env.ref(DEMO_CATEGORY).ids)], order="id"
        )
        requests = self.env["spp.dci.check.request"].with_user(officer).sudo()
        request = requests.create(
            {
                "identifier_type": "NID",
                "connection_id": conn.id,
                "partner_ids_json": str(partners.ids),
                "partner_count": len(partners),
            }
        )
        request._expand()  # queued checks of the registrants that have a NID...
        request.check_ids.write({"state": "ready"})  # ...waiting for the officer instead
        self.env["ir.model.data"].create(
            {
                "module": "spp_dci_client_ibr",
                "name": DEMO_BATCH,
                "model": request._name,
                "res_id": request.id,
                "noupdate": True,
            }
        )
        return request
