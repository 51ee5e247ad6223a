"""The pydantic schemas of the SPDCI IBR API, for routers and developers.

    from odoo.addons.spp_dci_client_ibr.schemas import SearchResponse, DCIEnvelope

The models are the protocol core's (``dci/schemas.py``, plain Python, no
Odoo): this package is where Odoo code imports them from, so the core can
move without breaking it. ``DCIEnvelope`` is defined here.
"""

from ..dci import schemas as _core
from ..dci.schemas import *  # noqa: F403 - the core's public schemas, as they are
from .envelope import DCIEnvelope

__all__ = [*_core.__all__, "DCIEnvelope"]
