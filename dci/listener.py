"""A local HTTP endpoint that receives callbacks for the CLI.

Each POST runs through :func:`dci.inbound.accept` with the action and
message schema of its path (``routes``; by default only ``/on-search``);
accepted messages are handed to ``on_accept``, refused ones to ``on_refuse``
with the error, and the peer gets the matching ACK or ERR acknowledgement.
Encrypted callbacks are opened with ``decryption_keys``.
"""

import threading
from http.server import ThreadingHTTPServer

from . import messages
from .errors import DCIError
from .httpserver import JsonRequestHandler
from .inbound import JSON_ONLY, accept
from .replay import InMemoryReplayGuard
from .routes import CALLBACK_ROUTES

__all__ = ["ALL_ROUTES", "CallbackListener"]

# path -> (action, message schema): the on-search route alone, or every route
ALL_ROUTES = {
    f"/{path}": (route.action, route.schema) for route in CALLBACK_ROUTES for path in route.paths
}
SEARCH_ROUTES = {"/on-search": ALL_ROUTES["/on-search"]}


class CallbackListener:
    def __init__(
        self,
        trust,
        *,
        our_id,
        on_accept,
        on_refuse,
        allow_unsigned=False,
        policy=None,
        host="127.0.0.1",
        port=0,
        routes=None,
        decryption_keys=(),
        require_encryption=False,
        media_types=JSON_ONLY,
    ):
        self.trust = trust
        self.our_id = our_id
        self.on_accept = on_accept
        self.on_refuse = on_refuse
        self.allow_unsigned = allow_unsigned
        self.policy = policy
        self.guard = InMemoryReplayGuard()
        self.routes = dict(routes or SEARCH_ROUTES)
        self.decryption_keys = tuple(decryption_keys)
        self.require_encryption = require_encryption
        self.media_types = tuple(media_types)
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self.base_url = f"http://{host}:{self._server.server_address[1]}"
        self.url = self.base_url + "/on-search"

    def url_for(self, path):
        return self.base_url + path

    def receive(self, raw, path="/on-search"):
        """Check one callback; return ``(http_status, ack)``."""
        route = self.routes.get(path)
        if route is None and len(self.routes) == 1:  # a one-route listener takes any path
            route = next(iter(self.routes.values()))
        if route is None:
            return 404, {"errors": [{"code": "not_found", "message": path[:200]}]}
        action, model = route
        try:
            accepted = accept(
                raw,
                action=action,
                message_model=model,
                our_id=self.our_id,
                trust=self.trust,
                replay_guard=self.guard,
                policy=self.policy,
                allow_unsigned=self.allow_unsigned,
                callback="auto",
                decryption_keys=self.decryption_keys,
                require_encryption=self.require_encryption,
            )
        except DCIError as exc:
            self.on_refuse(exc)
            return exc.http_status, messages.err_ack(exc)
        if not accepted.is_duplicate:
            self.on_accept(accepted)
        return 200, messages.ack()

    def __enter__(self):
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()


def _handler_for(listener):
    class Handler(JsonRequestHandler):
        media_types = listener.media_types

        def do_POST(self):
            raw = self.read_body()
            if raw is not None:  # None: refused by its headers, already answered
                self.reply(*listener.receive(raw, self.path))

    return Handler
