"""The search client: signed requests to an IBR and what its answers mean.

Every failure raises a :class:`~dci.errors.DCIError`: the caller can never
mistake an IBR that did not answer for one that found nothing. Nothing here
logs identifier values or envelopes (they are personal data).
"""

import json
import logging
from dataclasses import dataclass

import requests
from pydantic import ValidationError
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from . import messages
from .errors import EnvelopeError, PeerRejected, ServiceUnavailable, TooManyRequests
from .schemas import (
    Ack,
    CallbackHeader,
    EnrolledResponse,
    SearchResponse,
    TxnStatusResponse,
)
from .signatures import SignaturePolicy, sign_envelope, verify_signature

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
    """A synchronous answer, its signature checked when IBR keys were given."""

    transaction_id: str
    header: CallbackHeader
    message: object
    raw: dict
    verified: bool


def retrying_session(retries=2, backoff=0.3):
    """A session that retries connection failures and 502/503/504 answers."""
    retry = Retry(
        total=retries,
        connect=retries,
        read=0,
        status=retries,
        backoff_factor=backoff,
        status_forcelist=(502, 503, 504),
        allowed_methods=None,
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session


class IbrClient:
    """Talks to one IBR as one sender with one signing key."""

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

    # -- building ---------------------------------------------------------

    def build(self, action, message, *, total_count, sender_uri=None):
        header = messages.request_header(
            action,
            self.sender_id,
            total_count=total_count,
            receiver_id=self.receiver_id,
            sender_uri=sender_uri,
        )
        return sign_envelope(header, message, self.signing_key)

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
        envelope = self.search_envelope(
            queries, transaction_id=transaction_id, sender_uri=sender_uri, page_size=page_size
        )
        ack = self._ack(self._post("/registry/search", envelope))
        return Submission(
            envelope["message"]["transaction_id"],
            envelope["header"]["message_id"],
            ack.message.correlation_id,
            ack,
        )

    def sync_search(self, queries, *, transaction_id=None, page_size=None):
        """POST ``/registry/sync/search``; return the answer as a :class:`SyncAnswer`."""
        envelope = self.search_envelope(queries, transaction_id=transaction_id, page_size=page_size)
        return self._sync("/registry/sync/search", envelope, SearchResponse)

    def enrolled(self, identifier_type, identifier_value, *, transaction_id=None):
        """POST ``/registry/sync/enrolled`` for one person."""
        message = {
            "transaction_id": transaction_id or messages.new_id(),
            "enrolled_criteria": {
                "query_type": "idtype-value",
                "response_entity": "Member",
                "query": {"type": identifier_type, "value": identifier_value},
            },
        }
        envelope = self.build("search", message, total_count=1)
        return self._sync("/registry/sync/enrolled", envelope, EnrolledResponse)

    def txn_status(self, transaction_id, *, correlation_id=None):
        """POST ``/registry/sync/txn/status`` for one of our transactions."""
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
        return self._sync("/registry/sync/txn/status", envelope, TxnStatusResponse)

    # -- plumbing ---------------------------------------------------------

    def _post(self, path, envelope):
        headers = {"Content-Type": "application/json"}
        if self.auth is not None:
            headers.update(self.auth.headers())
        body = json.dumps(envelope, separators=(",", ":")).encode()
        try:
            response = self.session.post(
                self.base_url + path, data=body, headers=headers, timeout=self.timeout
            )
        except requests.exceptions.Timeout:
            raise ServiceUnavailable("the IBR did not answer in time") from None
        except requests.RequestException as exc:
            _logger.info("IBR %s unreachable: %s", self.base_url, type(exc).__name__)
            raise ServiceUnavailable("the IBR cannot be reached") from None
        if response.status_code == 429:
            raise TooManyRequests("the IBR asks us to slow down (HTTP 429)")
        if response.status_code >= 500:
            raise ServiceUnavailable(f"the IBR failed with HTTP {response.status_code}")
        body = _json_or_none(response.content)
        if response.status_code >= 400:
            error = ((body or {}).get("message") or {}).get("error") or {}
            raise PeerRejected(
                error.get("message")
                or f"the IBR refused the request (HTTP {response.status_code})",
                code=error.get("code"),
                http_status=response.status_code,
            )
        if not isinstance(body, dict):
            raise EnvelopeError("the IBR answered something that is not a JSON object")
        return body

    def _ack(self, body):
        try:
            ack = Ack.model_validate(body)
        except ValidationError:
            raise EnvelopeError("the IBR answered without a valid acknowledgement") from None
        status = ack.message.ack_status
        if status == "ERR" or status == "NACK":
            error = ack.message.error
            raise PeerRejected(
                (error.message if error and error.message else f"the IBR answered {status}"),
                code=error.code if error else None,
            )
        return ack

    def _sync(self, path, envelope, model):
        body = self._post(path, envelope)
        if "header" not in body:  # an acknowledgement instead of an answer
            self._ack(body)
            raise EnvelopeError("the IBR acknowledged but sent no synchronous answer")
        verified = False
        if self.ibr_keys is not None:
            verify_signature(
                body.get("signature"),
                body["header"],
                body.get("message", {}),
                self.ibr_keys.get,
                self.policy,
            )
            verified = True
        try:
            header = CallbackHeader.model_validate(body["header"])
            if header.status == "rjct":
                raise PeerRejected(
                    header.status_reason_message or "the IBR rejected the request",
                    code=header.status_reason_code,
                )
            message = model.model_validate(body.get("message") or {})
        except ValidationError as exc:
            raise EnvelopeError(
                f"the IBR's answer is malformed: {exc.errors()[0]['msg']}"
            ) from None
        return SyncAnswer(envelope["message"]["transaction_id"], header, message, body, verified)


def _json_or_none(content):
    try:
        return json.loads(content)
    except (ValueError, RecursionError):
        return None
