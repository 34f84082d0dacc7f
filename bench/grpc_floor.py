"""The floor for gRPC: a bare ``grpc.aio`` server (uvloop, as the service runs) with one generic
unary handler on ``ModelInfer``'s path, identity (de)serializers and no protobuf, that answers
every call with the first ``--response-bytes`` bytes of its request (the whole request when
that is 0 or larger): the transport alone, with a response of the real one's size. Its
allocator is tuned as the service's (:func:`service.ops.memory.tune_allocator`), so the two
differ by the service's work only.

    python -m bench.grpc_floor --port G [--response-bytes N]
"""

from __future__ import annotations

import argparse

import grpc
import uvloop

from service.ops.memory import tune_allocator

METHOD = "/inference.GRPCInferenceService/ModelInfer"
SERVICE, NAME = METHOD.strip("/").split("/")


async def serve(port: int, response_bytes: int) -> None:
    async def echo(request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
        return request[:response_bytes] if response_bytes else request

    # No (de)serializers: the handler sees and returns the message's bytes.
    handler = grpc.method_handlers_generic_handler(
        SERVICE, {NAME: grpc.unary_unary_rpc_method_handler(echo)}
    )
    # The service's message options: no receive limit below its 256 MiB body limit.
    options = [
        ("grpc.max_receive_message_length", 268_435_456),
        ("grpc.max_send_message_length", -1),
    ]
    server = grpc.aio.server(options=options)
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--response-bytes", type=int, default=0)
    args = parser.parse_args(argv)
    tune_allocator()
    uvloop.run(serve(args.port, args.response_bytes))


if __name__ == "__main__":
    main()
