"""The base of every backend's options model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class BackendOptions(BaseModel):
    """Options of a backend: validated on construction, immutable, unknown names rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)
