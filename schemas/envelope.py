"""The DCI envelope as one model, under the name OpenSPP2's modules use."""

from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["DCIEnvelope"]


class DCIEnvelope(BaseModel):
    """``{"signature", "header", "message"}`` with header and message kept as
    received (plain dicts): a signature covers the bytes that were sent, so
    verify those, then validate the parts with the header/message models."""

    model_config = ConfigDict(extra="allow")

    signature: str | None = None
    header: dict[str, Any]
    message: dict[str, Any] | None = None
