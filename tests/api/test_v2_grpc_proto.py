"""The gRPC protocol definition: the committed modules are what grpcio-tools generates from the
committed proto, and the proto is the protocol's (every message, field and RPC it declares is
the one tritonclient's own ``inference`` package declares, field numbers and types included).

tritonclient's descriptors are read in a subprocess: both packages are named ``inference``, and
one process's default descriptor pool refuses the second definition.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from service.api.v2_grpc import generate

pytest.importorskip("grpc_tools", reason="grpcio-tools is a development dependency (make test)")

DUMP = """
import json, sys, importlib
module = importlib.import_module(sys.argv[1])
file = module.DESCRIPTOR
def repeated(field):
    return field.is_repeated if hasattr(field, "is_repeated") else field.label == 3
def fields(message):
    out = {f.name: [f.number, f.type, repeated(f), f.message_type.full_name if f.message_type else ""]
           for f in message.fields}
    out.update({"<oneofs>": sorted(o.name for o in message.oneofs)})
    return out
def walk(message, into):
    into[message.full_name] = fields(message)
    for nested in message.nested_types:
        if not nested.GetOptions().map_entry:
            walk(nested, into)
messages = {}
for message in file.message_types_by_name.values():
    walk(message, messages)
service = file.services_by_name["GRPCInferenceService"]
methods = {m.name: [m.input_type.full_name, m.output_type.full_name] for m in service.methods}
print(json.dumps({"package": file.package, "messages": messages, "methods": methods}))
"""


def descriptors(module: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", DUMP, module],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_generated_modules_are_those_of_the_proto(tmp_path: Path) -> None:
    for generated in generate.generate(tmp_path):
        committed = generate.PROTO.with_name(generated.name)
        assert committed.read_bytes() == generated.read_bytes(), (
            f"{committed.name} is not what the proto generates: "
            "run python -m service.api.v2_grpc.generate"
        )


def test_every_message_and_rpc_is_the_protocols_as_tritonclient_has_it() -> None:
    if importlib.util.find_spec("tritonclient") is None:  # not imported here: see above
        pytest.skip("tritonclient[grpc] is a test dependency (make test installs it)")
    ours = descriptors("service.api.v2_grpc.grpc_predict_v2_pb2")
    triton = descriptors("tritonclient.grpc.service_pb2")
    assert ours["package"] == triton["package"] == "inference"
    assert set(ours["methods"]) == {
        "ServerLive",
        "ServerReady",
        "ModelReady",
        "ServerMetadata",
        "ModelMetadata",
        "ModelInfer",
    }
    for name, types in ours["methods"].items():
        assert triton["methods"][name] == types, name
    for name, fields in ours["messages"].items():
        assert name in triton["messages"], name
        assert fields == triton["messages"][name], name
