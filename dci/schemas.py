"""SPDCI IBR envelope schemas (pydantic v2), after ``ibr_api_v1.0.0.yaml``.

Every model keeps unknown members (``extra="allow"``): peers extend the
standard, and a signature covers what was sent, not what we understood.
Timestamps stay strings (checked to be ISO 8601) so nothing is rewritten.
"""

from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

__all__ = [
    "ACK_STATUSES",
    "ERROR_CODES",
    "Ack",
    "AckMessage",
    "CallbackHeader",
    "EnrolledCriteria",
    "EnrolledRequest",
    "EnrolledResponse",
    "EnrolledResponseItem",
    "EnrollmentUpdatesRequest",
    "EnrollmentUpdatesResponse",
    "ErrorInfo",
    "IdTypeValue",
    "NotifyEventItem",
    "NotifyEventRequest",
    "Pagination",
    "RequestHeader",
    "ResponsePagination",
    "SearchCriteria",
    "SearchRequest",
    "SearchRequestItem",
    "SearchResponse",
    "SearchResponseData",
    "SearchResponseItem",
    "SubscribeCriteria",
    "SubscribeRequest",
    "SubscribeRequestItem",
    "SubscribeResponse",
    "SubscribeResponseItem",
    "TxnStatusRequest",
    "TxnStatusResponse",
    "UnsubscribeRequest",
    "UnsubscribeResponse",
    "parse_timestamp",
]

ACK_STATUSES = ("ACK", "NACK", "ERR")
ERROR_CODES = (
    "err.request.bad",
    "err.request.unauthorized",
    "err.request.forbidden",
    "err.request.not_found",
    "err.request.timeout",
    "err.version.not_supported",
    "err.request.too_many_requests",
    "err.sender_id.invalid",
    "err.sender_uri.invalid",
    "err.receiver_id.invalid",
    "err.signature.missing",
    "err.signature.invalid",
    "err.encryption.invalid",
    "err.service.unavailable",
)
Status = Literal["rcvd", "pdng", "succ", "rjct"]
ShortId = Annotated[str, Field(min_length=1, max_length=99)]
# The spec bounds transaction ids (99) but not message or reference ids; an
# empty one cannot tell two messages apart, so it is refused.
Id = Annotated[str, Field(min_length=1)]


