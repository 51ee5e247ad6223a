"""``verify_ibr_signature``: the FastAPI dependency OpenSPP 2 modules use on their own
IBR routes. It returns the verified sender id or raises an ``HTTPException``.

The verification is the core's (either signature scheme, the configured time policy,
one key refresh on an unknown kid), over the header and message exactly as received,
with the callback service's rules: trusted active senders only, their bearer token when
they have one, unsigned only under a development switch. It does not de-duplicate or
decrypt: the route that depends on it applies what it receives.
"""

import logging
from typing import Annotated

from fastapi import Depends, Header, HTTPException, status

from odoo.api import Environment

from odoo.addons.fastapi.dependencies import odoo_env

from ..dci.errors import DCIError, SenderInvalid, Unauthorized, UnknownKey
from ..dci.signatures import is_unsigned, verify_signature
from ..models.callback_service import OdooTrustStore
from ..schemas import DCIEnvelope

_logger = logging.getLogger(__name__)

__all__ = ["verify_ibr_signature"]


def _refused(code, detail):
    return HTTPException(status_code=code, detail=detail)


async def verify_ibr_signature(
    envelope: DCIEnvelope,
    env: Annotated[Environment, Depends(odoo_env)],
    authorization: Annotated[str | None, Header()] = None,
) -> str:
    """The sender id of ``envelope`` once its signature is verified (upstream's contract)."""
    header = envelope.header
    sender_id = header.get("sender_id")
    if not isinstance(sender_id, str) or not sender_id:
        _logger.warning("IBR message without a sender_id in its header")
        raise _refused(status.HTTP_400_BAD_REQUEST, "Missing sender_id in message header")
    service = env["spp.dci.callback.service"]
    trust = OdooTrustStore(env, authorization)
    if is_unsigned(envelope.signature):
        if service._allow_unsigned():
            _logger.warning(
                "DEVELOPMENT MODE: accepting an unsigned IBR message from %s", sender_id
            )
            return sender_id
        _logger.warning("IBR message from %s has no signature", sender_id)
        raise _refused(status.HTTP_401_UNAUTHORIZED, "Missing signature in envelope")
    try:
        keys = trust.keys_for(sender_id)
    except SenderInvalid:
        _logger.warning("IBR message from an unknown sender_id %s", sender_id)
        raise _refused(
            status.HTTP_401_UNAUTHORIZED, f"Unknown IBR sender_id: {sender_id}"
        ) from None
    except Unauthorized as exc:
        raise _refused(status.HTTP_401_UNAUTHORIZED, exc.message) from None
    message = envelope.message or {}
    policy = service._policy()
    try:
        try:
            verify_signature(envelope.signature, header, message, keys.get, policy)
        except UnknownKey:
            refreshed = trust.refresh(sender_id)
            if refreshed is None:
                raise
            verify_signature(envelope.signature, header, message, refreshed.get, policy)
    except DCIError as exc:
        _logger.warning("Invalid signature on an IBR message from %s: %s", sender_id, exc.code)
        raise _refused(status.HTTP_401_UNAUTHORIZED, f"Invalid signature: {exc.message}") from None
    _logger.info("IBR signature verified successfully for sender %s", sender_id)
    return sender_id
