"""Test helpers shared by the core suite and the Odoo suite (no Odoo here)."""

import sys
import threading
from http.server import ThreadingHTTPServer

from . import messages
from .httpserver import JsonRequestHandler
from .signatures import sign_envelope

__all__ = ["LoopbackServer", "answer_item", "signed_callback"]


def answer_item(reference_id, records=(), status="succ", *, timestamp=None, **extra):
    """One ``search_response`` item: ``records`` found for ``reference_id``
    (``succ``), or an item of another ``status`` without data."""
    item = {
        "reference_id": reference_id,
        "timestamp": timestamp or messages.now_iso(),
        "status": status,
    }
    if status == "succ":
        item["data"] = {"reg_type": messages.IBR_REG_TYPE, "reg_records": list(records)}
    item.update(extra)
    return item


def signed_callback(
    key, message, *, sender_id, receiver_id, action="on-search", status="succ", now=None, **header
):
    """A signed callback envelope (a dict) as an IBR posts it to us."""
    head = messages.callback_header(
        action, sender_id, status=status, receiver_id=receiver_id, **header
    )
    return sign_envelope(head, message, key, now=now)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # clients that hang up (timeouts, closed keep-alive connections) are expected
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LoopbackServer:
    """A tiny HTTP server on 127.0.0.1 whose answers a test scripts.

    ``routes`` maps a path to ``(status, headers, body_bytes)`` or a callable
    ``(handler, body) -> (status, headers, body_bytes)``; other paths get
    ``default`` (a 404 unless given); requests are recorded.
    """

    def __init__(self, routes, default=(404, {}, b"{}")):
        self.routes = routes
        self.default = default
        self.requests = []
        server = self

        # the core servers' handler (HTTP/1.1, quiet, replies sent at once); its
        # request checks are not used: a test scripts whatever it answers
        class Handler(JsonRequestHandler):
            timeout = None  # a test's connection may stay idle as long as it likes

            def _serve(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.requests.append((self.command, self.path, dict(self.headers), body))
                answer = server.routes.get(self.path, server.default)
                if callable(answer):
                    answer = answer(self, body)
                status, headers, payload = answer
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _serve

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
