"""The API's reads of a wall-clock lattice leave its version alone (SQLite and PostgreSQL), so
the version a client reads with GET is the ``expected_version`` its next PATCH succeeds with."""
from __future__ import annotations

import pytest

from core.access import SYSTEM
from tests.api.conftest import assert_error


@pytest.fixture
def wall_api(api_db):
    api_db.store.create_lattice("wall", SYSTEM, clock="wall")
    for i in range(4):
        api_db.store.add_gem("wall", SYSTEM, f"note {i} about tide pools and kelp forests", id=f"w{i}")
    return api_db


def test_get_then_patch_parameters_with_the_read_version_succeeds(wall_api):
    api, h = wall_api, wall_api.as_("researcher")
    first = api.client.get("/v1/lattices/wall", headers=h)
    assert first.status_code == 200 and first.json()["clock"] == "wall"
    read = api.client.get("/v1/lattices/wall", headers=h).json()  # a second read moves nothing
    params = api.client.get("/v1/lattices/wall/parameters", headers=h).json()
    assert read["version"] == first.json()["version"] == params["version"] == api.store.version("wall")
    assert read["t"] >= first.json()["t"]  # the clock follows real time at every read
    r = api.client.patch("/v1/lattices/wall/parameters",
                         json={"settings": {"k": 7}, "expected_version": read["version"]}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == read["version"] + 1
    assert api.client.get("/v1/lattices/wall/parameters", headers=h).json()["params"]["k"] == 7
    kinds = api.store.transactions("wall")["kind"].tolist()
    assert kinds[-2:] == ["evolve", "params"]  # the write caught up inside itself, then changed k
    stale = api.client.patch("/v1/lattices/wall/parameters",
                             json={"settings": {"k": 8}, "expected_version": read["version"]}, headers=h)
    assert_error(stale, 409, "conflict")
    assert api.client.get("/v1/lattices/wall/parameters", headers=h).json()["params"]["k"] == 7
