"""Invocation throughput: 1,000 asynchronous invokes with one invoker thread and with the pool.

Runs the local Lambda Invoke API server (a no-op handler, so only the invoke path is measured) and
times ``LambdaCompute.invoke`` of 1,000 payloads the way a job's leaves are invoked: once with a
single invoker thread and once with the default pool, for each simulated API latency. AWS answers
an asynchronous invoke in tens of milliseconds; on loopback the answer is immediate, so the pool
then only overlaps boto3's own work, which the GIL serialises. Target: the pool at least 5x one
invoker.

    python benchmarks/lambda_invoke.py [--invokes 1000] [--latency-ms 0 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from wukong.backends.compute.aws_lambda import LambdaCompute
from wukong.backends.compute.aws_lambda.invoker import InvokerSettings
from wukong.testing.servers import lambda_server


def invokes_per_second(endpoint: str, invokers: int, invokes: int, repeat: int) -> float:
    """Median rate of ``repeat`` batches of ``invokes`` payloads with ``invokers`` threads."""
    backend = LambdaCompute(
        endpoint_url=endpoint, region_name="us-east-1", invoker=InvokerSettings(invokers=invokers)
    )
    backend.start(lambda payload, context: None)
    payloads = [bytes(64)] * invokes
    try:
        backend.invoke(payloads[: min(invokes, invokers * 2)])  # open the connections first
        rates = []
        for _ in range(repeat):
            started = time.perf_counter()
            backend.invoke(payloads)
            rates.append(invokes / (time.perf_counter() - started))
    finally:
        backend.close()
    return statistics.median(rates)


def main() -> None:
    """Print invokes per second, one invoker against the pool, for each latency."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invokes", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0.0, 20.0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    pool = InvokerSettings().invokers
    print(f"{args.invokes:,} asynchronous invokes, median of {args.repeat}; pool = {pool} invokers\n")
    print("| API latency | 1 invoker (invokes/s) | pool (invokes/s) | pool / 1 |")
    print("|---:|---:|---:|---:|")
    for latency in args.latency_ms:
        options = ["--handler", "wukong.testing.lambda_server.noop_handler", "--latency-ms", str(latency)]
        with lambda_server(*options) as server:
            single = invokes_per_second(server.url, 1, args.invokes, args.repeat)
            pooled = invokes_per_second(server.url, pool, args.invokes, args.repeat)
        print(f"| {latency:g} ms | {single:,.0f} | {pooled:,.0f} | {pooled / single:.1f}x |")


if __name__ == "__main__":
    main()
