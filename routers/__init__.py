from .callback import (
    ibr_callback_router,
    receive_ibr_search_response,
    receive_ibr_subscribe_response,
)

__all__ = [
    "ibr_callback_router",
    "receive_ibr_search_response",
    "receive_ibr_subscribe_response",
]
