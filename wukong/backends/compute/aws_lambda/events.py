"""A payload as a Lambda event, and the sizes the Invoke API accepts.

Lambda events are JSON, so the payload bytes travel base64-encoded under one key. The API's limits
count the whole request body, so the payload limit the core sees is what fits once encoded.
"""

from __future__ import annotations

import base64
import json
from typing import Any

ASYNC_PAYLOAD_LIMIT = 1_048_576
"""Bytes an asynchronous (``Event``) invoke accepts: 1 MB since October 2025 (256 KB before)."""

SYNC_PAYLOAD_LIMIT = 6_291_456
"""Bytes a synchronous (``RequestResponse``) invoke accepts: 6 MB."""

_FIELD = "wukong"
_EMPTY_EVENT_BYTES = len(json.dumps({_FIELD: ""}))


def encode_event(payload: bytes) -> bytes:
    """The request body that carries ``payload``."""
    return json.dumps({_FIELD: base64.b64encode(payload).decode("ascii")}).encode()


def decode_event(event: Any) -> bytes:
    """The payload of an event made by :func:`encode_event` (as Lambda hands it: parsed JSON)."""
    if not isinstance(event, dict) or not isinstance(event.get(_FIELD), str):
        raise ValueError(
            f"not a wukong invocation: expected a JSON object with a {_FIELD!r} string, "
            f"got {type(event).__name__}"
        )
    return base64.b64decode(event[_FIELD])


def payload_limit(request_limit: int) -> int:
    """The largest payload whose event fits in ``request_limit`` bytes."""
    return (request_limit - _EMPTY_EVENT_BYTES) // 4 * 3
