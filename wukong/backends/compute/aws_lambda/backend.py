"""The ``lambda`` compute backend, as the client sees it.

``start`` asks Lambda for the function's configuration, so missing credentials or a missing function
fail at ``Client()``, before any job; the function's memory, timeout, architecture and retry setting
give the billing figures and the time after which a silent job has lost an invocation. ``invoke``
sends the leaves through the invoker pool. The executors themselves run in the function (see
:mod:`~wukong.backends.compute.aws_lambda.handler`), so the ``handler`` passed to ``start`` is not
used here: the function calls its own copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Field

from wukong.backends.compute.aws_lambda.invoker import NO_RECURSION_API, Invoker, InvokerSettings
from wukong.backends.compute.base import ComputeBackend, ComputeCapabilities, InvocationHandler, Usage
from wukong.backends.compute.environment import (
    HASH_SEED_VARIABLE,
    STAMP_VARIABLE,
    hash_seed,
    stamp_differences,
    version_stamp,
)
from wukong.backends.options import BackendOptions
from wukong.errors import ComputeError, ConfigError

# US East (N. Virginia) list prices, November 2026.
PRICE_PER_REQUEST_USD = 0.20 / 1_000_000
PRICE_PER_GB_SECOND_USD = {"x86_64": 0.0000166667, "arm64": 0.0000133334}

_DEFAULT_RETRIES = 2  # Lambda retries a failed asynchronous invocation twice unless configured
_RETRY_WAIT_SECONDS = 60  # ...about a minute before the first retry, doubling after
_MARGIN_SECONDS = 60


class LambdaOptions(BackendOptions):
    """Options of the ``lambda`` compute backend.

    Attributes:
        function: the function's name or ARN.
        qualifier: a version or alias to invoke, or ``None`` for ``$LATEST``.
        region_name: the AWS region; ``None`` takes it from the environment or AWS config.
        endpoint_url: a Lambda endpoint other than AWS's (the local Invoke API server of
            :mod:`wukong.testing.lambda_server`); ``None`` for AWS, or ``AWS_ENDPOINT_URL_LAMBDA``.
        invoker: the client's invoker pool (executors use the settings the function was deployed
            with).
        price_per_gb_second: US dollars per GB-second; ``None`` uses the list price of the
            function's architecture.
        price_per_request: US dollars per invocation.
        lost_after_seconds: seconds without any sign of life after which a job has lost an
            invocation; ``None`` derives it from the function's timeout and retries.

    """

    function: str = "wukong-executor"
    qualifier: str | None = None
    region_name: str | None = None
    endpoint_url: str | None = None
    invoker: InvokerSettings = Field(default_factory=InvokerSettings)
    price_per_gb_second: float | None = Field(default=None, ge=0)
    price_per_request: float = Field(default=PRICE_PER_REQUEST_USD, ge=0)
    lost_after_seconds: float | None = Field(default=None, gt=0)


class LambdaCompute(ComputeBackend):
    """Executors as asynchronous invocations of one AWS Lambda function."""

    name = "lambda"
    Options = LambdaOptions
    options: LambdaOptions

    def __init__(self, **options: Any):
        super().__init__(**options)
        self._invoker: Invoker | None = None
        self.configuration: dict[str, Any] = {}

    @property
    def function(self) -> str:
        """The function as invoked: name or ARN, with the qualifier if any."""
        function, qualifier = self.options.function, self.options.qualifier
        return f"{function}:{qualifier}" if qualifier else function

    def describe(self) -> str:
        """Name the function and, when not AWS's, the endpoint."""
        where = f" at {self.options.endpoint_url}" if self.options.endpoint_url else ""
        return f"AWS Lambda function {self.function}{where}"

    def start(self, handler: InvocationHandler) -> None:
        """Check the function exists and read its configuration."""
        if self._invoker is not None:
            return
        options = self.options
        invoker = Invoker(
            self.function,
            options.invoker,
            region_name=options.region_name,
            endpoint_url=options.endpoint_url,
        )
        try:
            self.configuration = invoker.client.get_function_configuration(
                FunctionName=options.function, **_qualifier(options.qualifier)
            )
            retries = self._retries(invoker)
        except (ClientError, BotoCoreError) as error:
            invoker.close()
            raise invoker.error(error) from error
        try:
            self._check_deployment(invoker)
        except ConfigError:
            invoker.close()
            raise
        timeout = self.configuration["Timeout"]
        lost_after = options.lost_after_seconds
        if lost_after is None:
            waits = sum(_RETRY_WAIT_SECONDS * 2**attempt for attempt in range(retries))
            lost_after = timeout * (retries + 1) + waits + _MARGIN_SECONDS
        self.capabilities = ComputeCapabilities(
            max_payload_bytes=invoker.max_payload_bytes,
            repeats_deliveries=True,
            bills_duration=True,
            lost_after_seconds=lost_after,
            retries_crashes=True,
            shares_filesystem=False,
            hash_seed=hash_seed(),
        )
        self._invoker = invoker

    def _check_deployment(self, invoker: Invoker) -> None:
        """Refuse a function that would run this client's tasks wrongly, or not to the end."""
        variables = self.configuration.get("Environment", {}).get("Variables", {})
        command = f"wukong lambda deploy --function {self.options.function}"
        redeploy = f"deploy it again from this environment: `{command}`"
        differences = stamp_differences(variables.get(STAMP_VARIABLE), version_stamp())
        if differences:
            raise ConfigError(
                f"{self.describe()} does not match this client: {'; '.join(differences)}. Tasks "
                f"pickled here may fail or differ there; {redeploy}"
            )
        seed, deployed = hash_seed(), variables.get(HASH_SEED_VARIABLE)
        if deployed != seed:
            has = "has no PYTHONHASHSEED" if deployed is None else f"has PYTHONHASHSEED={deployed}"
            raise ConfigError(
                f"{self.describe()} {has}, but this client's executors must hash with "
                f"PYTHONHASHSEED={seed} (dask.bag groupby partitions by hash); {redeploy}"
            )
        try:
            loop = invoker.client.get_function_recursion_config(FunctionName=self.options.function)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in NO_RECURSION_API:
                return
            raise invoker.error(error) from error
        except BotoCoreError as error:
            raise invoker.error(error) from error
        if loop.get("RecursiveLoop", "Allow") != "Allow":
            raise ConfigError(
                f"{self.describe()} stops recursive loops (RecursiveLoop={loop['RecursiveLoop']}), "
                "and wukong's executors invoke their own function: a chain longer than 16 hops "
                f"would be dropped silently; set RecursiveLoop=Allow, or {redeploy}"
            )

    def _retries(self, invoker: Invoker) -> int:
        try:
            config = invoker.client.get_function_event_invoke_config(
                FunctionName=self.options.function, **_qualifier(self.options.qualifier)
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return _DEFAULT_RETRIES
            raise
        return config.get("MaximumRetryAttempts", _DEFAULT_RETRIES)

    def invoke(self, payloads: Sequence[bytes]) -> None:
        """Invoke the function once per payload from the invoker pool."""
        if self._invoker is None:
            raise ComputeError(f"{self.describe()}: the backend is not started (or already closed)")
        self._invoker.invoke(payloads)

    def usage(self, invocations: int, billed_milliseconds: int) -> Usage:
        """Price the job at the function's memory size and the list prices (or the options')."""
        memory_gb = self.configuration.get("MemorySize", 128) / 1024
        architecture = (self.configuration.get("Architectures") or ["x86_64"])[0]
        price = self.options.price_per_gb_second
        if price is None:
            price = PRICE_PER_GB_SECOND_USD.get(architecture, PRICE_PER_GB_SECOND_USD["x86_64"])
        seconds = billed_milliseconds / 1000
        gb_seconds = seconds * memory_gb
        cost = invocations * self.options.price_per_request + gb_seconds * price
        return Usage(invocations, seconds, gb_seconds, cost)

    def close(self) -> None:
        """Stop the invoker pool."""
        invoker, self._invoker = self._invoker, None
        if invoker is not None:
            invoker.close()


def _qualifier(qualifier: str | None) -> dict[str, str]:
    return {"Qualifier": qualifier} if qualifier else {}
