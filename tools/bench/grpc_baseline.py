"""The gRPC baseline of `ringctl bench`: a unary call with a 64-byte payload over a Unix socket,
Python grpcio on both sides, server and client in separate processes pinned to distinct CPUs.

Prints one JSON row in the format of tools/bench/src/report.rs. Usage:
    grpc_baseline.py [--iters N] [--warmup N] [--size N]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent import futures

import grpc

METHOD = "/ring.bench.Echo/Echo"


def pin(cpu):
    online = os.cpu_count() or 1
    if online > 1:
        os.sched_setaffinity(0, {cpu % online})


def serve(path):
    pin(1)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    # Raw bytes in and out: no protobuf code generation needed to measure the transport.
    handler = grpc.method_handlers_generic_handler(
        "ring.bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(lambda request, context: request)}
    )
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"unix:{path}")
    server.start()
    print("ready", flush=True)
    sys.stdin.read()  # until the client closes our stdin
    server.stop(0)


def percentile(sorted_samples, q):
    return sorted_samples[min(len(sorted_samples) - 1, int(q * len(sorted_samples)))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iters", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    pin(0)
    path = os.path.join(tempfile.mkdtemp(prefix="ring-bench-grpc-"), "echo.sock")
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        if server.stdout.readline().strip() != "ready":
            raise SystemExit("grpc baseline: the server did not start")
        with grpc.insecure_channel(f"unix:{path}") as channel:
            echo = channel.unary_unary(METHOD)
            payload = bytes(args.size)
            samples = []
            for i in range(args.warmup + args.iters):
                start = time.perf_counter_ns()
                reply = echo(payload)
                elapsed = time.perf_counter_ns() - start
                if len(reply) != args.size:
                    raise SystemExit("grpc baseline: wrong reply size")
                if i >= args.warmup:
                    samples.append(elapsed)
        samples.sort()
        row = {
            "case": "call_latency",
            "system": "grpc",
            "payload_bytes": args.size,
            "wait": "block",
            "subscribers": None,
            "p50_ns": percentile(samples, 0.5),
            "p99_ns": percentile(samples, 0.99),
            "p999_ns": percentile(samples, 0.999),
            "msgs_per_s": None,
            "bytes_per_s": None,
        }
        print(json.dumps(row, separators=(",", ":")))
    finally:
        server.stdin.close()
        server.wait(timeout=10)
        try:
            os.remove(path)
            os.rmdir(os.path.dirname(path))
        except OSError:
            pass


if __name__ == "__main__":
    main()
