#!/usr/bin/python3
"""Translates the lines of standard input through a kvmt-server, from Python.

Uses Debian's python3-grpcio and the modules generate_stubs.sh makes from proto/:

    examples/python/generate_stubs.sh /tmp/kvmt_stubs
    PYTHONPATH=/tmp/kvmt_stubs examples/python/translate_client.py \
        --server 127.0.0.1:50051 [--stream] [--beam-size 1] < lines.txt

Waits for the server's health service to say SERVING, checks that the model exists, then sends
the lines in batches, one unary Translate call each (or TranslateStream with --stream), with a
deadline per call. UNAVAILABLE and a full queue are retried with backoff; every other error ends
the run with the gRPC status code and message. Prints one translation per input line, in order.
"""

import argparse
import sys
import time

import grpc
from kvmt_health import health_pb2, health_pb2_grpc
from kvmt.v1 import translation_pb2, translation_pb2_grpc

RETRIED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)


def wait_until_serving(channel, seconds):
    """Polls grpc.health.v1.Health/Check until the server says SERVING."""
    health = health_pb2_grpc.HealthStub(channel)
    give_up = time.monotonic() + seconds
    while True:
        try:
            reply = health.Check(health_pb2.HealthCheckRequest(service="kvmt.v1.Translator"),
                                 timeout=2)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE:
                raise
        if time.monotonic() > give_up:
            sys.exit(f"the server is not SERVING after {seconds} s")
        time.sleep(0.2)


def with_retries(call, retry_seconds):
    """Runs call(); retries UNAVAILABLE, and RESOURCE_EXHAUSTED for a full queue, with backoff."""
    give_up = time.monotonic() + retry_seconds
    backoff = 0.1
    while True:
        try:
            return call()
        except grpc.RpcError as error:
            transient = error.code() == grpc.StatusCode.UNAVAILABLE or (
                error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                and error.details().startswith("the queue is full"))
            if not transient or time.monotonic() + backoff > give_up:
                raise
            time.sleep(backoff)
            backoff = min(backoff * 2, 5.0)


def translate(stub, request, stream, timeout):
    """One batch: the best hypothesis of each segment, in order."""
    if not stream:
        response = stub.Translate(request, timeout=timeout)
        return [result.hypotheses[0].text for result in response.results]
    texts = [None] * len(request.segments)
    for message in stub.TranslateStream(request, timeout=timeout):
        # Tokens arrive as they are generated (beam size 1); results as segments finish.
        for event in message.results:
            texts[event.segment_index] = event.result.hypotheses[0].text
    return texts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, help="HOST:PORT of a kvmt-server")
    parser.add_argument("--model", default="", help="served model name; empty: the default")
    parser.add_argument("--stream", action="store_true", help="use TranslateStream")
    parser.add_argument("--beam-size", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=32, help="lines per call")
    parser.add_argument("--timeout", type=float, default=60, help="deadline of each call, s")
    args = parser.parse_args()

    with grpc.insecure_channel(args.server) as channel:
        wait_until_serving(channel, seconds=30)
        stub = translation_pb2_grpc.TranslatorStub(channel)
        models = stub.ListModels(translation_pb2.ListModelsRequest(), timeout=10).models
        names = [model.name for model in models]
        if args.model and args.model not in names:
            sys.exit(f"the server serves no model '{args.model}'; it serves {', '.join(names)}")

        try:
            lines = sys.stdin.buffer.read().decode("utf-8").splitlines()
        except UnicodeDecodeError as error:
            sys.exit(f"standard input is not UTF-8: {error}")
        for begin in range(0, len(lines), args.batch_size):
            request = translation_pb2.TranslateRequest(model=args.model)
            request.options.beam_size = args.beam_size
            for line in lines[begin:begin + args.batch_size]:
                request.segments.add(text=line)
            try:
                texts = with_retries(
                    lambda: translate(stub, request, args.stream, args.timeout), retry_seconds=60)
            except grpc.RpcError as error:
                sys.exit(f"lines {begin + 1}-{begin + len(request.segments)}: "
                         f"{error.code().name}: {error.details()}")
            for text in texts:
                print(text)


if __name__ == "__main__":
    main()
