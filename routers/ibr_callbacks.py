"""HTTP routes IBRs call: signed callbacks in, acknowledgements out.

Handlers only move bytes: the body (size-capped, JSON only) goes to
``spp.dci.callback.service``, which verifies and applies it.

The ORM blocks, so it never runs on the event loop: the fastapi addon may
hand one loop to several requests at once, and a request blocked there (on
a row lock, say) would stall the others, even the one holding that lock.
Odoo work goes to the thread pool (``run_in_threadpool``), as for ``def``
routes; only reading the body, which is truly asynchronous, stays here.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from odoo.api import Environment

from odoo.addons.fastapi.dependencies import odoo_env

from ..dci import messages
from ..dci.errors import BodyTooLarge, EnvelopeError
from ..dci.inbound import check_request_headers

ibr_callback_router = APIRouter(tags=["IBR callbacks"])


async def _read_body(request, limit):
    """The raw body, refused early when it is not JSON or grows past ``limit``."""
    check_request_headers(
        request.headers.get("content-type"), request.headers.get("content-length"), limit
    )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(f"body exceeds the {limit} bytes allowed")
    return bytes(body)


async def _handle(request, env, route):
    service = env["spp.dci.callback.service"]
    try:
        raw = await _read_body(request, await run_in_threadpool(service.max_body_bytes))
    except EnvelopeError as exc:
        return JSONResponse(messages.err_ack(exc), status_code=exc.http_status)
    receive = getattr(service, route)
    status, body = await run_in_threadpool(receive, raw, request.headers.get("authorization"))
    return JSONResponse(body, status_code=status)


@ibr_callback_router.post("/ibr/on-search")
async def on_search(request: Request, env: Annotated[Environment, Depends(odoo_env)]):
    """Receive an IBR's signed on-search callback and acknowledge it."""
    return await _handle(request, env, "on_search")


@ibr_callback_router.post("/ibr/on-subscribe")
async def on_subscribe(request: Request, env: Annotated[Environment, Depends(odoo_env)]):
    """Receive an IBR's signed on-subscribe callback and acknowledge it."""
    return await _handle(request, env, "on_subscribe")


@ibr_callback_router.get("/ibr/jwks.json")
@ibr_callback_router.get("/.well-known/jwks.json")
def jwks(env: Annotated[Environment, Depends(odoo_env)]):
    """Publish our public signing keys so IBRs can verify our requests."""
    return JSONResponse(env["spp.dci.ibr.connection"]._public_jwks())
