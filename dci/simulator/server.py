"""A reference IBR speaking the SPDCI IBR API over real HTTP, for demos and tests.

    with IbrSimulator(algorithm="ed25519", page_size=1) as sim:
        ...  # sim.url, sim.jwks_url, sim.signing_key, sim.stats

Asynchronous searches are acknowledged at once and answered by signed
``on-search`` callbacks POSTed to the request's ``sender_uri`` from a worker
thread, if that address is allowed: loopback, or a host in
``callback_hosts`` (the simulator is no relay to anywhere else). Every
request is read by the inbound path (verified when ``client_jwks`` is given: a
key set, or the URL of the client's JWKS, read again when a request names a kid
not in it); whatever arrives is answered with JSON. ``key_file`` keeps the
simulator's signing key (and so its kid) across restarts. ``failures`` injects
faults into every exchange: ``err-ack``, ``http-500``, ``rjct``, ``drop``,
``duplicate``, ``bad-signature``, ``unsigned``; ``faults`` (a
:class:`~dci.simulator.faults.FaultPlan`) injects them into some exchanges
only, at a rate per kind, reproducibly (see :mod:`.faults`). Like a real IBR it
dedupes by our ids: a search, subscribe or unsubscribe whose transaction id
it has already taken is acknowledged again, not answered twice.

Besides search it implements subscribe (answered by ``on-subscribe``),
unsubscribe (``on-unsubscribe``), the asynchronous ``/registry/txn/status``
(``txn-on-status`` to the request's ``sender_uri``; without one the status is
the synchronous answer), ``/registry/sync/enrollment/updates``, and emits
``notify`` events on demand: :meth:`IbrSimulator.notify`, or
``POST /admin/notify`` from loopback. A subscriber's notifications go to the
sibling ``notify`` of its subscribe ``sender_uri`` (``.../ibr/on-subscribe``
-> ``.../ibr/notify``). Every callback sent is kept in ``sent`` and every
request's ``Authorization`` header in ``authorizations`` (for tests).

Encryption: with ``encryption`` (an algorithm of :mod:`dci.jwe`) the
simulator has an encryption key, published in its JWKS with ``use: enc``,
and opens encrypted requests; ``require_encryption`` refuses plain ones
(``err.encryption.invalid``); ``encrypt_answers`` encrypts its callbacks and
synchronous answers to the client's ``use: enc`` key (``client_encryption_key``,
else the first one of the client's JWKS URL).
"""

import base64
import ipaddress
import json
import socket
import struct
import threading
import time
from collections import Counter, defaultdict
from dataclasses import replace
from http.server import ThreadingHTTPServer
from urllib.parse import urljoin, urlsplit

import requests

from .. import jwe, messages
from ..cavage import SignatureParams
from ..dialects import callback_target
from ..dialects import dialect as _preset
from ..errors import (
    DCIError,
    EncryptionInvalid,
    EnvelopeError,
    SenderUriInvalid,
    ServiceUnavailable,
)
from ..httpserver import JsonRequestHandler
from ..inbound import accept, parse_body, validate
from ..keys import KeySet, SigningKey
from ..netguard import FetchPolicy, fetch_json
from ..replay import InMemoryReplayGuard
from ..schemas import (
    CallbackHeader,
    EnrolledRequest,
    EnrollmentUpdatesRequest,
    RequestHeader,
    SearchRequest,
    SubscribeRequest,
    TxnStatusRequest,
    UnsubscribeRequest,
)
from ..trust import JwksKeys, TrustedKeys
from .dataset import Dataset
from .faults import FaultPlan

__all__ = ["FAILURES", "IbrSimulator"]

STOP_GRACE = 5.0  # seconds callbacks being sent get to finish when the simulator stops
FAILURES = frozenset(
    {"err-ack", "http-500", "rjct", "drop", "duplicate", "bad-signature", "unsigned"}
)


