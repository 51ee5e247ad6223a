"""The search client: signed requests to an IBR and what its answers mean.

Every failure raises a :class:`~dci.errors.DCIError`: the caller can never
mistake an IBR that did not answer for one that found nothing. A
synchronous answer is taken only through :func:`dci.inbound.accept` (signed
by the IBR's keys, not replayed) and only as the answer to *our* request: it
must echo our ``transaction_id``. Nothing here logs identifier values or
envelopes (they are personal data). Environment proxy settings are ignored
(pass a ``session`` to use a proxy).
"""

import json
import logging
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from . import jsontext, jwe, messages
from .dialects import dialect as _preset
from .errors import (
    ConfigurationError,
    EncryptionInvalid,
    EnvelopeError,
    PeerRejected,
    PeerServerError,
    PeerUnreachable,
    ReplayDetected,
    TooManyRequests,
    UnreadableAnswer,
)
from .inbound import MAX_BODY_BYTES, accept, validate
from .keys import KeySet
from .netguard import read_capped
from .replay import InMemoryReplayGuard
from .schemas import (
    Ack,
    CallbackHeader,
    EnrolledResponse,
    EnrollmentUpdatesResponse,
    SearchResponse,
    TxnStatusResponse,
)
from .signatures import SignaturePolicy
from .trust import TrustedKeys

__all__ = ["IbrClient", "Submission", "SyncAnswer"]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Submission:
    """An accepted asynchronous request: the IBR will call back."""

    transaction_id: str
    message_id: str
    correlation_id: str | None
    ack: Ack


@dataclass(frozen=True)
class SyncAnswer:
    """A synchronous answer to one of our requests, accepted by :func:`~dci.inbound.accept`."""

    transaction_id: str
    header: CallbackHeader
    message: object
    raw: dict
    verified: bool  # False only with allow_unsigned (development mode)


