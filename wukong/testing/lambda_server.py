"""A local stand-in for AWS Lambda's Invoke API, running a real handler in worker processes.

Run it as ``python -m wukong.testing.lambda_server --port 9001`` (or with
:func:`wukong.testing.servers.lambda_server`) and point boto3 at it with ``endpoint_url``: the
client's real boto3 calls go over HTTP to it, and the function's real handler runs in its workers.

What it does as Lambda does:

- ``Invoke`` (``POST /2015-03-31/functions/NAME/invocations``): ``Event`` invokes are queued and
  answered 202; ``RequestResponse`` invokes answer 200 with the handler's JSON result, or with
  ``X-Amz-Function-Error: Unhandled`` and Lambda's error document when the handler raises, its
  process dies or it runs past the function's timeout; ``DryRun`` answers 204.
- Limits and error shapes: a request over 1 MB (asynchronous) or 6 MB (synchronous) is refused
  with 413 ``RequestEntityTooLargeException``; a synchronous invoke when every worker is busy (the
  concurrency cap), or any invoke over ``--max-rate`` requests per second (Lambda's invoke-rate
  quota; asynchronous events are otherwise queued, never refused), is refused with 429
  ``TooManyRequestsException``; an unknown function is 404 ``ResourceNotFoundException``; a body
  that is not JSON is 400 ``InvalidRequestContentException``.
- At-least-once delivery: a failed asynchronous event is retried ``--retries`` times (Lambda's
  default is 2) after ``--retry-delay`` seconds; ``--duplicates`` delivers every event twice.
- ``GetFunctionConfiguration`` and ``GetFunctionEventInvokeConfig`` for the one function it serves,
  and a context object with ``invoked_function_arn``, ``aws_request_id`` and
  ``get_remaining_time_in_millis()``. Workers are warm processes reused across invocations; their
  environment holds ``AWS_LAMBDA_FUNCTION_NAME``, ``AWS_REGION`` and ``AWS_ENDPOINT_URL_LAMBDA``
  (this server), so the handler's own boto3 client invokes through it too.

What it cannot show: cold starts, AWS's network latency (``--latency-ms`` adds a fixed delay to
every invoke's answer instead), memory limits, the packaging of the code (workers import it from
this environment), IAM, and AWS's acceptance of a deployment package. ``GET /_local/stats`` returns
its counters (accepted, throttled, deliveries, failures, retries).
"""

from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing
import os
import queue
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from wukong.backends.compute.aws_lambda.events import ASYNC_PAYLOAD_LIMIT, SYNC_PAYLOAD_LIMIT
from wukong.backends.compute.environment import environment

ACCOUNT = "123456789012"
HANDLER = "wukong.backends.compute.aws_lambda.handler.handler"


@dataclass(frozen=True)
class FunctionSpec:
    """The one function a server runs, and how the platform behaves."""

    name: str = "wukong-executor"
    handler: str = HANDLER
    region: str = "us-east-1"
    memory_mb: int = 1024
    timeout: float = 60.0
    concurrency: int = 2
    retries: int = 2
    retry_delay: float = 0.5
    duplicates: bool = False
    max_rate: float | None = None
    latency_ms: float = 0.0
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def arn(self) -> str:
        """The function's ARN."""
        return f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{self.name}"

    def configuration(self) -> dict[str, Any]:
        """What ``GetFunctionConfiguration`` answers."""
        return {
            "FunctionName": self.name,
            "FunctionArn": self.arn,
            "Runtime": f"python{sys.version_info.major}.{sys.version_info.minor}",  # it runs this Python
            "Role": f"arn:aws:iam::{ACCOUNT}:role/wukong-executor",
            "Handler": self.handler,
            "Timeout": self.timeout,
            "MemorySize": self.memory_mb,
            "Architectures": ["x86_64"],
            "State": "Active",
            "Version": "$LATEST",
            "Environment": {"Variables": dict(self.environment)},
        }


