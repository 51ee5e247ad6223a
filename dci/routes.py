"""The callback routes an IBR posts to: one table, read by every side.

Each route is its path under our callback base (``on-search`` ...), the
header ``action`` its messages carry, their message schema, and the name the
receivers give its handling (``search``: the Odoo service's
``_apply_search``). The CLI's listener, the Odoo routers, the callback
service's dispatch and the connection's callback URLs are all made from it:
a new callback route is one line here, one apply method in the service.
"""

from dataclasses import dataclass

from .schemas import (
    NotifyEventRequest,
    SearchResponse,
    SubscribeResponse,
    TxnStatusResponse,
    UnsubscribeResponse,
)

__all__ = ["CALLBACK_ROUTES", "CallbackRoute", "route_for"]


@dataclass(frozen=True)
class CallbackRoute:
    path: str  # under the callback base URL, e.g. "txn/on-status"
    action: str  # the header action of its messages, e.g. "txn-on-status"
    schema: type  # the message's pydantic model
    handler: str  # the receivers' name for it: service method ``_apply_<handler>``
    answers_checks: bool = False  # a refusal notes the checks it claims to answer


CALLBACK_ROUTES = (
    CallbackRoute("on-search", "on-search", SearchResponse, "search", answers_checks=True),
    CallbackRoute("on-subscribe", "on-subscribe", SubscribeResponse, "subscribe"),
    CallbackRoute("on-unsubscribe", "on-unsubscribe", UnsubscribeResponse, "unsubscribe"),
    CallbackRoute("notify", "notify", NotifyEventRequest, "notify"),
    CallbackRoute("txn/on-status", "txn-on-status", TxnStatusResponse, "txn_status"),
)
_BY_PATH = {route.path: route for route in CALLBACK_ROUTES}


def route_for(path):
    """The route at ``path`` (``"on-search"``, ``"/txn/on-status"`` ...), or
    ``None``."""
    return _BY_PATH.get(path.strip("/"))
