"""Every endpoint for each role (admin, researcher, viewer) with real tokens: the status each role
gets, and a refused call (403) changes nothing."""
from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any, Callable

import pytest

from core.access import SYSTEM
from tests.api.conftest import ROLES, assert_error, new_lattice

_n = itertools.count()
QUESTIONS = json.dumps({"question": "tide pools", "asked_at": 0, "evidence": ["n0"]})


def _fresh_gem(api) -> str:
    return api.store.add_gem("notes", SYSTEM, f"a fresh gem {next(_n)} about kelp", id=f"f{next(_n)}")


def _snapshot(api, tmp: Path) -> bytes:
    return Path(api.store.backup("notes", tmp, SYSTEM)["path"]).read_bytes()


# (label, request builder(api, tmp) -> (method, path, kwargs), status for admin, researcher, viewer)
Case = tuple[str, Callable[[Any, Path], tuple[str, str, dict]], tuple[int, int, int]]
CASES: list[Case] = [
    ("list lattices", lambda a, t: ("get", "/v1/lattices", {}), (200, 200, 200)),
    ("create lattice", lambda a, t: ("post", "/v1/lattices", {"json": {"name": f"new-{next(_n)}", "preset": "seed"}}),
     (201, 201, 403)),
    ("lattice info", lambda a, t: ("get", "/v1/lattices/notes", {}), (200, 200, 200)),
    ("delete lattice", lambda a, t: (a.store.create_lattice(name := f"doomed-{next(_n)}", SYSTEM) and
                                     ("delete", f"/v1/lattices/{name}", {})), (204, 403, 403)),
    ("get parameters", lambda a, t: ("get", "/v1/lattices/notes/parameters", {}), (200, 200, 200)),
    ("patch parameters", lambda a, t: ("patch", "/v1/lattices/notes/parameters", {"json": {"settings": {"k": 7}}}),
     (200, 200, 403)),
    ("list gems", lambda a, t: ("get", "/v1/lattices/notes/gems?status=all&limit=2", {}), (200, 200, 200)),
    ("add gem", lambda a, t: ("post", "/v1/lattices/notes/gems", {"json": {"content": "sea otters use tools"}}),
     (201, 201, 403)),
    ("add batch", lambda a, t: ("post", "/v1/lattices/notes/gems/batch",
                                {"json": {"gems": [{"content": "a"}, {"content": "b"}]}}), (201, 201, 403)),
    ("get gem", lambda a, t: ("get", "/v1/lattices/notes/gems/n0", {}), (200, 200, 200)),
    ("patch gem", lambda a, t: ("patch", "/v1/lattices/notes/gems/n1", {"json": {"title": f"t{next(_n)}"}}),
     (200, 200, 403)),
    ("archive gem", lambda a, t: ("post", f"/v1/lattices/notes/gems/{_fresh_gem(a)}/archive", {}), (200, 200, 403)),
    ("unarchive gem", lambda a, t: (a.store.archive_gem("notes", gid := _fresh_gem(a), SYSTEM) or
                                    ("post", f"/v1/lattices/notes/gems/{gid}/unarchive", {})), (200, 200, 403)),
    ("delete gem", lambda a, t: ("delete", f"/v1/lattices/notes/gems/{_fresh_gem(a)}", {}), (204, 204, 403)),
    ("import", lambda a, t: ("post", "/v1/lattices/notes/import",
                             {"files": {"file": ("more.jsonl", b'{"content": "urchins graze kelp"}\n')}}),
     (201, 201, 403)),
    ("search", lambda a, t: ("post", "/v1/lattices/notes/search", {"json": {"question": "kelp"}}), (200, 200, 200)),
    ("reflect", lambda a, t: ("post", "/v1/lattices/notes/reflect", {"json": {"question": "kelp?"}}),
     (200, 200, 403)),
    ("observe", lambda a, t: ("post", "/v1/lattices/notes/observe", {"json": {"gem_ids": ["n0"]}}), (200, 200, 403)),
    ("advance", lambda a, t: ("post", "/v1/lattices/notes/advance", {"json": {"dt": "2h"}}), (200, 200, 403)),
    ("evaluate", lambda a, t: ("post", "/v1/lattices/notes/evaluate", {"json": {"questions": QUESTIONS}}),
     (200, 200, 200)),
    ("snapshot", lambda a, t: ("get", "/v1/lattices/notes/snapshot", {}), (200, 403, 403)),
    ("restore", lambda a, t: ("post", "/v1/snapshots/restore", {
        "files": {"file": ("s.zip", _snapshot(a, t))}, "data": {"lattice": f"copy-{next(_n)}"}}), (201, 403, 403)),
    ("create api key", lambda a, t: ("post", "/v1/api-keys", {"json": {"name": f"bot{next(_n)}"}}), (201, 403, 403)),
    ("list api keys", lambda a, t: ("get", "/v1/api-keys", {}), (200, 403, 403)),
    ("revoke api key", lambda a, t: ("delete", f"/v1/api-keys/{_key(a)}", {}), (200, 403, 403)),
]


def _key(api) -> str:
    from core.auth.api_keys import create_api_key
    return create_api_key(api.store, SYSTEM, f"k{next(_n)}", "viewer").id


def _state(api) -> tuple:
    """What a refused call must leave alone: every lattice's version and gem counts, and the API keys."""
    return (tuple((i.name, i.version, i.gems, i.archived) for i in api.store.list_lattices()),
            tuple(sorted((k.id, k.revoked_at) for k in api.store.api_keys())))


@pytest.mark.parametrize("label,build,expected", CASES, ids=[c[0] for c in CASES])
def test_every_endpoint_for_each_role(api, tmp_path, label, build, expected):
    new_lattice(api)
    for role, status in zip(ROLES, expected):
        method, path, kwargs = build(api, tmp_path)
        before = _state(api)
        r = api.client.request(method, path, headers=api.as_(role), **kwargs)
        if status == 403:
            assert_error(r, 403, "permission_denied")
            assert _state(api) == before, f"{label} as {role} was refused but changed something"
        else:
            assert r.status_code == status, (label, role, r.text)


@pytest.mark.parametrize("path", ["/v1/health", "/v1/ready", "/.well-known/jwks.json", "/openapi.json", "/docs"])
def test_public_endpoints_need_no_token(api, path):
    assert api.client.get(path).status_code == 200
