"""HTTP routes IBRs call: signed callbacks in, acknowledgements out.

The file, the router and its handlers carry the names OpenSPP2's module
uses (``routers/callback.py``, ``ibr_callback_router``,
``receive_ibr_search_response``, ``receive_ibr_subscribe_response``), so
code and documentation written for it find them here.

Handlers only move bytes: the body (JSON only, its length declared and
within the configured cap) goes to ``spp.dci.callback.service``, which
verifies and applies it. A body is never read past the cap, and a body
whose length is not declared (``Transfer-Encoding: chunked``) is refused
with HTTP 411 before any of it is read.

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
from ..dci.errors import BodyTooLarge, EnvelopeError, LengthRequired
from ..dci.inbound import JSON_ONLY, check_request_headers
from ..dci.routes import CALLBACK_ROUTES
from ..schemas import SearchResponseItem

__all__ = [
    "ibr_callback_router",
    "receive_ibr_notify",
    "receive_ibr_search_response",
    "receive_ibr_subscribe_response",
    "receive_ibr_txn_status",
    "receive_ibr_unsubscribe_response",
]

ibr_callback_router = APIRouter(tags=["DCI IBR Callback"])


async def _read_body(request, limit, media_types=JSON_ONLY):
    """The raw body, refused before reading when its type is none of
    ``media_types``, it declares no length or more than ``limit``; never more
    than that is read."""
    headers = request.headers
    if "transfer-encoding" in headers or not (headers.get("content-length") or "").strip():
        raise LengthRequired("the request must declare its body length (Content-Length)")
    declared = check_request_headers(
        headers.get("content-type"), headers.get("content-length"), limit, media_types
    )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > declared:
            raise BodyTooLarge(f"body exceeds its declared {declared} bytes")
    if len(body) != declared:
        raise EnvelopeError(f"body of {len(body)} bytes, {declared} declared")
    return bytes(body)


async def _handle(request, env, path):
    service = env["spp.dci.callback.service"]
    try:
        limit, media_types = await run_in_threadpool(
            lambda: (service.max_body_bytes(), service.callback_media_types())
        )
        raw = await _read_body(request, limit, media_types)
    except EnvelopeError as exc:
        return JSONResponse(messages.err_ack(exc), status_code=exc.http_status)
    status, body = await run_in_threadpool(
        service.receive, path, raw, request.headers.get("authorization")
    )
    return JSONResponse(body, status_code=status)


def _receiver(route):
    """The handler of one route of ``dci.routes.CALLBACK_ROUTES``."""

    async def receive(request: Request, env: Annotated[Environment, Depends(odoo_env)]):
        return await _handle(request, env, route.path)

    receive.__doc__ = f"Receive an IBR's signed {route.action} callback and acknowledge it."
    return receive


RECEIVERS = {route.path: _receiver(route) for route in CALLBACK_ROUTES}
for _route in CALLBACK_ROUTES:
    for _number, _path in enumerate(_route.paths):  # the aliases: peers appending /on-<action>
        ibr_callback_router.add_api_route(
            f"/ibr/{_path}",
            RECEIVERS[_route.path],
            methods=["POST"],
            name=f"receive_ibr_{_route.handler}" + (f"_alias{_number}" if _number else ""),
            include_in_schema=not _number,
        )

# the handlers' names in OpenSPP2's module (and ours for the other routes)
receive_ibr_search_response = RECEIVERS["on-search"]
receive_ibr_subscribe_response = RECEIVERS["on-subscribe"]
receive_ibr_unsubscribe_response = RECEIVERS["on-unsubscribe"]
receive_ibr_notify = RECEIVERS["notify"]
receive_ibr_txn_status = RECEIVERS["txn/on-status"]


@ibr_callback_router.get("/ibr/jwks.json")
@ibr_callback_router.get("/.well-known/jwks.json")
def jwks(env: Annotated[Environment, Depends(odoo_env)]):
    """Publish our public signing keys so IBRs can verify our requests."""
    return JSONResponse(env["spp.dci.ibr.connection"]._public_jwks())


def _process_ibr_search_result(env, result, source_registry, correlation_id):
    """Apply one ``search_response`` item of a *verified* callback; return the check.

    Upstream's override point, kept with its signature for code that calls it
    (``result`` a dict or a core ``SearchResponseItem``, ``source_registry`` the
    IBR's sender id, ``correlation_id`` the IBR's). It delegates to the model:
    the check is found by our reference, transaction or the correlation id
    (never by free text), must belong to a connection that trusts this sender
    and be waiting, and ``spp.dci.duplication.check._process_ibr_search_result``
    applies the item. Callbacks do not pass through this function: to change
    how answers are applied, inherit that model method, the real extension point.
    Returns the check that was updated, or an empty recordset.
    """
    item = result
    if not isinstance(item, SearchResponseItem):
        item = SearchResponseItem.model_validate(item)
    checks = env["spp.dci.duplication.check"]
    sender = env["spp.dci.ibr.sender"].get_by_sender_id(source_registry)
    if not sender:
        return checks
    [check] = checks._match_items([item], None, correlation_id)
    if not check or check.state != "checking" or check.data_source_id.ibr_sender_id != sender:
        return checks
    check._lock_rows()
    check._process_ibr_search_result(item)
    return check
