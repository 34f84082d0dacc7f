"""Exact integers on /v2.

INT32 / INT64 tensors of the Open Inference Protocol (JSON data and binary chunks) are read as
the integers sent: array params built from them (CTC's ``target_lengths``) and every message
carry the value sent, never its float64 rounding (2**63 - 1 is 9223372036854775808.0 in
float64, 2**53 + 1 is 2**53), and the range check of a datatype is done on integers (2**63
passes a float64 comparison with 2**63 - 1).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

import service.losses  # noqa: F401  (registers every loss)
from service.api.jsonread import read
from service.api.v2 import tensors
from service.losses.registry import REGISTRY
from service.validation.errors import DomainError
from tests.support.oip import HEADER_LENGTH

DTYPES = {"INT32": "<i4", "INT64": "<i8", "FP64": "<f8"}
CTC = REGISTRY["ctc"].example  # 2 samples; targets (2, 2): target_lengths in [0, 2]
INT64_MAX, INT64_MIN = 2**63 - 1, -(2**63)
BEYOND_FLOAT = 2**53 + 1  # the first integer float64 cannot hold (it rounds to 2**53)


# --- /v2: integers ------------------------------------------------------------------------------


def json_tensor(name: str, values, datatype: str) -> dict:
    return {"name": name, "shape": list(np.shape(values)), "datatype": datatype, "data": values}


def ctc_request(lengths: list, datatype: str, binary: bool) -> tuple[bytes, dict[str, str]]:
    """The registry's CTC example with ``target_lengths`` as an INT tensor, JSON or binary."""
    inputs = [
        json_tensor("predictions", CTC["predictions"], "FP64"),
        json_tensor("targets", CTC["targets"], "INT64"),
    ]
    if not binary:
        inputs.append(json_tensor("target_lengths", lengths, datatype))
        return json.dumps({"inputs": inputs}).encode(), {}
    raw = np.array(lengths, dtype=DTYPES[datatype]).tobytes()
    inputs.append(
        {
            "name": "target_lengths",
            "shape": [len(lengths)],
            "datatype": datatype,
            "parameters": {"binary_data_size": len(raw)},
        }
    )
    header = json.dumps({"inputs": inputs}).encode()
    return header + raw, {HEADER_LENGTH: str(len(header))}


def infer_ctc(client: TestClient, lengths: list, datatype: str, binary: bool):
    content, headers = ctc_request(lengths, datatype, binary)
    return client.post("/v2/models/ctc/infer", content=content, headers=headers)


def refusal(response) -> dict:
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["error"] == problem["detail"]
    return problem


#: A length, the datatype, and what the message must say: the value sent, in full.
OUT_OF_RANGE_LENGTHS = [
    (INT64_MAX, "INT64", "target_lengths[0] = 9223372036854775807 is outside [0, 2]"),
    (BEYOND_FLOAT, "INT64", "target_lengths[0] = 9007199254740993 is outside [0, 2]"),
    (INT64_MIN, "INT64", "got -9223372036854775808"),
    (2**31 - 1, "INT32", "target_lengths[0] = 2147483647 is outside [0, 2]"),
    (-(2**31), "INT32", "got -2147483648"),
]


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
@pytest.mark.parametrize(("length", "datatype", "message"), OUT_OF_RANGE_LENGTHS)
def test_target_lengths_keep_the_integer_sent(
    client: TestClient, length: int, datatype: str, message: str, binary: bool
) -> None:
    problem = refusal(infer_ctc(client, [length, 1], datatype, binary))
    assert message in problem["error"], problem["error"]
    assert problem["errors"][0]["loc"][:4] == ["body", "inputs", "target_lengths", 0] or problem[
        "errors"
    ][0]["loc"][:3] == ["body", "params", "target_lengths"]


@pytest.mark.parametrize(
    ("value", "datatype", "message"),
    [
        (2**63, "INT64", "9223372036854775808 is outside the range of INT64"),
        (2**31, "INT32", "2147483648 is outside the range of INT32 [-2147483648, 2147483647]"),
        (-(2**31) - 1, "INT32", "-2147483649 is outside the range of INT32"),
        (1.5, "INT64", "target_lengths[0] = 1.5 is not an integer (datatype INT64)"),
        (9.3e18, "INT64", "target_lengths[0] = 9.3e+18 is outside the range of INT64"),
        (2.5, "INT32", "target_lengths[0] = 2.5 is not an integer (datatype INT32)"),
    ],
)
def test_json_values_outside_the_datatype_are_refused_with_their_value(
    client: TestClient, value, datatype: str, message: str
) -> None:
    problem = refusal(infer_ctc(client, [value, 1], datatype, binary=False))
    assert message in problem["error"], problem["error"]
    assert problem["errors"][0]["loc"] == ["body", "target_lengths", 0]


def test_a_float_later_in_the_data_is_named_at_its_index(client: TestClient) -> None:
    problem = refusal(infer_ctc(client, [1, INT64_MAX - 0.5], "INT64", binary=False))
    # INT64_MAX - 0.5 is the float 2**63 (a float in the data, whatever it rounds to).
    assert (
        "target_lengths[1] = 9.223372036854776e+18 is outside the range of INT64"
        in (problem["error"])
    )


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
@pytest.mark.parametrize("datatype", ["INT32", "INT64"])
def test_valid_integer_lengths_give_the_numbers_of_v1(
    client: TestClient, datatype: str, binary: bool
) -> None:
    v1 = client.post("/v1/losses/ctc", json=dict(CTC)).json()
    response = infer_ctc(client, CTC["params"]["target_lengths"], datatype, binary)
    assert response.status_code == 200, response.text
    outputs = {output["name"]: output["data"] for output in response.json()["outputs"]}
    assert outputs["cost"] == [v1["cost"]]
    assert outputs["per_sample"] == v1["per_sample"]


