"""The core's own small HTTP servers (the CLI's callback listener, the IBR
simulator): JSON in and out, bodies refused by their headers before a byte
of them is read, and no client holding a thread for longer than it may."""

import time
from http.server import BaseHTTPRequestHandler

from . import messages
from .errors import DCIError, EnvelopeError, LengthRequired, RequestTimeout
from .inbound import JSON_ONLY, MAX_BODY_BYTES, check_request_headers

__all__ = ["JsonRequestHandler"]


class JsonRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # a reply is two writes (headers, then body): with Nagle's algorithm the body
    # waits for the peer's delayed ACK of the headers, about 40 ms per request
    disable_nagle_algorithm = True
    max_body_bytes = MAX_BODY_BYTES
    media_types = JSON_ONLY
    timeout = 10  # seconds a connection may stay silent (socketserver applies it)
    body_seconds = 30  # seconds a whole body may take to arrive, however it trickles

    def log_message(self, *args):  # quiet: the CLI prints its own progress
        pass

    def read_body(self):
        """The request body, or ``None`` once a refusal (an ERR ack) has been sent."""
        try:
            length = check_request_headers(
                self.headers.get("Content-Type"),
                self.headers.get("Content-Length"),
                self.max_body_bytes,
                self.media_types,
            )
            if length is None:
                raise LengthRequired("a Content-Length header is required")
            return self._read_within(length, time.monotonic() + self.body_seconds)
        except DCIError as exc:
            # the body stays unread, so this connection cannot carry another request
            self.close_connection = True
            self.reply(exc.http_status, messages.err_ack(exc))
            return None

    def _read_within(self, length, deadline):
        body = bytearray()
        try:
            while len(body) < length:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                self.connection.settimeout(min(remaining, self.timeout))
                chunk = self.rfile.read1(length - len(body))
                if not chunk:
                    raise EnvelopeError("the body ended before its Content-Length")
                body += chunk
        except TimeoutError:
            raise RequestTimeout("the body did not arrive in time") from None
        finally:
            self.connection.settimeout(self.timeout)
        return bytes(body)

    def reply(self, status, body):
        data = messages.json_bytes(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
