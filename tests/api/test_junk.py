"""Junk never gets a 5xx (API.md: "No input makes the service answer 500"), and a 200 never
carries a non-finite number.

Two kinds of junk, both from tests/strategies/junk.py: any JSON document for any loss, and, for
every family of the registry, requests in (mostly) a loss's own layout with edge values, so
that they get past the structure and reach the contracts, domains and kernels.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

import service.losses  # noqa: F401  (registers every loss)
from service.losses.registry import REGISTRY
from tests.api.helpers import assert_finite, assert_problem, post, strict_json
from tests.strategies.junk import FAMILIES, LAYOUTS, REQUESTS, loss_requests


@given(loss=st.sampled_from(sorted(REGISTRY)), document=REQUESTS)
def test_junk_json_never_gets_a_5xx(client: TestClient, loss: str, document: Any) -> None:
    response = post(client, loss, json.dumps(document).encode())
    assert response.status_code < 500, response.text
    if response.status_code == 200:

        def refuse(token: str) -> None:
            raise AssertionError(f"a 200 carries {token}")

        json.loads(response.text, parse_constant=refuse)
    else:
        assert_problem(response, response.status_code)


def test_every_family_has_a_junk_layout() -> None:
    """A family added to the registry gets junk in its own layout, or fails here."""
    assert set(FAMILIES) <= set(LAYOUTS), sorted(set(FAMILIES) - set(LAYOUTS))


@pytest.mark.parametrize("family", FAMILIES)
@given(data=st.data())
def test_junk_in_each_layout_never_gets_a_5xx_or_a_non_finite_200(
    client: TestClient, family: str, data: st.DataObject
) -> None:
    loss, document = data.draw(loss_requests((family,)), label="request")
    response = post(client, loss, json.dumps(document).encode())
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        result = strict_json(response.text)  # no NaN / Infinity token
        assert np.shape(result["gradient"]) == np.shape(document["predictions"])
        # float() turns a null (how orjson writes NaN) into NaN, which fails here.
        assert_finite(result)
    else:
        assert_problem(response, 422)
