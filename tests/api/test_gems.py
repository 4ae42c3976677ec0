"""Gems over the API: add one or a batch, read, edit with the expected version (409 on a conflict,
nothing written), archive, delete, list with the Lattice page's filters and pagination, import."""
from __future__ import annotations

from core.access import SYSTEM
from tests.api.conftest import assert_error, new_lattice, version


def test_crud_with_versions(api_db):
    api, h = api_db, api_db.as_("researcher")
    new_lattice(api, gems=0)
    r = api.client.post("/v1/lattices/notes/gems", json={"content": "Anemones sting", "id": "a1", "tags": ["sea"],
                                                         "coherence": 0.8}, headers=h)
    assert r.status_code == 201 and r.json()["ids"] == ["a1"]
    gem = api.client.get("/v1/lattices/notes/gems/a1", headers=h).json()
    assert gem["content"] == "Anemones sting" and gem["coherence"] == 0.8 and gem["tags"] == ["sea"]
    r = api.client.patch("/v1/lattices/notes/gems/a1", json={"title": "Anemones", "expected_version": gem["version"]},
                         headers=h)
    assert r.status_code == 200 and r.json()["title"] == "Anemones" and r.json()["version"] == gem["version"] + 1
    stale = api.client.patch("/v1/lattices/notes/gems/a1", json={"title": "Late", "expected_version": gem["version"]},
                             headers=h)
    assert_error(stale, 409, "conflict")
    assert api.store.get_gem("notes", "a1")["title"] == "Anemones"  # nothing written
    assert_error(api.client.post("/v1/lattices/notes/gems", json={"content": "dup", "id": "a1"}, headers=h),
                 409, "conflict")
    assert api.client.post("/v1/lattices/notes/gems/a1/archive", headers=h).json()["archived"] is True
    assert_error(api.client.post("/v1/lattices/notes/gems/a1/archive", headers=h), 400, "bad_request")
    assert api.client.post("/v1/lattices/notes/gems/a1/unarchive", headers=h).json()["archived"] is False
    assert api.client.delete("/v1/lattices/notes/gems/a1", headers=h).status_code == 204
    assert_error(api.client.get("/v1/lattices/notes/gems/a1", headers=h), 404, "not_found")


def test_a_batch_is_all_or_nothing(api):
    h = api.as_("researcher")
    new_lattice(api, gems=0)
    r = api.client.post("/v1/lattices/notes/gems/batch", json={"gems": [
        {"content": "one", "id": "b1"}, {"content": "two", "id": "b2", "created_at": "2020-01-01T00:00:00Z"}]},
        headers=h)
    assert r.status_code == 201 and r.json()["ids"] == ["b1", "b2"], r.text
    assert api.store.info("notes").gems == 2
    before = version(api, "notes")
    r = api.client.post("/v1/lattices/notes/gems/batch", json={"gems": [
        {"content": "fine", "id": "b3"}, {"content": "bad", "id": "b4", "coherence": 3.0}]}, headers=h)
    err = assert_error(r, 422, "import_failed")
    assert err["issues"][0]["file"] == "request" and err["issues"][0]["line"] == 2
    assert err["issues"][0]["field"] == "coherence"
    assert version(api, "notes") == before and api.store.info("notes").gems == 2


def test_listing_filters_and_pages(api):
    h = api.as_("viewer")
    ids = new_lattice(api, gems=7)
    api.store.archive_gem("notes", "n6", SYSTEM)
    seen, offset = [], 0
    while offset is not None:
        page = api.client.get(f"/v1/lattices/notes/gems?limit=2&offset={offset}", headers=h).json()
        assert page["total"] == 6 and len(page["items"]) <= 2
        seen += [g["id"] for g in page["items"]]
        offset = page["next_offset"]
    assert seen == ids[:6]
    odd = api.client.get("/v1/lattices/notes/gems?limit=3&offset=1", headers=h).json()  # inside a page
    assert [g["id"] for g in odd["items"]] == ids[1:4] and odd["next_offset"] == 4
    sea = api.client.get("/v1/lattices/notes/gems?tag=sea&status=all", headers=h).json()
    assert {g["id"] for g in sea["items"]} == {"n0", "n2", "n4", "n6"}
    assert [g["id"] for g in api.client.get("/v1/lattices/notes/gems?status=archived", headers=h).json()["items"]] == [
        "n6"]
    assert api.client.get("/v1/lattices/notes/gems?text=NOTE%203", headers=h).json()["total"] == 1
    api.store.update_gem("notes", "n1", SYSTEM, coherence=0.2)
    low = api.client.get("/v1/lattices/notes/gems?coherence_max=0.5", headers=h).json()
    assert [g["id"] for g in low["items"]] == ["n1"]
    assert api.client.get("/v1/lattices/notes/gems?offset=100", headers=h).json()["items"] == []


def test_import_a_file_and_report_bad_rows(api):
    h = api.as_("researcher")
    rows = b'{"content": "limpets cling", "id": "i1"}\n{"content": "", "id": "i2"}\n{"content": "crabs", "id": "i3"}\n'
    r = api.client.post("/v1/lattices/shore/import", headers=h, files={"file": ("shore.jsonl", rows)})
    err = assert_error(r, 422, "import_failed")
    assert err["issues"][0]["file"] == "shore.jsonl" and err["issues"][0]["line"] == 2
    assert not api.store.exists("shore")
    r = api.client.post("/v1/lattices/shore/import", headers=h, files={"file": ("shore.jsonl", rows)},
                        data={"skip_bad": "true", "preset": "archive"})
    assert r.status_code == 201, r.text
    assert r.json()["imported"] == 2 and len(r.json()["skipped"]) == 1
    assert api.store.info("shore").preset == "archive"
    r = api.client.post("/v1/lattices/shore/import", headers=h, files={"file": ("shore.exe", rows)})
    assert assert_error(r, 422, "invalid")["field"] == "file"
