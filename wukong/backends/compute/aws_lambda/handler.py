"""The Lambda function's entry point: ``wukong.backends.compute.aws_lambda.handler.handler``.

Lambda calls :func:`handler` with the parsed event and its context object. It runs the same executor
as every other backend; what is Lambda's own is here: the event's encoding, invoking successors as
new asynchronous invocations of this very function, the remaining time read from the context, and
the time left. (What the executor must know of the platform, that deliveries may repeat and run
time is billed, travels in each invocation from the client.)

A warm container keeps module globals between invocations, so the invoker (its boto3 client and
threads) and the executor's open stores are made once per container, not once per invocation.
Invoker settings come from the ``WUKONG_LAMBDA_INVOKER`` environment variable (JSON of
:class:`~wukong.backends.compute.aws_lambda.invoker.InvokerSettings`), which ``wukong lambda
deploy`` sets.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

from wukong.backends.compute.aws_lambda.events import decode_event
from wukong.backends.compute.aws_lambda.invoker import Invoker, InvokerSettings
from wukong.backends.compute.base import BasicContext, Delivery
from wukong.core.executor import handle_invocation
from wukong.monitoring import logs

SETTINGS_VARIABLE = "WUKONG_LAMBDA_INVOKER"

_invoker: Invoker | None = None
_lock = threading.Lock()

logs.configure_worker()  # a Lambda container only runs executors


def _invoker_for(function_arn: str) -> Invoker:
    global _invoker
    with _lock:
        if _invoker is None or _invoker.function != function_arn:
            settings = InvokerSettings.model_validate_json(os.environ.get(SETTINGS_VARIABLE) or "{}")
            _invoker = Invoker(function_arn, settings)
        return _invoker


class LambdaExecutorContext(BasicContext):
    """The executor context inside a Lambda invocation."""

    def __init__(self, lambda_context: Any, invoker: Invoker):
        self._lambda_context = lambda_context
        self._invoker = invoker

    def invoke(self, payloads: Sequence[bytes]) -> None:
        """Invoke this function once per payload, from the invoker pool."""
        self._invoker.invoke(payloads)

    def remaining_seconds(self) -> float | None:
        """What Lambda says is left before it stops this invocation."""
        return self._lambda_context.get_remaining_time_in_millis() / 1000

    def delivery(self) -> Delivery:
        """The request id, which Lambda keeps when it retries a failed event."""
        return Delivery(event_id=str(self._lambda_context.aws_request_id))


def handler(event: Any, context: Any) -> None:
    """Run the executor for one asynchronous invocation."""
    # The ARN the function was invoked by carries its qualifier, so successors run the same version.
    invoker = _invoker_for(context.invoked_function_arn)
    handle_invocation(decode_event(event), LambdaExecutorContext(context, invoker))