class _LambdaContext:
    """The context object a handler receives, with the attributes wukong reads."""

    def __init__(self, spec: FunctionSpec, request_id: str, deadline: float):
        self.function_name = spec.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = spec.arn
        self.memory_limit_in_mb = spec.memory_mb
        self.aws_request_id = request_id
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def _worker_main(connection: Any, spec: FunctionSpec) -> None:
    """A warm container: import the handler once, then run one event at a time."""
    module, _, name = spec.handler.rpartition(".")
    handler = getattr(importlib.import_module(module), name)
    while True:
        try:
            request_id, event, deadline = connection.recv()
        except EOFError:
            return
        try:
            result = handler(event, _LambdaContext(spec, request_id, deadline))
            reply = ("ok", json.dumps(result))
        except Exception as error:
            reply = ("error", type(error).__name__, str(error), traceback.format_exc().splitlines())
        connection.send(reply)


@dataclass
class _Outcome:
    ok: bool
    body: str  # the handler's JSON result, or Lambda's error document


class _Worker:
    """One worker process and the pipe to it; replaced when it dies or times out."""

    def __init__(self, spec: FunctionSpec, environment: dict[str, str]):
        self.spec, self.environment = spec, environment
        self.process: Any = None
        self.connection: Any = None

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(theirs, self.spec), daemon=True)
        with environment(self.environment):  # as Lambda starts a runtime: with the function's variables
            self.process.start()
        theirs.close()
        self.connection = ours

    def run(self, event: Any, request_id: str) -> _Outcome:
        if self.process is None or not self.process.is_alive():
            self._start()
        deadline = time.time() + self.spec.timeout
        self.connection.send((request_id, event, deadline))
        # Importing the handler in a new process is not part of the invocation's time limit.
        if self.connection.poll(self.spec.timeout + 30):
            try:
                reply = self.connection.recv()
            except EOFError:
                self.stop()
                return _error(request_id, "Runtime.ExitError", "Runtime exited without providing a reason")
            if reply[0] == "ok":
                return _Outcome(True, reply[1])
            _, error_type, message, stack = reply
            return _error(request_id, error_type, message, stack)
        self.stop()
        return _error(request_id, "Sandbox.Timedout", f"Task timed out after {self.spec.timeout:.2f} seconds")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.join()
            self.connection.close()
        self.process = None


def _error(request_id: str, error_type: str, message: str, stack: list[str] | None = None) -> _Outcome:
    document = {"errorMessage": message, "errorType": error_type, "requestId": request_id}
    document["stackTrace"] = stack or []
    return _Outcome(False, json.dumps(document))


@dataclass
class _Event:
    body: Any
    attempt: int = 0
    reply: queue.SimpleQueue | None = None  # set for a synchronous invoke
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))  # kept by its retries


