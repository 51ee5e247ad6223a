from .ibr_callbacks import ibr_callback_router

__all__ = ["ibr_callback_router"]
