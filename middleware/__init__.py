"""FastAPI dependencies other OpenSPP 2 modules import from here (upstream's place)."""

from .signature import verify_ibr_signature

__all__ = ["verify_ibr_signature"]
