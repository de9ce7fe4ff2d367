"""Invoking a Lambda function asynchronously from a pool of threads, through boto3.

One asynchronous invoke costs tens of milliseconds of waiting on AWS's answer, so a wide fan-out
(or the leaves of a job) is invoked by many threads at once; boto3 clients are thread-safe and the
connection pool is sized to the threads. botocore retries connection errors and throttling a few
times with its ``standard`` backoff; past that, a throttled invoke (429) is retried here with jittered
exponential backoff until ``throttle_timeout``, because botocore's retry quota runs dry in a burst
of thousands of throttled invokes, and a burst must slow the job down, not fail it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from pydantic import BaseModel, ConfigDict, Field

from wukong.backends.compute.aws_lambda.events import ASYNC_PAYLOAD_LIMIT, encode_event, payload_limit
from wukong.errors import ComputeError

logger = logging.getLogger("wukong.compute.lambda")

_THROTTLED = "TooManyRequestsException"
# What an endpoint without the recursion API (moto's server, an emulator) answers
# Get/PutFunctionRecursionConfig with, for a function that exists: it has no loop stop either.
NO_RECURSION_API = ("404", "NotImplemented", "UnknownOperationException", "ResourceNotFoundException")


class InvokerSettings(BaseModel):
    """How executors and the client invoke the function.

    Attributes:
        invokers: threads invoking at once (and HTTP connections kept open).
        max_attempts: attempts botocore makes per invoke on connection errors and throttling.
        throttle_timeout: seconds a throttled invoke keeps being retried before the job fails.
        connect_timeout: seconds to open a connection to the Lambda endpoint.
        read_timeout: seconds to wait for the endpoint's answer.
        max_request_bytes: the largest request the Invoke API accepts for an asynchronous invoke;
            larger payloads are kept in the metadata store and passed by key.

    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    invokers: int = Field(default=16, ge=1, le=512)
    max_attempts: int = Field(default=3, ge=1)
    throttle_timeout: float = Field(default=300.0, ge=0)
    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=30.0, gt=0)
    max_request_bytes: int = Field(default=ASYNC_PAYLOAD_LIMIT, ge=256)


class Invoker:
    """Invokes one function asynchronously, many payloads at a time.

    Args:
        function: the function's name or ARN (with a qualifier, if any, as ``name:alias``).
        settings: pool size, retries and timeouts.
        region_name: the AWS region; ``None`` takes it from the environment.
        endpoint_url: another Lambda endpoint (a local stand-in); ``None`` for AWS's, or what
            ``AWS_ENDPOINT_URL_LAMBDA`` says.

    """

    def __init__(
        self,
        function: str,
        settings: InvokerSettings,
        *,
        region_name: str | None = None,
        endpoint_url: str | None = None,
    ):
        self.function = function
        self.settings = settings
        self.max_payload_bytes = payload_limit(settings.max_request_bytes)
        config = Config(
            max_pool_connections=settings.invokers,
            retries={"mode": "standard", "total_max_attempts": settings.max_attempts},
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
        )
        # A session per invoker: boto3's default session is not thread-safe to create clients from.
        session = boto3.session.Session()
        self.client = session.client(
            "lambda", region_name=region_name, endpoint_url=endpoint_url, config=config
        )
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def invoke(self, payloads: Sequence[bytes]) -> None:
        """Invoke the function once per payload; return when every invoke was accepted."""
        events = [encode_event(payload) for payload in payloads]
        if len(events) <= 1 or self.settings.invokers == 1:
            for event in events:
                self._invoke(event)
            return
        # map() re-raises the first error, after the invokes already started have ended.
        for _ in self._threads().map(self._invoke, events):
            pass

    def _threads(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.settings.invokers, thread_name_prefix="wukong-invoker")
            return self._pool

    def _invoke(self, event: bytes) -> None:
        deadline = time.monotonic() + self.settings.throttle_timeout
        pause = 0.05
        while True:
            try:
                response = self.client.invoke(
                    FunctionName=self.function, InvocationType="Event", Payload=event
                )
            except ClientError as error:
                if _code(error) != _THROTTLED or time.monotonic() + pause > deadline:
                    raise self.error(error) from error
                time.sleep(random.uniform(0, pause))
                pause = min(pause * 2, 5.0)
                continue
            except BotoCoreError as error:
                raise self.error(error) from error
            if response["StatusCode"] != 202:
                raise ComputeError(
                    f"Lambda function {self.function} answered an asynchronous invoke with status "
                    f"{response['StatusCode']} instead of 202"
                )
            return

    def error(self, error: Exception) -> ComputeError:
        """A :class:`ComputeError` that says what an AWS error means for the job."""
        where = f"Lambda function {self.function!r}"
        if self.client.meta.endpoint_url:
            where += f" at {self.client.meta.endpoint_url}"
        if isinstance(error, NoCredentialsError):
            return ComputeError(
                f"{where}: no AWS credentials found (environment, ~/.aws, or an instance role); "
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
            )
        if isinstance(error, ClientError):
            code = _code(error)
            message = error.response.get("Error", {}).get("Message", "")
            if code == "ResourceNotFoundException":
                return ComputeError(
                    f"{where} does not exist in region {self.client.meta.region_name}; "
                    f"create it with `wukong lambda deploy --function {self.function}` ({message})"
                )
            if code == "RequestEntityTooLargeException":
                return ComputeError(
                    f"{where} refused an invocation as too large ({message}); set "
                    "max_request_bytes to the limit the endpoint enforces"
                )
            if code == "AccessDeniedException" and "lambda:InvokeFunction" in message:
                return ComputeError(
                    f"{where}: its executors may not invoke it ({message}); executors invoke their own "
                    "function to fan out, so its role needs lambda:InvokeFunction on the function's "
                    "ARN: run `wukong lambda deploy` again, which adds that policy"
                )
            if code == "RecursiveInvocationException":
                return ComputeError(
                    f"{where}: Lambda stopped a chain of invocations as a recursive loop ({message}); "
                    "wukong's executors invoke their own function by design, so set the function's "
                    "recursive loop detection to Allow: `wukong lambda deploy` does "
                    "(PutFunctionRecursionConfig RecursiveLoop=Allow)"
                )
            if code == _THROTTLED:
                return ComputeError(
                    f"{where} kept throttling invokes for {self.settings.throttle_timeout:.0f} s "
                    f"({message}); raise its concurrency or throttle_timeout"
                )
            return ComputeError(f"{where}: {code}: {message}")
        return ComputeError(f"{where}: {type(error).__name__}: {error}")

    def close(self) -> None:
        """Stop the threads and close the HTTP connections."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        self.client.close()


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")