class LocalFunction:
    """The platform: an event queue served by ``concurrency`` warm workers, with retries."""

    def __init__(self, spec: FunctionSpec, endpoint: str):
        self.spec = spec
        self.stats: Counter[str] = Counter()
        self._events: queue.Queue[_Event | None] = queue.Queue()
        self._lock = threading.Lock()
        self._busy = 0
        self._queued = 0
        self._tokens = spec.max_rate or 0.0
        self._refilled = time.monotonic()
        environment = {
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_REGION": spec.region,
            "AWS_DEFAULT_REGION": spec.region,
            "AWS_ENDPOINT_URL_LAMBDA": endpoint,
            # One BLAS thread per worker, as the local pool does: workers share this machine's cores.
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            **spec.environment,
        }
        environment.setdefault("AWS_ACCESS_KEY_ID", os.environ.get("AWS_ACCESS_KEY_ID", "local"))
        environment.setdefault("AWS_SECRET_ACCESS_KEY", os.environ.get("AWS_SECRET_ACCESS_KEY", "local"))
        self._workers = [_Worker(spec, environment) for _ in range(spec.concurrency)]
        self._slots = [
            threading.Thread(target=self._serve, args=(worker,), daemon=True, name=f"slot-{number}")
            for number, worker in enumerate(self._workers)
        ]
        for slot in self._slots:
            slot.start()

    def _within_rate(self) -> bool:
        """Take a token from the invoke-rate bucket (``max_rate`` per second, as deep); hold the lock."""
        rate = self.spec.max_rate
        if rate is None:
            return True
        now = time.monotonic()
        self._tokens = min(rate, self._tokens + (now - self._refilled) * rate)
        self._refilled = now
        if self._tokens < 1:
            self.stats["throttled"] += 1
            return False
        self._tokens -= 1
        return True

    def submit(self, body: Any) -> bool:
        """Queue an asynchronous event (twice with duplicates); ``False`` when throttled."""
        copies = 2 if self.spec.duplicates else 1
        with self._lock:
            if not self._within_rate():
                return False
            self._queued += copies
            self.stats["accepted"] += 1
        for _ in range(copies):
            self._events.put(_Event(body))
        return True

    def call(self, body: Any) -> _Outcome | None:
        """Run a synchronous invoke; ``None`` when every worker is busy (throttled)."""
        with self._lock:
            if not self._within_rate():
                return None
            if self._busy + self._queued >= self.spec.concurrency:
                self.stats["throttled"] += 1
                return None
            self._queued += 1
        reply: queue.SimpleQueue = queue.SimpleQueue()
        self._events.put(_Event(body, reply=reply))
        return reply.get()

    def _serve(self, worker: _Worker) -> None:
        while (event := self._events.get()) is not None:
            with self._lock:
                self._queued -= 1
                self._busy += 1
                self.stats["deliveries"] += 1
            try:
                outcome = worker.run(event.body, event.request_id)
            finally:
                with self._lock:
                    self._busy -= 1
            if event.reply is not None:
                event.reply.put(outcome)
            elif not outcome.ok:
                self._failed(event, outcome)
        worker.stop()

    def _failed(self, event: _Event, outcome: _Outcome) -> None:
        with self._lock:
            self.stats["failures"] += 1
            if event.attempt >= self.spec.retries:
                self.stats["dropped"] += 1
                return
            self.stats["retries"] += 1
            self._queued += 1
        retry = _Event(event.body, attempt=event.attempt + 1, request_id=event.request_id)
        timer = threading.Timer(self.spec.retry_delay, self._events.put, args=(retry,))
        timer.daemon = True
        timer.start()

    def close(self) -> None:
        """Stop every worker."""
        for _ in self._slots:
            self._events.put(None)
        for slot in self._slots:
            slot.join(timeout=5)
        for worker in self._workers:
            worker.stop()