def parse_timestamp(value):
    """The aware ``datetime`` of an ISO 8601 text (no zone: UTC); ``ValueError`` otherwise."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("must be an ISO 8601 date-time") from None
    # read as UTC, not local time: the same text means the same moment on every server
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _iso8601(value):
    parse_timestamp(value)
    return value


Timestamp = Annotated[str, AfterValidator(_iso8601)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def dump(self):
        """JSON-ready dict without unset optional members."""
        return self.model_dump(mode="json", exclude_none=True)


# -- headers ---------------------------------------------------------------


class RequestHeader(_Model):
    """``MsgHeader_V1.0.0``: the header of a request we send (or an IBR sends us)."""

    version: str = "1.0.0"
    message_id: Id
    message_ts: Timestamp
    action: str
    sender_id: str
    sender_uri: str | None = None
    receiver_id: str | None = None
    total_count: int
    is_msg_encrypted: bool = False
    meta: dict[str, Any] | None = None


class CallbackHeader(_Model):
    """``MsgCallbackHeader_V1.0.0``: the header of an ``on-*`` callback."""

    version: str = "1.0.0"
    message_id: Id
    message_ts: Timestamp
    action: str
    status: Status
    status_reason_code: str | None = None
    status_reason_message: str | None = Field(default=None, max_length=999)
    total_count: int | None = None
    completed_count: int | None = None
    sender_id: str | None = None
    receiver_id: str | None = None
    is_msg_encrypted: bool = False
    meta: dict[str, Any] | None = None


# -- acknowledgements ------------------------------------------------------


class ErrorInfo(_Model):
    code: str
    message: str | None = Field(default=None, max_length=999)


class AckMessage(_Model):
    ack_status: Literal["ACK", "NACK", "ERR"]
    timestamp: Timestamp
    correlation_id: str | None = Field(default=None, max_length=99)
    error: ErrorInfo | None = None


class Ack(_Model):
    """The synchronous answer to any POST."""

    message: AckMessage


# -- search ----------------------------------------------------------------


class IdTypeValue(_Model):
    type: str
    value: Any


class Pagination(_Model):
    page_size: int = Field(gt=0)
    page_number: int = Field(default=1, gt=0)


class SearchCriteria(_Model):
    version: str = "1.0.0"
    reg_type: str | None = None
    reg_record_type: str | None = None
    query_type: Literal["idtype-value", "expression", "predicate"]
    query: Any
    sort: list[dict[str, Any]] | None = None
    pagination: Pagination | None = None
    consent: dict[str, Any] | None = None
    authorize: dict[str, Any] | None = None


class SearchRequestItem(_Model):
    reference_id: Id
    timestamp: Timestamp
    search_criteria: SearchCriteria
    locale: str | None = None


class SearchRequest(_Model):
    transaction_id: ShortId
    search_request: list[SearchRequestItem] = Field(min_length=1)


class SearchResponseData(_Model):
    version: str | None = None
    reg_type: str | None = None
    reg_record_type: str | None = None
    # Not required here: a page without records fails its item (interpret.py),
    # not the whole message.
    reg_records: Any = None


class ResponsePagination(_Model):
    page_size: int
    page_number: int
    total_count: int


class SearchResponseItem(_Model):
    reference_id: str
    timestamp: Timestamp
    status: Status
    status_reason_code: str | None = None
    status_reason_message: str | None = Field(default=None, max_length=999)
    data: SearchResponseData | None = None
    pagination: ResponsePagination | None = None
    locale: str | None = None


class SearchResponse(_Model):
    transaction_id: ShortId
    # required by the spec: it ties the answer to the IBR's ACK
    correlation_id: Annotated[str, Field(max_length=99)]
    search_response: list[SearchResponseItem]


# -- subscribe, notify, unsubscribe ------------------------------------------


class SubscribeCriteria(_Model):
    version: str = "1.0.0"
    reg_type: str | None = None
    reg_event_type: str
    frequency: dict[str, Any] | None = None
    filter_type: Literal["idtype-value", "expression", "predicate", "graphql"] | None = None
    filter: Any
    notify_record_type: str
    authorize: dict[str, Any] | None = None


class SubscribeRequestItem(_Model):
    reference_id: Id
    timestamp: Timestamp
    subscribe_criteria: SubscribeCriteria
    locale: str | None = None


class SubscribeRequest(_Model):
    transaction_id: ShortId
    subscribe_request: list[SubscribeRequestItem] = Field(min_length=1)


class SubscribeResponseItem(_Model):
    reference_id: str
    timestamp: Timestamp
    status: Status
    status_reason_code: str | None = None
    status_reason_message: str | None = Field(default=None, max_length=999)
    subscriptions: list[dict[str, Any]] = Field(default_factory=list)


class SubscribeResponse(_Model):
    transaction_id: ShortId
    # required by the spec: it ties the answer to the IBR's ACK
    correlation_id: Annotated[str, Field(max_length=99)]
    subscribe_response: list[SubscribeResponseItem]


class NotifyEventData(_Model):
    version: str | None = None
    reg_type: str | None = None
    reg_event_type: str | None = None
    reg_record_type: str
    reg_records: Any


class NotifyEventItem(_Model):
    reference_id: Id
    timestamp: Timestamp
    data: NotifyEventData
    locale: str | None = None


class NotifyEventRequest(_Model):
    """``NotifyEventRequest``: the IBR tells a subscriber of an event."""

    transaction_id: ShortId
    notify_event: list[NotifyEventItem] = Field(min_length=1)


class UnsubscribeRequest(_Model):
    transaction_id: ShortId
    timestamp: Timestamp
    subscription_codes: list[Annotated[str, Field(min_length=1, max_length=99)]] = Field(
        min_length=1
    )


class SubscriptionStatusItem(_Model):
    code: Annotated[str, Field(max_length=99)]
    status: Literal["subscribe", "unsubscribe"]


class UnsubscribeResponse(_Model):
    transaction_id: ShortId
    correlation_id: Annotated[str, Field(max_length=99)]
    timestamp: Timestamp
    status: Status
    status_reason_code: str | None = None
    status_reason_message: str | None = Field(default=None, max_length=999)
    subscription_status: list[SubscriptionStatusItem] = Field(default_factory=list)


# -- enrolment updates --------------------------------------------------------


class EnrolledUpdates(_Model):
    beneficiaries: list[dict[str, Any]] = Field(default_factory=list)


class EnrollmentUpdatesRequest(_Model):
    transaction_id: ShortId
    enrolled_updates: EnrolledUpdates


class EnrollmentUpdatesItem(_Model):
    reference_id: str
    timestamp: Timestamp
    status: Status
    status_reason_message: str | None = Field(default=None, max_length=999)


class EnrollmentUpdatesResponse(_Model):
    transaction_id: ShortId
    correlation_id: Annotated[str, Field(max_length=99)]
    enrolled_response: list[EnrollmentUpdatesItem]


# -- sync enrolled and transaction status -----------------------------------


class EnrolledCriteria(_Model):
    query_type: str = "idtype-value"
    response_entity: Literal["Group", "Member"] | None = None
    query: dict[str, Any]


class EnrolledRequest(_Model):
    transaction_id: ShortId
    enrolled_criteria: EnrolledCriteria


class EnrolledResponseItem(_Model):
    reference_id: str
    timestamp: Timestamp
    status: Status
    status_reason_message: str | None = None
    enrolled_status: Literal["yes", "no"]


class EnrolledResponse(_Model):
    transaction_id: ShortId
    # required by the spec: it ties the answer to the IBR's ACK
    correlation_id: Annotated[str, Field(max_length=99)]
    enrolled_response: list[EnrolledResponseItem]


class TxnStatusQuery(_Model):
    reference_id: str
    txn_type: Literal["search", "subscribe", "receipt"]
    attribute_type: Literal["transaction_id", "reference_id_list", "correlation_id"]
    attribute_value: Any
    locale: str | None = None


class TxnStatusRequest(_Model):
    transaction_id: ShortId
    txnstatus_request: TxnStatusQuery


class TxnStatusBody(_Model):
    txn_type: str
    txn_status: dict[str, Any]


class TxnStatusResponse(_Model):
    transaction_id: ShortId
    # required by the spec: it ties the answer to the IBR's ACK
    correlation_id: Annotated[str, Field(max_length=99)]
    txnstatus_response: TxnStatusBody

    def search_answer(self):
        """The search answer this status carries (a ``SearchResponse``), or
        ``None`` when it carries none (a status of another kind of message)."""
        try:
            return SearchResponse.model_validate(self.txnstatus_response.txn_status)
        except ValueError:
            return None