def retrying_session(retries=2, backoff=0.3, status_retries=None):
    """A session that retries failures to connect (nothing reached the peer)
    ``retries`` times and 502/503/504 answers ``status_retries`` times (default:
    as many). A read error is never retried here: the request may have arrived,
    and resending it is the caller's decision (the Odoo outbox resends under
    the same ids, later, with back-off)."""
    status_retries = retries if status_retries is None else status_retries
    retry = Retry(
        total=max(retries, status_retries),
        connect=retries,
        read=0,
        other=0,
        status=status_retries,
        backoff_factor=backoff,
        backoff_max=5,
        status_forcelist=(502, 503, 504),
        allowed_methods=None,
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    session = requests.Session()
    session.trust_env = False  # the configured IBR URL, not wherever the environment points
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session


class IbrClient:
    """Talks to one IBR as one sender with one signing key.

    Synchronous calls need ``ibr_keys`` (the IBR's :class:`~dci.keys.KeySet`)
    to verify the answers, unless ``allow_unsigned=True`` (development only:
    unsigned answers are then taken, signed ones still verified).

    With ``encrypt_to`` (the IBR's :class:`~dci.jwe.RecipientKey`) every
    message is encrypted to it, then signed; ``decryption_keys`` (ours) open
    encrypted answers, and ``require_encryption`` refuses plain ones.
    ``dialect`` (a :mod:`dci.dialects` preset name or :class:`~dci.dialects.Dialect`)
    says the peer's operation paths, ``sender_uri`` form and signature form.
    """

    def __init__(
        self,
        base_url,
        signing_key,
        sender_id,
        *,
        receiver_id=None,
        auth=None,
        timeout=(5, 30),
        session=None,
        ibr_keys=None,
        policy=None,
        reg_type=None,
        replay_guard=None,
        allow_unsigned=False,
        max_answer_bytes=MAX_BODY_BYTES,
        encrypt_to=None,
        decryption_keys=(),
        require_encryption=False,
        dialect=None,
    ):
        self.base_url = base_url.rstrip("/")
        self.signing_key = signing_key
        self.sender_id = sender_id
        self.receiver_id = receiver_id
        self.auth = auth
        self.timeout = timeout
        self.session = session or retrying_session()
        self.ibr_keys = ibr_keys  # KeySet used to verify synchronous answers
        self.policy = policy or SignaturePolicy()
        self.reg_type = reg_type or messages.IBR_REG_TYPE
        self.replay_guard = replay_guard or InMemoryReplayGuard()
        self.allow_unsigned = allow_unsigned
        self.max_answer_bytes = max_answer_bytes
        self.encrypt_to = encrypt_to
        self.decryption_keys = tuple(decryption_keys)
        self.require_encryption = require_encryption
        # a preset name or a Dialect: paths, sender_uri, signature form, kid style
        self.dialect = _preset(dialect) if dialect is None or isinstance(dialect, str) else dialect

    def max_post_seconds(self):
        """The longest one POST of this client may take (see :meth:`post_seconds`)."""
        return self.post_seconds(self.timeout, self.session, self.base_url)

    @staticmethod
    def post_seconds(timeout, session, url):
        """The longest one POST may take: every try the session's ``Retry``
        allows for ``url``, each waiting its connect and read timeouts, and the
        back-off between tries (a lease on a send must outlast this)."""
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        retry = session.get_adapter(url).max_retries
        tries = 1 + max(retry.connect or 0, retry.status or 0)
        backoff = sum(
            min(retry.backoff_max, retry.backoff_factor * 2 ** (n - 1)) for n in range(1, tries)
        )
        return tries * (connect + read) + backoff

    # -- building ---------------------------------------------------------

    def build(self, action, message, *, total_count, sender_uri=None):
        header = messages.request_header(
            action,
            self.sender_id,
            total_count=total_count,
            receiver_id=self.receiver_id,
            sender_uri=self.dialect.sender_uri(sender_uri),
        )
        return self._seal(header, message)

    def _seal(self, header, message):
        """The signed envelope; encrypted first when the IBR wants it (the
        signature then covers the encrypted message, as sent)."""
        if self.encrypt_to is not None:
            header = dict(header, is_msg_encrypted=True)
            message = jwe.encrypt(message, self.encrypt_to)
        return self.dialect.sign(header, message, self.signing_key)

    def subscribe_envelope(self, queries, *, sender_uri, transaction_id=None):
        message = messages.subscribe_request(
            transaction_id or messages.new_id(), queries, reg_type=self.reg_type
        )
        return self.build("subscribe", message, total_count=len(queries), sender_uri=sender_uri)

    def unsubscribe_envelope(self, codes, *, sender_uri, transaction_id=None):
        message = messages.unsubscribe_request(transaction_id or messages.new_id(), codes)
        return self.build("unsubscribe", message, total_count=len(codes), sender_uri=sender_uri)

    def txn_status_envelope(self, wanted, *, by="transaction_id", sender_uri=None, request_id=None):
        message = messages.txn_status_request(request_id or messages.new_id(), wanted, by=by)
        return self.build("txn-status", message, total_count=1, sender_uri=sender_uri)

    def enrollment_updates_envelope(self, beneficiaries, *, transaction_id=None):
        # the spec gives this request the callback header, with action "notify"
        header = messages.callback_header(
            "notify",
            self.sender_id,
            status="succ",
            receiver_id=self.receiver_id,
            total_count=len(beneficiaries),
        )
        message = messages.enrollment_updates_request(
            transaction_id or messages.new_id(), beneficiaries
        )
        return self._seal(header, message)

    def search_envelope(self, queries, *, transaction_id=None, sender_uri=None, page_size=None):
        message = messages.search_request(
            transaction_id or messages.new_id(),
            queries,
            page_size=page_size,
            reg_type=self.reg_type,
        )
        return self.build("search", message, total_count=len(queries), sender_uri=sender_uri)

    # -- calls ------------------------------------------------------------

    def search(self, queries, *, sender_uri, transaction_id=None, page_size=None):
        """POST ``/registry/search``; return the :class:`Submission` once acknowledged."""
        transaction_id = transaction_id or messages.new_id()
        envelope = self.search_envelope(
            queries, transaction_id=transaction_id, sender_uri=sender_uri, page_size=page_size
        )
        return self._submit(self.dialect.path("search"), envelope, transaction_id)

    def subscribe(self, queries, *, sender_uri, transaction_id=None):
        """POST ``/registry/subscribe`` (one item per :class:`~dci.messages.SearchQuery`,
        its ``reference_id`` ours); the IBR answers with ``on-subscribe`` at ``sender_uri``."""
        transaction_id = transaction_id or messages.new_id()
        envelope = self.subscribe_envelope(
            queries, sender_uri=sender_uri, transaction_id=transaction_id
        )
        return self._submit(self.dialect.path("subscribe"), envelope, transaction_id)

    def unsubscribe(self, codes, *, sender_uri, transaction_id=None):
        """POST ``/registry/unsubscribe`` for the IBR's subscription ``codes``;
        the IBR answers with ``on-unsubscribe`` at ``sender_uri``."""
        transaction_id = transaction_id or messages.new_id()
        envelope = self.unsubscribe_envelope(
            codes, sender_uri=sender_uri, transaction_id=transaction_id
        )
        return self._submit(self.dialect.path("unsubscribe"), envelope, transaction_id)

    def request_txn_status(
        self, transaction_id, *, sender_uri, correlation_id=None, request_id=None
    ):
        """POST ``/registry/txn/status`` (asynchronous): the IBR answers with
        ``txn-on-status`` at ``sender_uri``. The returned :class:`Submission`
        carries the status request's own transaction id: ``request_id``, or a
        fresh one (give it to record it before the IBR can answer)."""
        by = "correlation_id" if correlation_id else "transaction_id"
        request_id = request_id or messages.new_id()
        envelope = self.txn_status_envelope(
            correlation_id or transaction_id, by=by, sender_uri=sender_uri, request_id=request_id
        )
        return self._submit(self.dialect.path("txn/status"), envelope, request_id)

    def enrollment_updates(self, beneficiaries, *, transaction_id=None):
        """POST ``/registry/sync/enrollment/updates``: report our enrolled beneficiaries
        (spec ``Beneficiary`` records); return the IBR's verified answer."""
        self._check_can_verify()
        transaction_id = transaction_id or messages.new_id()
        envelope = self.enrollment_updates_envelope(beneficiaries, transaction_id=transaction_id)
        return self._sync(
            self.dialect.path("sync/enrollment/updates"),
            envelope,
            "on-notify",
            EnrollmentUpdatesResponse,
            transaction_id,
        )

    def _submit(self, path, envelope, transaction_id):
        # the transaction id is passed: an encrypted envelope does not show it
        ack = self._ack(self._post(path, envelope))
        return Submission(
            transaction_id, envelope["header"]["message_id"], ack.message.correlation_id, ack
        )

    def sync_search(self, queries, *, transaction_id=None, page_size=None):
        """POST ``/registry/sync/search``; return the answer as a :class:`SyncAnswer`."""
        self._check_can_verify()
        transaction_id = transaction_id or messages.new_id()
        envelope = self.search_envelope(queries, transaction_id=transaction_id, page_size=page_size)
        return self._sync(
            self.dialect.path("sync/search"), envelope, "on-search", SearchResponse, transaction_id
        )

    def enrolled(self, identifier_type, identifier_value, *, transaction_id=None):
        """POST ``/registry/sync/enrolled`` for one person.

        The answer is bound to this person by our ``transaction_id`` (fresh
        unless given): an answer about anyone else carries another one.
        """
        self._check_can_verify()
        message = {
            "transaction_id": transaction_id or messages.new_id(),
            "enrolled_criteria": {
                "query_type": "idtype-value",
                "response_entity": "Member",
                "query": {"type": identifier_type, "value": identifier_value},
            },
        }
        envelope = self.build("search", message, total_count=1)
        return self._sync(
            self.dialect.path("sync/enrolled"),
            envelope,
            "on-search",
            EnrolledResponse,
            message["transaction_id"],
        )

    def txn_status(self, transaction_id, *, correlation_id=None):
        """POST ``/registry/sync/txn/status`` for one of our transactions."""
        self._check_can_verify()
        by_correlation = bool(correlation_id)
        message = {
            "transaction_id": messages.new_id(),
            "txnstatus_request": {
                "reference_id": messages.new_id(),
                "txn_type": "search",
                "attribute_type": "correlation_id" if by_correlation else "transaction_id",
                "attribute_value": correlation_id if by_correlation else transaction_id,
            },
        }
        envelope = self.build("txn-status", message, total_count=1)
        return self._sync(
            self.dialect.path("sync/txn/status"),
            envelope,
            "txn-on-status",
            TxnStatusResponse,
            message["transaction_id"],
        )

    # -- plumbing ---------------------------------------------------------

    def _check_can_verify(self):
        # Refused before sending: an answer nobody can verify must not become a result.
        if self.ibr_keys is None and not self.allow_unsigned:
            raise ConfigurationError("synchronous calls need the IBR's keys to verify its answers")

    def _post(self, path, envelope):
        """POST ``envelope``; return the body of a 2xx answer (bytes), or raise."""
        headers = {"Content-Type": "application/json"}
        if self.auth is not None:
            headers.update(self.auth.headers())
        body = json.dumps(envelope, separators=(",", ":")).encode()
        try:
            with self.session.post(
                self.base_url + path, data=body, headers=headers, timeout=self.timeout, stream=True
            ) as response:
                status = response.status_code
                retry_after = _retry_after(response)
                if status == 429:
                    raise TooManyRequests(
                        "the IBR asks us to slow down (HTTP 429)", retry_after=retry_after
                    )
                if status >= 500:
                    raise PeerServerError(status, retry_after=retry_after)
                content = read_capped(response, self.max_answer_bytes, "the IBR")
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema) as exc:
            raise ConfigurationError(f"the IBR's URL cannot be used: {exc}") from None
        except requests.exceptions.ConnectTimeout:
            raise PeerUnreachable("the IBR did not accept the connection in time") from None
        except requests.exceptions.Timeout:
            raise PeerUnreachable("the IBR did not answer in time") from None
        except requests.RequestException as exc:  # refused, reset, DNS, TLS, cut short
            _logger.info("IBR %s unreachable: %s", self.base_url, type(exc).__name__)
            if "timed out" in str(exc).lower():  # a read timeout retried by urllib3
                raise PeerUnreachable("the IBR did not answer in time") from None
            raise PeerUnreachable(f"the IBR cannot be reached ({_network_reason(exc)})") from None
        if status >= 400:
            code, message = _error_of(content)
            raise PeerRejected(
                message or f"the IBR refused the request (HTTP {status})",
                code=code,
                http_status=status,
            )
        return content

    def _ack(self, content):
        try:
            body = jsontext.loads(content)
        except ValueError:
            raise UnreadableAnswer("the IBR answered something that is not JSON") from None
        try:
            ack = validate(Ack, body, "ack")
        except EnvelopeError as exc:
            raise UnreadableAnswer(f"the IBR's acknowledgement cannot be read: {exc}") from None
        status = ack.message.ack_status
        if status == "ERR" or status == "NACK":
            error = ack.message.error
            raise PeerRejected(
                (error.message if error and error.message else f"the IBR answered {status}"),
                code=error.code if error else None,
            )
        return ack

    def _refuse_if_ack(self, content):
        try:
            body = jsontext.loads(content)
        except ValueError:
            return
        if isinstance(body, dict) and "header" not in body and "message" in body:
            self._ack(content)  # ERR and NACK raise PeerRejected
            raise EnvelopeError("the IBR acknowledged but sent no synchronous answer")

    def _sync(self, path, envelope, action, model, ours):
        content = self._post(path, envelope)
        try:
            accepted = accept(
                content,
                action=action,
                message_model=model,
                our_id=self.sender_id,
                trust=TrustedKeys(self.ibr_keys if self.ibr_keys is not None else KeySet()),
                replay_guard=self.replay_guard,
                policy=self.policy,
                allow_unsigned=self.allow_unsigned,
                max_bytes=self.max_answer_bytes,
                decryption_keys=self.decryption_keys,
                require_encryption=self.require_encryption,
            )
        except EncryptionInvalid:
            raise  # its own code: the IBR's encryption, not its answer's form, is wrong
        except EnvelopeError as exc:
            self._refuse_if_ack(content)  # an acknowledgement instead of an answer says why
            raise UnreadableAnswer(exc.message) from None
        if accepted.is_duplicate:  # an answer is given once: seen before, it is a replay
            raise ReplayDetected("the IBR's answer was received before")
        header = accepted.header
        if header.status == "rjct":
            raise PeerRejected(
                header.status_reason_message or "the IBR rejected the request",
                code=header.status_reason_code,
            )
        if accepted.message.transaction_id != ours:
            raise EnvelopeError("the IBR's answer is not for our transaction")
        return SyncAnswer(
            ours, header, accepted.message, accepted.envelope, bool(accepted.signature)
        )


def _retry_after(response):
    """The seconds an HTTP ``Retry-After`` header asks for (a number or a date), or None."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return float(Retry().parse_retry_after(value))
    except Exception:  # noqa: BLE001 - a malformed header is no instruction
        return None


def _network_reason(exc):
    """A short name for a network failure (no URL, no peer text)."""
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the answer was cut short"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS failed"
    text = str(exc).lower()
    if "reset" in text or "aborted" in text or "remotedisconnected" in text:
        return "connection reset"
    if "refused" in text:
        return "connection refused"
    if "name or service" in text or "resolve" in text:
        return "name not resolved"
    return type(exc).__name__


def _error_of(content):
    """``(code, message)`` of a refusal body, when it has them as text (else ``None``)."""
    try:
        body = jsontext.loads(content)
    except ValueError:
        return None, None
    error = body.get("message") if isinstance(body, dict) else None
    error = error.get("error") if isinstance(error, dict) else None
    if not isinstance(error, dict):
        return None, None
    code, message = error.get("code"), error.get("message")
    return (
        code if isinstance(code, str) else None,
        message[:999] if isinstance(message, str) else None,
    )
