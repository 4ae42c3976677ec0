"""Search, observe, advance, evaluate, snapshots and API keys over the API: the same results as the
core calls they stand on."""
from __future__ import annotations

import io
import json
import zipfile

from core.access import SYSTEM
from core.service import search
from tests.api.conftest import assert_error, new_lattice, version


def test_search_is_the_cli_ranking_and_writes_nothing(api):
    before = version(api)
    r = api.client.post("/v1/lattices/demo/search", json={"question": "how do oscillators synchronise?", "k": 4},
                        headers=api.as_("viewer"))
    assert r.status_code == 200
    direct = search(api.store, "demo", "how do oscillators synchronise?", None, 4)
    got = r.json()
    assert [g["gem_id"] for g in got["gems"]] == [g["gem_id"] for g in direct["gems"]]
    assert got["gems"][0]["score"] == direct["gems"][0]["score"] and "similarity" in got["gems"][0]
    later = api.client.post("/v1/lattices/demo/search", json={"question": "oscillators", "at": 500},
                            headers=api.as_("viewer")).json()
    assert later["t"] == 500
    assert_error(api.client.post("/v1/lattices/demo/search", json={"question": "x", "at": -1},
                                 headers=api.as_("viewer")), 422, "invalid")
    assert version(api) == before


def test_observe_and_advance(api):
    h = api.as_("researcher")
    new_lattice(api)
    api.store.update_gem("notes", "n0", SYSTEM, coherence=0.5)
    r = api.client.post("/v1/lattices/notes/observe", json={"gem_ids": ["n0"]}, headers=h)
    assert r.status_code == 200 and r.json()["coherence_after"][0] > 0.5
    assert_error(api.client.post("/v1/lattices/notes/observe", json={"gem_ids": ["zz"]}, headers=h), 404,
                 "not_found")
    v = version(api, "notes")
    r = api.client.post("/v1/lattices/notes/advance", json={"dt": "1h30min", "expected_version": v}, headers=h)
    assert r.status_code == 200 and r.json()["t"] == 1.5  # hours: the lattice's time unit
    assert api.store.get_gem("notes", "n1")["coherence"] < 1.0
    stale = api.client.post("/v1/lattices/notes/advance", json={"dt": 1, "expected_version": v}, headers=h)
    assert_error(stale, 409, "conflict")
    assert api.store.info("notes").t == 1.5


def test_lattice_create_and_parameters(api):
    h = api.as_("researcher")
    r = api.client.post("/v1/lattices", json={"name": "wall", "clock": "wall", "settings": {"half_life": "7d"}},
                        headers=h)
    assert r.status_code == 201 and r.json()["preset"] == "memory" and r.json()["clock"] == "wall"
    assert_error(api.client.post("/v1/lattices", json={"name": "wall"}, headers=h), 409, "conflict")
    assert api.client.post("/v1/lattices", json={"name": "manual", "preset": "archive"}, headers=h).status_code == 201
    # (a manual clock: a wall lattice's version also moves with each catch-up of its clock)
    p = api.client.get("/v1/lattices/manual/parameters", headers=h).json()
    assert p["preset"] == "archive"
    r = api.client.patch("/v1/lattices/manual/parameters", json={"settings": {"k": 9},
                                                                 "expected_version": p["version"]}, headers=h)
    assert r.status_code == 200 and r.json()["params"]["k"] == 9
    assert_error(api.client.patch("/v1/lattices/manual/parameters", json={"settings": {"k": 3},
                                                                          "expected_version": p["version"]},
                                  headers=h), 409, "conflict")
    assert api.store.info("manual").params.k == 9


def test_evaluate_a_question_set(api):
    new_lattice(api)
    questions = "\n".join(json.dumps({"id": f"q{i}", "question": "note about tide pools", "asked_at": 0,
                                      "evidence": [f"n{i}"]}) for i in range(3))
    r = api.client.post("/v1/lattices/notes/evaluate", json={"questions": questions, "rankers": ["lattice", "bm25"],
                                                             "k": [1, 3]}, headers=api.as_("viewer"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["questions"] == 3 and set(body["rankers"]) == {"lattice", "bm25"}
    assert body["overall"]["recall@3"]["value"] == 1.0
    bad = api.client.post("/v1/lattices/notes/evaluate", json={"questions": "{nope"}, headers=api.as_("viewer"))
    assert assert_error(bad, 422, "invalid")["field"] == "questions"


def test_snapshot_download_and_restore(api):
    h = api.as_("admin")
    new_lattice(api)
    r = api.client.get("/v1/lattices/notes/snapshot", headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    r2 = api.client.post("/v1/snapshots/restore", headers=h, files={"file": ("notes.zip", r.content)},
                         data={"lattice": "notes-copy"})
    assert r2.status_code == 201 and r2.json()["lattice"] == "notes-copy" and r2.json()["gems"] == 3
    assert api.store.info("notes-copy").gems == 3
    again = api.client.post("/v1/snapshots/restore", headers=h, files={"file": ("notes.zip", r.content)})
    assert_error(again, 400, "bad_request")  # the lattice exists: overwrite not asked for
    junk = api.client.post("/v1/snapshots/restore", headers=h, files={"file": ("x.zip", b"not a zip")},
                           data={"lattice": "junk"})
    assert_error(junk, 422, "bad_snapshot")
    assert not api.store.exists("junk")


def test_api_keys_show_the_secret_once_and_revoke(api):
    h = api.as_("admin")
    created = api.client.post("/v1/api-keys", json={"name": "ingest-bot", "role": "researcher"}, headers=h).json()
    key = created["key"]
    listed = api.client.get("/v1/api-keys", headers=h).json()["items"]
    assert [k["id"] for k in listed] == [created["id"]] and key not in json.dumps(listed)
    pair = api.client.post("/v1/auth/token", json={"grant_type": "api_key", "api_key": key}).json()
    bot = {"Authorization": f"Bearer {pair['access_token']}"}
    assert api.client.post("/v1/lattices/demo/gems", json={"content": "from a program"}, headers=bot).status_code == 201
    assert api.client.delete(f"/v1/api-keys/{created['id']}", headers=h).json()["revoked_at"] is not None
    refused = api.client.post("/v1/auth/token", json={"grant_type": "api_key", "api_key": key})
    assert_error(refused, 401, "token_refused")
    assert_error(api.client.delete("/v1/api-keys/nope", headers=h), 404, "not_found")
