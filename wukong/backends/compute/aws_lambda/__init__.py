"""The AWS Lambda compute backend: executors are asynchronous invocations of one Lambda function.

- :mod:`.events`: how a payload travels as a Lambda event, and the API's size limits.
- :mod:`.invoker`: a pool of threads invoking the function through boto3.
- :mod:`.handler`: the function's entry point, which runs wukong's executor.
- :mod:`.backend`: the backend the client uses (checks the function, invokes leaves, prices usage).
- :mod:`.deploy`: builds the deployment package and creates or updates the function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wukong.backends.compute.aws_lambda.backend import LambdaCompute, LambdaOptions

__all__ = ["LambdaCompute", "LambdaOptions"]


def __getattr__(name: str) -> Any:
    """Load the client's backend on first use: the function's handler imports this package too."""
    if name in __all__:
        from wukong.backends.compute.aws_lambda import backend

        return getattr(backend, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