def test_integral_floats_in_an_int64_tensor_are_the_integers(client: TestClient) -> None:
    """JSON 2.0 in an INT64 tensor is the integer 2 (as before)."""
    v1 = client.post("/v1/losses/ctc", json=dict(CTC)).json()
    response = infer_ctc(client, [2.0, 1.0], "INT64", binary=False)
    assert response.status_code == 200, response.text
    outputs = {output["name"]: output["data"] for output in response.json()["outputs"]}
    assert outputs["cost"] == [v1["cost"]]


def test_integer_tensor_inputs_are_computed_in_float64(client: TestClient) -> None:
    """INT sample weights and targets reach the loss as float64, with the numbers of /v1."""
    body = {
        "inputs": [
            json_tensor("predictions", [[1.0, 2.0], [3.0, 5.0]], "FP64"),
            json_tensor("targets", [[1, 2], [2, 3]], "INT32"),
            json_tensor("sample_weight", [3, 1], "INT64"),
        ]
    }
    response = client.post("/v2/models/mse/infer", content=json.dumps(body).encode())
    assert response.status_code == 200, response.text
    outputs = {output["name"]: output["data"] for output in response.json()["outputs"]}
    # by hand: squared errors (0, 0) and (1, 4); weights 3 and 1 over 2 elements each:
    # sum = 3 x 0 + 1 x 5 = 5, weight_sum = 8, cost 0.625.
    assert outputs["cost"] == [0.625]
    assert outputs["weight_sum"] == [8.0]


# Unit level: the decoded values themselves.


@pytest.mark.parametrize(
    "values",
    [[INT64_MAX, INT64_MIN, BEYOND_FLOAT], [[BEYOND_FLOAT, 0], [-1, INT64_MAX]]],
)
def test_json_integers_decode_exactly(values: list) -> None:
    decoded = tensors.from_json("x", "INT64", list(np.shape(values)), values)
    assert decoded.dtype == np.int64
    assert decoded.tolist() == values
    assert tensors.as_parameter(decoded) == values
    parameter = tensors.as_parameter(decoded)
    flat = [v for row in parameter for v in row] if isinstance(parameter[0], list) else parameter
    assert all(type(value) is int for value in flat)  # Python ints, for the params model


def test_mixed_ints_and_floats_decode_exactly() -> None:
    """NumPy would make one float64 array of these (2**53 + 1 becoming 2**53)."""
    values = [BEYOND_FLOAT, 2.0, INT64_MAX]
    decoded = tensors.from_json("x", "INT64", [3], values)
    assert decoded.tolist() == [BEYOND_FLOAT, 2, INT64_MAX]


def json_data(text: str):
    """The ``data`` of a tensor as the service reads it from a body (a JsonArray)."""
    return read(b'{"data": ' + text.encode() + b"}").value("data", arrays={()})


def test_json_data_read_from_the_body() -> None:
    """Integer literals are read exactly; 2.0 is an integer; 2**63 and up are out of range,
    a fraction is not an integer, each named with its value."""
    exact = tensors.from_json("x", "INT64", [3], json_data(f"[{INT64_MAX}, -{2**63}, 2.0]"))
    assert exact.tolist() == [INT64_MAX, -(2**63), 2]
    assert exact.dtype == np.int64
    with pytest.raises(DomainError, match=r"x\[1\] = 9223372036854775808 is outside"):
        tensors.from_json("x", "INT64", [2], json_data(f"[1, {2**63}]"))
    with pytest.raises(DomainError, match=r"x\[0\] = 2147483648 is outside the range of INT32"):
        tensors.from_json("x", "INT32", [2], json_data(f"[{2**31}, 0]"))
    # Past int64 below too, though its double (-2.0**63) would be in range.
    with pytest.raises(DomainError, match=r"x\[0\] = -9223372036854775809 is outside"):
        tensors.from_json("x", "INT64", [2], json_data(f"[-{2**63 + 1}, 1.5]"))
    with pytest.raises(DomainError, match=r"x\[1\] = 0.5 is not an integer"):
        tensors.from_json("x", "INT64", [2], json_data("[1.0, 0.5]"))
    with pytest.raises(Exception, match="ragged"):
        tensors.from_json("x", "INT64", [3], json_data("[[1], [2, 3]]"))


def test_structure_errors_are_those_of_every_array() -> None:
    with pytest.raises(Exception, match="ragged"):
        tensors.from_json("x", "INT64", [3], [[1], [2, 3]])
    with pytest.raises(Exception, match="x\\[1\\]"):
        tensors.from_json("x", "INT64", [2], [1, True])


@pytest.mark.parametrize("datatype", ["INT32", "INT64"])
def test_binary_integers_decode_exactly(datatype: str) -> None:
    info = np.iinfo(DTYPES[datatype])
    values = [int(info.max), int(info.min), 7]
    raw = memoryview(np.array(values, dtype=DTYPES[datatype]).tobytes())
    decoded = tensors.from_bytes("x", datatype, [3], raw)
    assert decoded.dtype == np.int64 and decoded.tolist() == values