class _InvokeApi(BaseHTTPRequestHandler):
    """The HTTP routes; ``self.server.function`` is the :class:`LocalFunction`."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request would drown test output

    def do_GET(self) -> None:
        path = self._path()
        function = self.server.function
        spec = function.spec
        if path == "/_local/stats":
            self._send(200, json.dumps(dict(function.stats)))
        elif (name := _function_named(path, "/2015-03-31/functions/", "/configuration")) is not None:
            if self._known(name):
                self._send(200, json.dumps(spec.configuration()))
        elif (name := _function_named(path, "/2019-09-25/functions/", "/event-invoke-config")) is not None:
            if self._known(name):
                config = {"FunctionArn": spec.arn, "MaximumRetryAttempts": spec.retries}
                self._send(200, json.dumps({**config, "MaximumEventAgeInSeconds": 21600}))
        else:
            self._send_error(404, "ResourceNotFoundException", f"No such resource: {path}")

    def do_POST(self) -> None:
        path = self._path()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        name = _function_named(path, "/2015-03-31/functions/", "/invocations")
        if name is None:
            self._send_error(404, "ResourceNotFoundException", f"No such resource: {path}")
            return
        if not self._known(name):
            return
        function = self.server.function
        kind = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        limit = ASYNC_PAYLOAD_LIMIT if kind == "Event" else SYNC_PAYLOAD_LIMIT
        if len(body) > limit:
            message = f"Request must be smaller than {limit} bytes for the InvokeFunction operation"
            self._send_error(413, "RequestEntityTooLargeException", message)
            return
        try:
            event = json.loads(body or b"{}")
        except ValueError:
            self._send_error(400, "InvalidRequestContentException", "Could not parse request body into json")
            return
        if function.spec.latency_ms:
            time.sleep(function.spec.latency_ms / 1000)
        if kind == "DryRun":
            self._send(204, "")
        elif kind == "Event":
            if function.submit(event):
                self._send(202, "")
            else:
                self._throttled()
        else:
            outcome = function.call(event)
            if outcome is None:
                self._throttled()
                return
            headers = {"X-Amz-Executed-Version": "$LATEST"}
            if not outcome.ok:
                headers["X-Amz-Function-Error"] = "Unhandled"
            self._send(200, outcome.body, headers)

    def _path(self) -> str:
        return urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)

    def _known(self, name: str) -> bool:
        """Whether ``name`` (a name or ARN, maybe qualified) is the function; else answer 404."""
        spec = self.server.function.spec
        if name in (spec.name, spec.arn) or name.startswith((f"{spec.arn}:", f"{spec.name}:")):
            return True
        arn = name if name.startswith("arn:") else f"arn:aws:lambda:{spec.region}:{ACCOUNT}:function:{name}"
        self._send_error(404, "ResourceNotFoundException", f"Function not found: {arn}")
        return False

    def _throttled(self) -> None:
        self._send_error(429, "TooManyRequestsException", "Rate Exceeded.",
                         {"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"})  # fmt: skip

    def _send_error(self, status: int, code: str, message: str, extra: dict | None = None) -> None:
        document = {"Type": "User", "message": message, **(extra or {})}
        self._send(status, json.dumps(document), {"x-amzn-ErrorType": code})

    def _send(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _function_named(path: str, prefix: str, suffix: str) -> str | None:
    """The function name in ``path`` if it is ``prefix + NAME + suffix``."""
    if path.startswith(prefix) and path.endswith(suffix) and len(path) > len(prefix) + len(suffix):
        return path[len(prefix) : -len(suffix)]
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    function: LocalFunction


def serve(spec: FunctionSpec, host: str = "127.0.0.1", port: int = 0) -> None:
    """Serve ``spec`` on ``host:port`` until interrupted."""
    server = _Server((host, port), _InvokeApi)
    server.function = LocalFunction(spec, f"http://{host}:{server.server_address[1]}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.function.close()


def noop_handler(event: Any, context: Any) -> None:
    """A handler that does nothing: for measuring the Invoke API path alone."""


def _environment(pairs: list[str]) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in pairs)


def main(argv: list[str] | None = None) -> None:
    """``python -m wukong.testing.lambda_server``: serve one function until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = FunctionSpec()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--function", default=defaults.name)
    parser.add_argument("--handler", default=defaults.handler, help="module.function to run")
    parser.add_argument("--region", default=defaults.region)
    parser.add_argument("--memory", type=int, default=defaults.memory_mb, help="MB (reported, not enforced)")
    parser.add_argument("--timeout", type=float, default=defaults.timeout, help="seconds per invocation")
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency, help="worker processes")
    parser.add_argument("--retries", type=int, default=defaults.retries, help="retries of a failed event")
    parser.add_argument("--retry-delay", type=float, default=defaults.retry_delay, help="seconds")
    parser.add_argument("--duplicates", action="store_true", help="deliver every event twice")
    parser.add_argument("--max-rate", type=float, help="invokes per second before 429 (and burst)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every invoke's answer")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    spec = FunctionSpec(
        name=args.function,
        handler=args.handler,
        region=args.region,
        memory_mb=args.memory,
        timeout=args.timeout,
        concurrency=args.concurrency,
        retries=args.retries,
        retry_delay=args.retry_delay,
        duplicates=args.duplicates,
        max_rate=args.max_rate,
        latency_ms=args.latency_ms,
        environment=_environment(args.env),
    )
    serve(spec, args.host, args.port)


if __name__ == "__main__":
    main()
