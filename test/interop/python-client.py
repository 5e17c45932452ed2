#!/usr/bin/python3
"""gRPC C-core client for the interop tests (the stack behind Envoy's Google gRPC client).

Same contract as go-client/main.go: JSON on stdin (target, calls [{request (base64), metadata,
repeat}], concurrency, delay_ms, timeout_ms, options: C-core channel arguments such as keepalive),
JSON on stdout (results [{index, code, message, response (base64)}] in call order). Request and
response stay bytes: the test encodes and decodes them with Envoy's official protos.
"""

import base64
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc

CHECK_METHOD = "/envoy.service.auth.v3.Authorization/Check"


def main():
    spec = json.load(sys.stdin)
    concurrency = max(1, int(spec.get("concurrency", 1)))
    delay = int(spec.get("delay_ms", 0)) / 1000.0
    timeout = int(spec.get("timeout_ms", 10000)) / 1000.0
    options = [(k, v) for k, v in spec.get("options", {}).items()]

    jobs = []
    for c in spec["calls"]:
        request = base64.b64decode(c["request"])
        metadata = tuple((k, v) for k, v in (c.get("metadata") or {}).items())
        for _ in range(max(1, int(c.get("repeat", 1)))):
            jobs.append((len(jobs), request, metadata))

    channel = grpc.insecure_channel(spec["target"], options=options)
    # grpcio reads the socket only while some thread waits on C-core: without a call in flight
    # nobody would, and pings (the server's and our own keepalive) would sit unread until the next
    # call. Watching connectivity keeps a thread polling, as Envoy's gRPC client thread always is.
    channel.subscribe(lambda _state: None)
    # No serializers: C-core sends and returns the raw message bytes.
    check = channel.unary_unary(CHECK_METHOD)
    results = [None] * len(jobs)
    lock = threading.Lock()
    queue = iter(jobs)

    def worker():
        first = True
        while True:
            with lock:
                job = next(queue, None)
            if job is None:
                return
            if not first and delay > 0:
                time.sleep(delay)
            first = False
            index, request, metadata = job
            try:
                response = check(request, metadata=metadata, timeout=timeout)
                results[index] = result(index, 0, "", response)
            except grpc.RpcError as err:
                results[index] = result(index, err.code().value[0], err.details() or "", b"")

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for f in [pool.submit(worker) for _ in range(concurrency)]:
            f.result()
    channel.close()
    json.dump({"stack": "grpcio " + grpc.__version__, "results": results}, sys.stdout)


def result(index, code, message, response):
    return {
        "index": index,
        "code": code,
        "message": message,
        "response": base64.b64encode(response).decode("ascii"),
    }


if __name__ == "__main__":
    main()
