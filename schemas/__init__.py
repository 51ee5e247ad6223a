"""The pydantic schemas of the SPDCI IBR API, for routers and developers.

    from odoo.addons.spp_dci_client_ibr.schemas import SearchResponse, DCIEnvelope

The models are the protocol core's (``dci/schemas.py``, plain Python, no
Odoo): this package is where Odoo code imports them from, so the core can
move without breaking it. ``DCIEnvelope`` is defined here.
"""

from ..dci.schemas import (
    ACK_STATUSES,
    ERROR_CODES,
    Ack,
    AckMessage,
    CallbackHeader,
    EnrolledCriteria,
    EnrolledRequest,
    EnrolledResponse,
    EnrolledResponseItem,
    ErrorInfo,
    IdTypeValue,
    Pagination,
    RequestHeader,
    ResponsePagination,
    SearchCriteria,
    SearchRequest,
    SearchRequestItem,
    SearchResponse,
    SearchResponseData,
    SearchResponseItem,
    SubscribeResponse,
    SubscribeResponseItem,
    TxnStatusRequest,
    TxnStatusResponse,
)
from .envelope import DCIEnvelope

__all__ = [
    "ACK_STATUSES",
    "Ack",
    "AckMessage",
    "CallbackHeader",
    "DCIEnvelope",
    "ERROR_CODES",
    "EnrolledCriteria",
    "EnrolledRequest",
    "EnrolledResponse",
    "EnrolledResponseItem",
    "ErrorInfo",
    "IdTypeValue",
    "Pagination",
    "RequestHeader",
    "ResponsePagination",
    "SearchCriteria",
    "SearchRequest",
    "SearchRequestItem",
    "SearchResponse",
    "SearchResponseData",
    "SearchResponseItem",
    "SubscribeResponse",
    "SubscribeResponseItem",
    "TxnStatusRequest",
    "TxnStatusResponse",
]