def _is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class IbrSimulator:
    """The simulator: a threaded HTTP server plus a callback worker per search."""

    def __init__(
        self,
        *,
        algorithm="ed25519",
        sender_id="ibr.sim",
        dataset=None,
        latency=0.0,
        page_size=None,
        failures=(),
        client_jwks=None,
        jwks_refresh_interval=30,
        key_file=None,
        callback_hosts=(),
        host="127.0.0.1",
        port=0,
        faults=None,
        encryption=None,
        require_encryption=False,
        encrypt_answers=False,
        client_encryption_key=None,
        dialect=None,
    ):
        unknown = set(failures) - FAILURES
        if unknown:
            raise ValueError(f"unknown failure modes: {', '.join(sorted(unknown))}")
        self.sender_id = sender_id
        self.signing_key = (
            SigningKey.from_file(key_file, sender_id, algorithm)
            if key_file
            else SigningKey.generate(sender_id, algorithm)
        )
        self.dataset = dataset or Dataset.sample()
        self.latency = latency
        self.page_size = page_size
        self.failures = frozenset(failures)
        self.faults = FaultPlan.parse(faults) if isinstance(faults, str) else faults or FaultPlan()
        self.faulted = defaultdict(set)  # fault kind -> transaction ids it hit
        self._tried = set()  # (path, transaction id) of every request taken
        self._taken = {}  # transaction id -> correlation id, of requests answered
        self.client_trust = _client_trust(client_jwks, jwks_refresh_interval)
        if require_encryption and not encryption:
            encryption = jwe.RSA_OAEP_256
        self.encryption_key = (
            jwe.EncryptionKey.generate(sender_id, encryption) if encryption else None
        )
        self.require_encryption = require_encryption
        self.encrypt_answers = encrypt_answers
        self.client_encryption_key = client_encryption_key
        self.dialect = _preset(dialect) if dialect is None or isinstance(dialect, str) else dialect
        self._client_jwks_url = client_jwks if isinstance(client_jwks, str) else None
        self.callback_hosts = frozenset(h.lower() for h in callback_hosts)
        self.stats = Counter()
        self.transactions = {}  # transaction_id / correlation_id -> SearchResponse dict
        self.subscriptions = {}  # code -> {"requester", "notify_uri", "filter", "active"}
        self.enrolments = []  # beneficiaries reported by /registry/sync/enrollment/updates
        self.sent = []  # (action, envelope) of every callback POSTed
        self.authorizations = []  # the Authorization header of every request (None: absent)
        self.requests = []  # (path, body bytes) of every request read
        self._lock = threading.Lock()
        self._guard = InMemoryReplayGuard()
        self._threads = []
        self._session = requests.Session()
        self._session.trust_env = False  # callbacks go where they are allowed to, not via a proxy
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self.jwks_url = self.url + "/.well-known/jwks.json"

    # -- lifecycle ---------------------------------------------------------

    def start(self):
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        return self

    def stop(self, grace=STOP_GRACE):
        """Stop serving; give the callbacks still being sent ``grace`` seconds
        in all (they are daemon threads: the rest die with the process)."""
        self._server.shutdown()
        self._server.server_close()
        deadline = time.monotonic() + grace
        for thread in self._threads:
            thread.join(timeout=max(0, deadline - time.monotonic()))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def count(self, name):
        with self._lock:
            self.stats[name] += 1

    def fault(self, kind, key, first_try_of=None):
        """Whether the fault plan's ``kind`` hits transaction ``key`` now (for a
        first-try fault, ``first_try_of`` is the request path: only its first
        request with that id is hit); counted in ``stats`` and ``faulted``."""
        if not key or not self.faults.hits(kind, key):
            return False
        with self._lock:
            if first_try_of is not None:
                if (first_try_of, key, kind) in self._tried:
                    return False
                self._tried.add((first_try_of, key, kind))
            self.stats[f"fault_{kind}"] += 1
            self.faulted[kind].add(key)
        return True

    def taken(self, transaction_id, correlation_id=None):
        """The correlation id given to ``transaction_id`` before (a resend), or
        None after recording ``correlation_id`` for it (the first time)."""
        with self._lock:
            if transaction_id in self._taken:
                self.stats["resends_deduplicated"] += 1
                return self._taken[transaction_id]
            self._taken[transaction_id] = correlation_id
        return None

    @property
    def client_keys(self):
        """The keys requests are verified with; ``None``: requests are not verified."""
        return self.client_trust.keys if self.client_trust else None

    @client_keys.setter
    def client_keys(self, keys):
        self.client_trust = TrustedKeys(keys) if keys is not None else None

    # -- searching ---------------------------------------------------------

    @property
    def jwks(self):
        """What ``/.well-known/jwks.json`` serves: the signing key, and the encryption key."""
        document = {"keys": [self.dialect.key_for(self.signing_key).public.to_jwk()]}
        if self.encryption_key is not None:
            document["keys"].append(self.encryption_key.public_jwk())
        return document

    def _decryption_keys(self):
        return [self.encryption_key] if self.encryption_key is not None else []

    def read_request(self, raw, action, model, callback=False):
        """``(envelope, message)`` of a valid request (verified, with the client's JWKS)."""
        if self.client_trust is None:
            envelope = parse_body(raw)
            header_model = CallbackHeader if callback else RequestHeader
            header = validate(header_model, envelope["header"], "header")
            if header.action != action:
                raise EnvelopeError(f"header.action {header.action!r} does not belong here")
            content = envelope.get("message", {})
            if header.is_msg_encrypted:
                content = jwe.decrypt(content, self._decryption_keys())
            elif self.require_encryption:
                raise EncryptionInvalid("this IBR requires encrypted messages")
            return envelope, validate(model, content, "message")
        accepted = accept(
            raw,
            action=action,
            message_model=model,
            our_id=self.sender_id,
            trust=self.client_trust,
            replay_guard=self._guard,
            callback=callback,
            decryption_keys=self._decryption_keys(),
            require_encryption=self.require_encryption,
        )
        return accepted.envelope, accepted.message

    def check_callback_address(self, envelope):
        """Refuse a ``sender_uri`` this simulator may not call (it is no open relay)."""
        target = envelope["header"].get("sender_uri")
        if not target:
            return
        try:
            parts = urlsplit(str(target))
            scheme, host = parts.scheme, (parts.hostname or "").lower()
        except ValueError:
            scheme = host = ""
        if scheme not in ("http", "https") or not (
            _is_loopback(host) or host in self.callback_hosts
        ):
            raise SenderUriInvalid(f"callbacks to {target!r} are not allowed here")

    def answer_pages(self, request, correlation_id):
        """The ``SearchResponse`` messages answering ``request``, one per page."""
        per_item = []
        for item in request.search_request:
            query = item.search_criteria.query
            if (
                "rjct" in self.failures
                or item.search_criteria.query_type != "idtype-value"
                or not isinstance(query, dict)
            ):
                per_item.append((item, None))
                continue
            page_size = self.page_size or (
                item.search_criteria.pagination.page_size
                if item.search_criteria.pagination
                else None
            )
            per_item.append(
                (item, (self.dataset.find(query.get("type"), query.get("value")), page_size))
            )
        pages_needed = max(
            [1] + [-(-len(r) // (s or max(len(r), 1))) for _, a in per_item if a for r, s in [a]]
        )
        pages = []
        for number in range(1, pages_needed + 1):
            items = [self._item(item, answer, number) for item, answer in per_item]
            items = [i for i in items if i]
            pages.append(
                {
                    "transaction_id": request.transaction_id,
                    "correlation_id": correlation_id,
                    "search_response": items,
                }
            )
        return pages

    def _item(self, item, answer, number):
        stamp = messages.now_iso()
        if answer is None:
            if number > 1:
                return None
            return {
                "reference_id": item.reference_id,
                "timestamp": stamp,
                "status": "rjct",
                "status_reason_code": "rjct.search_criteria.invalid",
                "status_reason_message": "only idtype-value queries are supported here",
            }
        records, page_size = answer
        size = page_size or max(len(records), 1)
        chunk = records[(number - 1) * size : number * size]
        if number > 1 and not chunk:
            return None
        return {
            "reference_id": item.reference_id,
            "timestamp": stamp,
            "status": "succ",
            "data": {
                "version": "1.0.0",
                "reg_type": messages.IBR_REG_TYPE,
                "reg_record_type": "Beneficiary",
                "reg_records": chunk,
            },
            "pagination": {"page_size": size, "page_number": number, "total_count": len(records)},
        }

    def signed(self, action, message, receiver_id, status="succ", total=None, request=False):
        if request:  # the spec gives on-subscribe and on-unsubscribe the request header
            header = messages.request_header(
                action, self.sender_id, total_count=total or 0, receiver_id=receiver_id
            )
        else:
            header = messages.callback_header(
                action,
                self.sender_id,
                status=status,
                receiver_id=receiver_id,
                total_count=total,
                completed_count=total,
            )
        if message and self.encrypt_answers:  # encrypted first, then signed as sent
            header["is_msg_encrypted"] = True
            message = jwe.encrypt(message, self._client_recipient())
        envelope = self.dialect.sign(header, message, self.signing_key)
        if not message:  # a rejection without a message: none is sent (the digest is the same)
            del envelope["message"]
        if "unsigned" in self.failures:
            envelope["signature"] = ""
        elif "bad-signature" in self.failures:
            envelope = _forged(envelope)
        return envelope

    def _client_recipient(self):
        if self.client_encryption_key is None:
            if not self._client_jwks_url:
                raise EncryptionInvalid("no encryption key of the client to encrypt to")
            document = fetch_json(self._client_jwks_url, FetchPolicy(allow_private=True))
            self.client_encryption_key = jwe.recipient_from_jwks(document)
        return self.client_encryption_key

    def remember(self, pages):
        merged = _merge(pages)
        with self._lock:
            self.transactions[merged["transaction_id"]] = merged
            self.transactions[merged["correlation_id"]] = merged

    def send_callbacks(self, envelope, pages):
        """Worker: POST each page to the requester's ``sender_uri`` (as the dialect says)."""
        target = envelope["header"].get("sender_uri")
        if target:
            target = callback_target(target, "on-search", self.dialect.callback_style)
        receiver = envelope["header"].get("sender_id")
        key = pages[0]["transaction_id"] if pages else None
        if not target or "drop" in self.failures or self.fault("drop", key):
            self.count("callbacks_dropped")
            return
        if self.fault("delay", key):
            time.sleep(self.faults.delay)
        if len(pages) > 1 and self.fault("reorder", key):
            pages = pages[::-1]
        for page in pages:
            signed = self.signed("on-search", page, receiver, total=len(page["search_response"]))
            self._deliver(target, signed, key)

    def _deliver(self, target, envelope, key):
        """POST one signed callback, with the faults the plan has for ``key``;
        True when it was acknowledged."""
        if self.fault("bad-signature", key):
            self._post(target, json.dumps(_forged(envelope)))
        body = json.dumps(envelope)
        copies = 2 if "duplicate" in self.failures or self.fault("duplicate", key) else 1
        if self.fault("concurrent-duplicate", key):
            start = threading.Barrier(2, timeout=10)
            results = []

            def post_together():
                start.wait()
                results.append(self._post(target, body))

            twins = [threading.Thread(target=post_together, daemon=True) for _ in range(2)]
            for twin in twins:
                twin.start()
            for twin in twins:
                twin.join(timeout=30)
            return any(results)
        return any([self._post(target, body) for _ in range(copies)])

    def _post(self, target, body):
        try:
            # as the peer it plays posts them (OpenCRVS: text/plain)
            headers = {"Content-Type": self.dialect.callback_content_type}
            answer = self._session.post(target, data=body, timeout=10, headers=headers)
        except requests.RequestException:
            self.count("callbacks_failed")
            return False
        self.count("callbacks_sent")
        return answer.status_code == 200

    def post_callback(
        self, target, action, message, receiver, *, total=None, request=False, status="succ"
    ):
        """Sign ``message`` as ``action`` and POST it to ``target``; True when acknowledged."""
        envelope = self.signed(
            action, message, receiver, status=status, total=total, request=request
        )
        with self._lock:
            self.sent.append((action, envelope))
        key = (message or {}).get("transaction_id")
        if not target or "drop" in self.failures or self.fault("drop", key):
            self.count("callbacks_dropped")
            return False
        if self.fault("delay", key):
            time.sleep(self.faults.delay)
        return self._deliver(target, envelope, key)

    # -- subscriptions ------------------------------------------------------

    def subscribe(self, envelope, request, correlation_id):
        """Record the subscriptions of ``request``; return the ``SubscribeResponse``."""
        header = envelope["header"]
        target = header.get("sender_uri")
        items = []
        for item in request.subscribe_request:
            criteria = item.subscribe_criteria
            query = criteria.filter if isinstance(criteria.filter, dict) else None
            stamp = messages.now_iso()
            if (
                "rjct" in self.failures
                or criteria.filter_type not in (None, "idtype-value")
                or (not query or "type" not in query or "value" not in query)
            ):
                items.append(
                    {
                        "reference_id": item.reference_id,
                        "timestamp": stamp,
                        "status": "rjct",
                        "status_reason_code": "rjct.notify_details.invalid",
                        "status_reason_message": "only idtype-value filters are supported here",
                    }
                )
                continue
            code = "SUB-" + messages.new_id()[:16]
            with self._lock:
                self.subscriptions[code] = {
                    "requester": header.get("sender_id"),
                    "notify_uri": urljoin(target, "notify") if target else None,
                    "filter": {"type": str(query["type"]), "value": str(query["value"])},
                    "event_type": criteria.reg_event_type,
                    "active": True,
                }
            items.append(
                {
                    "reference_id": item.reference_id,
                    "timestamp": stamp,
                    "status": "succ",
                    "subscriptions": [
                        {
                            "version": "1.0.0",
                            "code": code,
                            "status": "subscribe",
                            "timestamp": stamp,
                            "reg_type": criteria.reg_type or messages.IBR_REG_TYPE,
                            "reg_event_type": criteria.reg_event_type,
                            "filter_type": "idtype-value",
                            "filter": query,
                            "notify_record_type": criteria.notify_record_type,
                        }
                    ],
                }
            )
        return {
            "transaction_id": request.transaction_id,
            "correlation_id": correlation_id,
            "subscribe_response": items,
        }

    def unsubscribe(self, envelope, request, correlation_id):
        """End the requester's subscriptions in ``request``; return the ``UnSubscribeResponse``."""
        requester = envelope["header"].get("sender_id")
        ended = []
        with self._lock:
            for code in request.subscription_codes:
                known = self.subscriptions.get(code)
                if known and known["requester"] == requester and known["active"]:
                    known["active"] = False
                    ended.append({"code": code, "status": "unsubscribe"})
        answer = {
            "transaction_id": request.transaction_id,
            "correlation_id": correlation_id,
            "timestamp": messages.now_iso(),
            "status": "succ" if ended else "rjct",
            "subscription_status": ended,
        }
        if not ended:
            answer["status_reason_code"] = "rjct.subscription_code.invalid"
            answer["status_reason_message"] = "no active subscription of yours has these codes"
        return answer

    def notify(self, code=None, *, identifier=None, event_type=None, records=None, target=None):
        """Send a ``notify`` event to the subscribers concerned; return how many were sent.

        ``code`` picks one subscription, ``identifier`` (``(type, value)``) every
        active one about that person, neither: every active subscription. The
        records default to the dataset's for the subscription's identifier (an
        ended enrolment when ``event_type`` is ``enrollement_status_change``).
        """
        with self._lock:
            chosen = [
                (c, dict(s))
                for c, s in self.subscriptions.items()
                if s["active"]
                and (code is None or c == code)
                and (
                    identifier is None
                    or (s["filter"]["type"].upper(), s["filter"]["value"])
                    == (str(identifier[0]).upper(), str(identifier[1]))
                )
            ]
        sent = 0
        for sub_code, sub in chosen:
            kind = event_type or messages.ENROLMENT_EVENT
            found = records
            if found is None:
                found = self.dataset.find(sub["filter"]["type"], sub["filter"]["value"]) or [
                    _beneficiary_of(sub["filter"])
                ]
                if kind == messages.ENROLMENT_STATUS_EVENT:
                    found = [_ended(r) for r in found]
            message = {
                "transaction_id": messages.new_id(),
                "notify_event": [
                    {
                        "reference_id": messages.new_id(),
                        "timestamp": messages.now_iso(),
                        # not in the spec's item: which subscription this event is for
                        "subscription_code": sub_code,
                        "data": {
                            "version": "1.0.0",
                            "reg_type": messages.IBR_REG_TYPE,
                            "reg_event_type": kind,
                            "reg_record_type": "Beneficiary",
                            "reg_records": record,  # the spec: one record (an object)
                        },
                    }
                    for record in found
                ],
            }
            if self.post_callback(
                target or sub["notify_uri"],
                "notify",
                message,
                sub["requester"],
                total=len(message["notify_event"]),
            ):
                sent += 1
        return sent

    def spawn(self, target, *args):
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()


def _client_trust(client_jwks, refresh_interval):
    """How requests are verified: not at all, by a key set, or by the keys at a JWKS URL."""
    if client_jwks is None:
        return None
    if isinstance(client_jwks, KeySet):
        return TrustedKeys(client_jwks)
    if isinstance(client_jwks, str):  # the client is usually on this machine or network
        return JwksKeys(client_jwks, refresh_interval, FetchPolicy(allow_private=True))
    raise TypeError("client_jwks is a KeySet or a JWKS URL")


def _beneficiary_of(query):
    from .dataset import beneficiary

    return beneficiary(query["type"], query["value"], "Programme elsewhere", programme_id="PX")


def _ended(record):
    """``record`` with its enrolment ended (a copy)."""
    copy = json.loads(json.dumps(record))
    programme = copy.get("member", {}).get("programme_identifier")
    if isinstance(programme, dict):
        programme["enrolment_status"] = "Exited"
    return copy


def _merge(pages):
    """All pages of an answer as one ``SearchResponse`` message."""
    return dict(pages[0], search_response=[i for p in pages for i in p["search_response"]])


class _Handler(JsonRequestHandler):
    sim = None  # set per server by _handler_for

    def _peer_is_loopback(self):
        return _is_loopback(self.client_address[0])

    def do_GET(self):
        if self.path == "/.well-known/jwks.json":
            return self.reply(200, self.sim.jwks)
        return self.reply(404, {"errors": [{"code": "not_found", "message": self.path}]})

    def do_POST(self):
        self.sim.count("requests")
        with self.sim._lock:
            self.sim.authorizations.append(self.headers.get("Authorization"))
        raw = self.read_body()
        if raw is None:  # refused by its headers
            return None
        self._raw = raw
        with self.sim._lock:
            self.sim.requests.append((self.path, raw))
        if self.sim.latency:  # every request takes this long to answer
            time.sleep(self.sim.latency)
        key = _claimed_transaction_id(raw)
        if self.sim.fault("reset", key, first_try_of=self.path):
            return self.reset()
        for kind, status in (("http-503", 503), ("http-429", 429)):
            if self.sim.fault(kind, key, first_try_of=self.path):
                self.retry_after = self.sim.faults.retry_after
                error = ServiceUnavailable("injected: try again later")
                return self.reply(status, messages.err_ack(error))
        if "http-500" in self.sim.failures:
            return self.reply(500, {"errors": [{"code": "500", "message": "injected"}]})
        if "err-ack" in self.sim.failures:
            return self.reply(
                200, messages.err_ack(ServiceUnavailable("the simulator was told to refuse"))
            )
        path = self.sim.dialect.path
        route = {
            path("search"): self.search,
            path("sync/search"): self.sync_search,
            path("txn/status"): self.txn_status,
            path("sync/txn/status"): self.txn_status,
            path("sync/enrolled"): self.enrolled,
            path("subscribe"): self.subscribe,
            path("unsubscribe"): self.unsubscribe,
            path("sync/enrollment/updates"): self.enrollment_updates,
            "/admin/notify": self.admin_notify,
        }.get(self.path)
        if route is None:
            return self.reply(404, {"errors": [{"code": "not_found", "message": self.path}]})
        try:
            return route(raw)
        except DCIError as exc:
            return self.reply(exc.http_status, messages.err_ack(exc))

    retry_after = None  # seconds, sent as Retry-After with the next reply
    _was_reset = False

    def reply(self, status, body):
        if self.sim.fault("stall", _claimed_transaction_id(self._raw), first_try_of=self.path):
            time.sleep(self.sim.faults.stall)  # processed, but acknowledged too late
        super().reply(status, body)

    def send_header(self, keyword, value):
        super().send_header(keyword, value)
        if keyword == "Content-Type" and self.retry_after is not None:
            super().send_header("Retry-After", str(self.retry_after))
            self.retry_after = None

    def reset(self):
        """Close the connection at once with a TCP reset, no answer (nothing was processed)."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        for stream in (self.rfile, self.wfile, self.connection):
            stream.close()  # the last one closed sends the reset
        self.close_connection = True
        self._was_reset = True

    def handle_one_request(self):
        self._raw = b""
        try:
            super().handle_one_request()
        except (OSError, ValueError) as exc:  # ValueError: the reset closed its streams
            # a client that gave up (a stalled answer) or a reset of ours is expected
            if not (self._was_reset or isinstance(exc, ConnectionError)):
                raise

    def finish(self):
        if not self._was_reset:
            super().finish()

    def search(self, raw):
        envelope, request = self.sim.read_request(raw, "search", SearchRequest)
        self.sim.check_callback_address(envelope)
        correlation_id = messages.new_id()
        known = self.sim.taken(request.transaction_id, correlation_id)
        if known:  # a resend of a transaction it has: acknowledged, not answered again
            return self.reply(200, messages.ack(known))
        pages = self.sim.answer_pages(request, correlation_id)
        self.sim.remember(pages)
        if self.sim.fault("early", request.transaction_id):
            self.sim.send_callbacks(envelope, pages)  # the answer overtakes the acknowledgement
        else:
            self.sim.spawn(self.sim.send_callbacks, envelope, pages)
        self.reply(200, messages.ack(correlation_id))

    def sync_search(self, raw):
        envelope, request = self.sim.read_request(raw, "search", SearchRequest)
        correlation_id = messages.new_id()
        pages = self.sim.answer_pages(request, correlation_id)
        self.sim.remember(pages)
        answer = _merge(pages)
        for item in answer["search_response"]:  # one answer carries every record
            item.pop("pagination", None)
        self.reply(
            200,
            self.sim.signed(
                "on-search",
                answer,
                envelope["header"].get("sender_id"),
                total=len(answer["search_response"]),
            ),
        )

    def subscribe(self, raw):
        envelope, request = self.sim.read_request(raw, "subscribe", SubscribeRequest)
        self.sim.check_callback_address(envelope)
        correlation_id = messages.new_id()
        known = self.sim.taken(request.transaction_id, correlation_id)
        if known:
            return self.reply(200, messages.ack(known))
        answer = self.sim.subscribe(envelope, request, correlation_id)
        self._answer_later(envelope, "on-subscribe", answer, len(answer["subscribe_response"]))
        self.reply(200, messages.ack(correlation_id))

    def unsubscribe(self, raw):
        envelope, request = self.sim.read_request(raw, "unsubscribe", UnsubscribeRequest)
        self.sim.check_callback_address(envelope)
        correlation_id = messages.new_id()
        known = self.sim.taken(request.transaction_id, correlation_id)
        if known:
            return self.reply(200, messages.ack(known))
        answer = self.sim.unsubscribe(envelope, request, correlation_id)
        self._answer_later(envelope, "on-unsubscribe", answer, len(request.subscription_codes))
        self.reply(200, messages.ack(correlation_id))

    def _answer_later(self, envelope, action, answer, total):
        header = envelope["header"]

        def post():
            target = header.get("sender_uri")
            return self.sim.post_callback(
                target and callback_target(target, action, self.sim.dialect.callback_style),
                action,
                answer,
                header.get("sender_id"),
                total=total,
                request=True,
            )

        if self.sim.fault("early", answer.get("transaction_id")):
            post()
        else:
            self.sim.spawn(post)

    def enrollment_updates(self, raw):
        envelope, request = self.sim.read_request(
            raw, "notify", EnrollmentUpdatesRequest, callback=True
        )
        beneficiaries = request.enrolled_updates.beneficiaries
        with self.sim._lock:
            self.sim.enrolments.extend(beneficiaries)
        stamp = messages.now_iso()
        answer = {
            "transaction_id": request.transaction_id,
            "correlation_id": messages.new_id(),
            "enrolled_response": [
                {"reference_id": messages.new_id(), "timestamp": stamp, "status": "succ"}
                for _ in beneficiaries
            ],
        }
        requester = envelope["header"].get("sender_id")
        self.reply(200, self.sim.signed("on-notify", answer, requester, total=len(beneficiaries)))

    def admin_notify(self, raw):
        """Loopback only: ``{"code"?, "identifier"?: "TYPE:VALUE", "event_type"?}``."""
        if not self._peer_is_loopback():
            return self.reply(403, {"errors": [{"code": "forbidden", "message": "loopback only"}]})
        body = _plain_json(raw)
        identifier = body.get("identifier")
        if isinstance(identifier, str) and ":" in identifier:
            identifier = tuple(identifier.split(":", 1))
        else:
            identifier = None
        sent = self.sim.notify(
            body.get("code") if isinstance(body.get("code"), str) else None,
            identifier=identifier,
            event_type=body.get("event_type") if isinstance(body.get("event_type"), str) else None,
        )
        self.reply(200, {"sent": sent})

    def txn_status(self, raw):
        envelope, request = self.sim.read_request(raw, "txn-status", TxnStatusRequest)
        requester = envelope["header"]["sender_id"]
        if self.path == self.sim.dialect.path("txn/status") and envelope["header"].get(
            "sender_uri"
        ):
            self.sim.check_callback_address(envelope)
            correlation_id = messages.new_id()
            wanted = request.txnstatus_request.attribute_value
            with self.sim._lock:
                known = self.sim.transactions.get(wanted) if isinstance(wanted, str) else None
            message = {
                "transaction_id": request.transaction_id,
                "correlation_id": correlation_id,
                "txnstatus_response": {"txn_type": "search", "txn_status": known or {}},
            }
            target = envelope["header"]["sender_uri"]
            if known is None:
                self.sim.spawn(
                    lambda: self.sim.post_callback(
                        target, "txn-on-status", {}, requester, status="rjct"
                    )
                )
            else:
                self.sim.spawn(
                    lambda: self.sim.post_callback(target, "txn-on-status", message, requester)
                )
            return self.reply(200, messages.ack(correlation_id))
        wanted = request.txnstatus_request.attribute_value
        with self.sim._lock:
            known = self.sim.transactions.get(wanted) if isinstance(wanted, str) else None
        if known is None:
            return self.reply(200, self.sim.signed("txn-on-status", {}, requester, status="rjct"))
        message = {
            "transaction_id": request.transaction_id,
            "correlation_id": known["correlation_id"],
            "txnstatus_response": {"txn_type": "search", "txn_status": known},
        }
        self.reply(200, self.sim.signed("txn-on-status", message, requester))

    def enrolled(self, raw):
        envelope, request = self.sim.read_request(raw, "search", EnrolledRequest)
        query = request.enrolled_criteria.query
        records = self.sim.dataset.find(query.get("type"), query.get("value"))
        active = [
            r
            for r in records
            if r["member"]["programme_identifier"].get("enrolment_status", "").lower() == "active"
        ]
        answer = {
            "transaction_id": request.transaction_id,
            "correlation_id": messages.new_id(),
            "enrolled_response": [
                {
                    "reference_id": messages.new_id(),
                    "timestamp": messages.now_iso(),
                    "status": "succ",
                    "enrolled_status": "yes" if active else "no",
                }
            ],
        }
        self.reply(200, self.sim.signed("on-search", answer, envelope["header"]["sender_id"]))


def _claimed_transaction_id(raw):
    """The ``message.transaction_id`` a request body claims (unverified), or None."""
    try:
        message = json.loads(raw).get("message")
        value = message.get("transaction_id") if isinstance(message, dict) else None
    except (ValueError, AttributeError, TypeError, RecursionError):  # whatever was sent
        return None
    return value if isinstance(value, str) else None


def _forged(envelope):
    """A copy of ``envelope`` whose signature no longer verifies."""
    params = SignatureParams.parse(envelope["signature"])
    raw = bytearray(params.signature_bytes())
    raw[0] ^= 0xFF
    signature = replace(params, signature=base64.b64encode(bytes(raw)).decode()).format()
    return dict(envelope, signature=signature)


def _plain_json(raw):
    from .. import jsontext

    try:
        body = jsontext.loads(raw)
    except ValueError:
        raise EnvelopeError("body is not valid JSON") from None
    if not isinstance(body, dict):
        raise EnvelopeError("body must be a JSON object")
    return body


def _handler_for(sim):
    return type("Handler", (_Handler,), {"sim": sim})
