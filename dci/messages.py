"""Builders for the envelopes and acknowledgements we send."""

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

__all__ = [
    "ENROLMENT_EVENT",
    "IBR_REG_TYPE",
    "SearchQuery",
    "ack",
    "callback_header",
    "err_ack",
    "new_id",
    "now_iso",
    "request_header",
    "enrollment_updates_request",
    "search_request",
    "subscribe_request",
    "txn_status_request",
    "unsubscribe_request",
]

IBR_REG_TYPE = "ns:org:RegistryType:IBR"
# the spec's notify event types (its spelling): a new enrolment, a change of its status
ENROLMENT_EVENT = "enrollement"
ENROLMENT_STATUS_EVENT = "enrollement_status_change"
NOTIFY_RECORD_TYPE = "Member"
VERSION = "1.0.0"


def now_iso(now=None):
    moment = now or datetime.now(timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id():
    return uuid.uuid4().hex


@dataclass(frozen=True)
class SearchQuery:
    """One identifier to look up, under our ``reference_id``."""

    reference_id: str
    identifier_type: str
    identifier_value: str


def request_header(
    action, sender_id, *, total_count, receiver_id=None, sender_uri=None, message_id=None
):
    header = {
        "version": VERSION,
        "message_id": message_id or new_id(),
        "message_ts": now_iso(),
        "action": action,
        "sender_id": sender_id,
        "total_count": total_count,
        "is_msg_encrypted": False,
    }
    if sender_uri:
        header["sender_uri"] = sender_uri
    if receiver_id:
        header["receiver_id"] = receiver_id
    return header


def callback_header(
    action,
    sender_id,
    *,
    status,
    receiver_id=None,
    total_count=None,
    completed_count=None,
    reason_code=None,
    reason_message=None,
):
    header = {
        "version": VERSION,
        "message_id": new_id(),
        "message_ts": now_iso(),
        "action": action,
        "status": status,
        "sender_id": sender_id,
        "is_msg_encrypted": False,
    }
    optional = {
        "receiver_id": receiver_id,
        "total_count": total_count,
        "completed_count": completed_count,
        "status_reason_code": reason_code,
        "status_reason_message": reason_message,
    }
    header.update({k: v for k, v in optional.items() if v is not None})
    return header


def search_request(
    transaction_id, queries, *, page_size=None, reg_type=IBR_REG_TYPE, reg_record_type=None
):
    """A ``SearchRequest`` with one ``idtype-value`` item per query (a batch)."""
    timestamp = now_iso()
    items = []
    for query in queries:
        criteria = {
            "version": VERSION,
            "reg_type": reg_type,
            "query_type": "idtype-value",
            "query": {"type": query.identifier_type, "value": query.identifier_value},
        }
        if reg_record_type:
            criteria["reg_record_type"] = reg_record_type
        if page_size:
            criteria["pagination"] = {"page_size": page_size, "page_number": 1}
        items.append(
            {
                "reference_id": query.reference_id,
                "timestamp": timestamp,
                "search_criteria": criteria,
            }
        )
    return {"transaction_id": transaction_id, "search_request": items}


def subscribe_request(
    transaction_id,
    queries,
    *,
    reg_type=IBR_REG_TYPE,
    event_type=ENROLMENT_EVENT,
    record_type=NOTIFY_RECORD_TYPE,
):
    """A ``SubscribeRequest``: one item per person (a :class:`SearchQuery`), each
    asking to be told of enrolment events about that identifier."""
    timestamp = now_iso()
    return {
        "transaction_id": transaction_id,
        "subscribe_request": [
            {
                "reference_id": query.reference_id,
                "timestamp": timestamp,
                "subscribe_criteria": {
                    "version": VERSION,
                    "reg_type": reg_type,
                    "reg_event_type": event_type,
                    "filter_type": "idtype-value",
                    "filter": {"type": query.identifier_type, "value": query.identifier_value},
                    "notify_record_type": record_type,
                },
            }
            for query in queries
        ],
    }


def unsubscribe_request(transaction_id, codes):
    """An ``UnSubscribeRequest`` for the IBR's subscription codes."""
    return {
        "transaction_id": transaction_id,
        "timestamp": now_iso(),
        "subscription_codes": list(codes),
    }


def txn_status_request(transaction_id, wanted, *, by="transaction_id", txn_type="search"):
    """A ``TxnStatusRequest`` asking about ``wanted`` (one of our transaction ids,
    or the IBR's correlation id with ``by="correlation_id"``)."""
    return {
        "transaction_id": transaction_id,
        "txnstatus_request": {
            "reference_id": new_id(),
            "txn_type": txn_type,
            "attribute_type": by,
            "attribute_value": wanted,
        },
    }


def enrollment_updates_request(transaction_id, beneficiaries):
    """An ``EnrollmentUpdatesRequest``: the beneficiaries we enrolled (spec records)."""
    return {
        "transaction_id": transaction_id,
        "enrolled_updates": {"beneficiaries": list(beneficiaries)},
    }


def ack(correlation_id=None, status="ACK"):
    return {
        "message": {
            "ack_status": status,
            "timestamp": now_iso(),
            "correlation_id": correlation_id or new_id(),
        }
    }


def err_ack(error, correlation_id=None):
    """An ``ERR`` acknowledgement for a :class:`~dci.errors.DCIError`."""
    body = ack(correlation_id, status="ERR")
    body["message"]["error"] = {"code": error.code, "message": error.message[:999]}
    return body


def json_bytes(body):
    """Compact JSON for the wire: ASCII, so any text (even a lone surrogate) can be sent."""
    return json.dumps(body, separators=(",", ":")).encode()
