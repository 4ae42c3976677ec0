"""``python -m core keys jwt-rotate | jwt-retire KID | jwt-list`` and ``apikeys create | list | revoke``:
--json data, human lines, one-line errors with exit code 2; on the test's database (SQLite, PostgreSQL)."""
from __future__ import annotations

import subprocess
import sys

from core.auth import TokenService, check_api_key
from core.store import Store
from tests.conftest import ROOT


def test_jwt_rotate_list_and_retire(cli, db_url):
    code, out, _ = cli("keys", "jwt-list")
    assert code == 0 and out.startswith("no JWT signing key yet")
    first = cli.json("keys", "jwt-rotate")
    assert first["previous"] is None and first["verify_window_s"] == 900 + 5 + 5
    code, out, _ = cli("keys", "jwt-rotate")
    assert code == 0 and f"; {first['kid']} keeps verifying the tokens it signed for 910 s" in out
    keys = cli.json("keys", "jwt-list")
    assert [k["state"] for k in keys] == ["active", "previous"] and keys[1]["kid"] == first["kid"]
    assert all("private" not in str(k).lower() for k in keys)
    code, out, _ = cli("keys", "jwt-list")
    assert code == 0 and out.count("\n") == 2 and f"{first['kid']}" in out and "previous" in out
    code, _, err = cli("keys", "jwt-retire", keys[0]["kid"])
    assert code == 2 and err.startswith("error: kid:") and "rotate first" in err and err.count("\n") == 1
    retired = cli.json("keys", "jwt-retire", first["kid"])
    assert retired["state"] == "retired" and retired["retired_at"] is not None
    code, _, err = cli("keys", "jwt-retire", "nope")
    assert code == 2 and "no JWT signing key 'nope'" in err
    with Store.open(db_url) as store:
        actions = list(store.audit_log()["action"])
        assert actions == ["jwt.retire", "jwt.rotate", "jwt.rotate"]
        assert [k["kid"] for k in TokenService(store, credentials=dict).jwks()["keys"]] == [keys[0]["kid"]]


def test_apikeys_create_list_revoke(cli, db_url):
    code, out, _ = cli("apikeys", "list")
    assert code == 0 and out.startswith("no API keys")
    code, out, _ = cli("apikeys", "create", "nightly import", "--role", "researcher")
    assert code == 0 and "shown only this once" in out
    secret = out.strip().splitlines()[-1]
    made = cli.json("apikeys", "create", "reporter", "--role", "viewer")
    assert made["key"].startswith(f"glk_{made['id']}_") and made["role"] == "viewer"
    listed = cli.json("apikeys", "list")
    assert {k["name"]: k["role"] for k in listed} == {"reporter": "viewer", "nightly import": "researcher"}
    assert all("key" not in k and "secret_hash" not in k for k in listed)
    with Store.open(db_url) as store:
        assert check_api_key(store, secret)[0].role == "researcher"
    revoked = cli.json("apikeys", "revoke", made["id"])
    assert revoked["id"] == made["id"] and revoked["revoked_at"] is not None
    code, out, _ = cli("apikeys", "list")
    assert code == 0 and out.count("revoked") == 1 and out.count("active") == 1
    code, _, err = cli("apikeys", "revoke", "000000000000")
    assert code == 2 and err.count("\n") == 1 and "no API key" in err
    code, _, err = cli("apikeys", "create", "", "--role", "viewer")
    assert code == 2 and err.startswith("error: name:")
    with Store.open(db_url) as store:
        assert check_api_key(store, made["key"])[1] == "revoked"
        assert list(store.audit_log()["action"]) == ["apikey.revoke", "apikey.create", "apikey.create"]


def test_the_new_commands_load_nothing_heavy_for_help():
    probe = ("import sys\nfrom core.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'jwt', 'cryptography', 'sqlalchemy', 'bcrypt'}),"
             " file=sys.__stderr__)")
    for argv in (["apikeys", "create", "--help"], ["keys", "jwt-rotate", "--help"]):
        out = subprocess.run([sys.executable, "-c", probe, *argv], cwd=ROOT, capture_output=True, text=True,
                             timeout=120)
        assert out.stderr.strip().splitlines()[-1] == "[]" and "usage:" in out.stdout
