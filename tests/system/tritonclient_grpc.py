"""Calls through NVIDIA's ``tritonclient.grpc``, run as its own process
(``python tests/system/tritonclient_grpc.py < calls.json``): its stubs and the service's are
both package ``inference``, so the two never share a process.

Reads ``{"url", "headers", "calls": [...]}`` on stdin and prints one JSON result per call:
``{"ok": true, ...}`` with what the client returned (outputs as lists with their datatype and
shape), or ``{"ok": false, "status", "message"}`` from the client's exception.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

NUMPY = {"FP32": np.float32, "FP64": np.float64, "INT32": np.int32, "INT64": np.int64}


def infer(client: Any, call: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    inputs = []
    for tensor in call["inputs"]:
        values = np.array(tensor["values"], dtype=NUMPY[tensor["datatype"]])
        item = grpcclient.InferInput(tensor["name"], list(values.shape), tensor["datatype"])
        item.set_data_from_numpy(values)
        inputs.append(item)
    outputs = [grpcclient.InferRequestedOutput(name) for name in call.get("outputs", [])]
    result = client.infer(
        call["model"],
        inputs,
        outputs=outputs or None,
        request_id=call.get("id", ""),
        parameters=call.get("parameters") or None,
        headers=headers,
        compression_algorithm=call.get("compression"),
        client_timeout=60,
    )
    response = result.get_response()
    return {
        "model_name": response.model_name,
        "id": response.id,
        "parameters": {
            key: getattr(value, value.WhichOneof("parameter_choice"))
            for key, value in response.parameters.items()
        },
        "outputs": {
            output.name: {
                "datatype": output.datatype,
                "shape": list(output.shape),
                "values": result.as_numpy(output.name).tolist(),
            }
            for output in response.outputs
        },
    }


def run(client: Any, call: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    kind = call["kind"]
    if kind == "infer":
        return infer(client, call, headers)
    if kind == "health":
        return {
            "live": client.is_server_live(headers=headers),
            "ready": client.is_server_ready(headers=headers),
            "model_ready": client.is_model_ready(call["model"], headers=headers),
        }
    if kind == "server_metadata":
        return client.get_server_metadata(headers=headers, as_json=True)
    if kind == "model_metadata":
        return client.get_model_metadata(call["model"], headers=headers, as_json=True)
    raise ValueError(f"unknown call kind {kind!r}")


def main() -> None:
    request = json.load(sys.stdin)
    headers = request.get("headers") or {}
    client = grpcclient.InferenceServerClient(url=request["url"])
    results = []
    try:
        for call in request["calls"]:
            try:
                results.append({"ok": True, **run(client, call, call.get("headers", headers))})
            except InferenceServerException as error:
                results.append({"ok": False, "status": error.status(), "message": error.message()})
    finally:
        client.close()
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
