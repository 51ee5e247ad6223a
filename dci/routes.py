"""The callback routes an IBR posts to: one table, read by every side.

Each route is its path under our callback base (``on-search`` ...), the
header ``action`` its messages carry, their message schema, and the name the
receivers give its handling (``search``: the Odoo service's
``_apply_search``). The CLI's listener, the Odoo routers, the callback
service's dispatch and the connection's callback URLs are all made from it:
a new callback route is one line here, one apply method in the service.

A peer that appends ``/on-<action>`` to the ``sender_uri`` it was given
(OpenG2P's G2P-Connect) reaches a route by an alias: ``<path>/<suffix>``
when it was given the route's full URL, ``<suffix>`` when it was given our
callback base (``on-txn-status`` for the status route). Aliases are served
beside the paths; the route is the same.
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
    suffix: str = ""  # what a peer appends to sender_uri for it ("on-<request action>")

    @property
    def aliases(self):
        """The other paths a suffix-appending peer posts this route's messages to."""
        if not self.suffix:
            return ()
        return tuple(
            p for p in dict.fromkeys((f"{self.path}/{self.suffix}", self.suffix)) if p != self.path
        )

    @property
    def paths(self):
        return (self.path, *self.aliases)


CALLBACK_ROUTES = (
    CallbackRoute(
        "on-search", "on-search", SearchResponse, "search", answers_checks=True, suffix="on-search"
    ),
    CallbackRoute(
        "on-subscribe", "on-subscribe", SubscribeResponse, "subscribe", suffix="on-subscribe"
    ),
    CallbackRoute(
        "on-unsubscribe",
        "on-unsubscribe",
        UnsubscribeResponse,
        "unsubscribe",
        suffix="on-unsubscribe",
    ),
    CallbackRoute("notify", "notify", NotifyEventRequest, "notify"),
    CallbackRoute(
        "txn/on-status", "txn-on-status", TxnStatusResponse, "txn_status", suffix="on-txn-status"
    ),
)
_BY_PATH = {path: route for route in CALLBACK_ROUTES for path in route.paths}


def route_for(path):
    """The route at ``path`` (``"on-search"``, ``"/txn/on-status"`` ...), or
    ``None``."""
    return _BY_PATH.get(path.strip("/"))
