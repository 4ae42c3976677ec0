"""User changes made by an admin land in the store's audit log."""
import pytest

from core.access import Actor, PermissionDenied, Role
from core.auth import add_user_to_file, list_users

ADMIN = Actor("ada", Role.ADMIN)


def test_user_changes_are_audited(store, tmp_path, monkeypatch):
    monkeypatch.delenv("LATTICE_DEMO", raising=False)
    path = tmp_path / "credentials.yaml"
    add_user_to_file(ADMIN, "Grace", "s3cret-pass", Role.RESEARCHER, path=path, audit=store.audit)
    add_user_to_file(ADMIN, "grace", "an0ther-pass", Role.VIEWER, path=path, audit=store.audit)
    log = store.audit_log()
    assert list(log["action"])[:2] == ["user.update", "user.create"]
    assert set(log["target"][:2]) == {"grace"} and set(log["actor"][:2]) == {"ada"}
    assert "s3cret" not in log.to_csv() and "an0ther" not in log.to_csv()
    users = list_users(path)
    assert [u["username"] for u in users] == ["grace"] and users[0]["role"] == "viewer"


def test_a_researcher_cannot_manage_users(store, tmp_path, monkeypatch):
    monkeypatch.delenv("LATTICE_DEMO", raising=False)
    with pytest.raises(PermissionDenied):
        add_user_to_file(Actor("ria", Role.RESEARCHER), "eve", "pw-123456", Role.ADMIN,
                         path=tmp_path / "c.yaml", audit=store.audit)
    assert not (tmp_path / "c.yaml").exists() and len(store.audit_log()) == 0
