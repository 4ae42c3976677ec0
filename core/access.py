"""Roles and permissions, enforced in core (not only by hiding buttons in the UI).

Every mutating core call takes an :class:`Actor` and calls :func:`require` first, so a
viewer's attempt to change anything is refused whatever the front end does.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from core.errors import LatticeError


class Role(str, Enum):
    ADMIN = "admin"  # everything, plus users, backups/restores, key rotation
    RESEARCHER = "researcher"  # edit gems, run simulations, reflect, save runs
    VIEWER = "viewer"  # read-only


class Permission(str, Enum):
    READ = "read"
    REFLECT = "reflect"  # a reflection observes gems, so it changes state
    EDIT = "edit"  # gems, entanglements, lattice clock, runs, imports
    ADMIN = "admin"  # users, backup/restore, keys


_GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.RESEARCHER: frozenset({Permission.READ, Permission.REFLECT, Permission.EDIT}),
    Role.VIEWER: frozenset({Permission.READ}),
}


class PermissionDenied(LatticeError):
    """The actor's role does not allow this operation."""


@dataclass(frozen=True)
class Actor:
    """Who performs an operation (recorded in the transaction and audit logs)."""

    name: str
    role: Role

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", Role(self.role))

    def can(self, permission: Permission | str) -> bool:
        return Permission(permission) in _GRANTS[self.role]


SYSTEM = Actor("system", Role.ADMIN)
"""The actor of command-line and maintenance operations (the operator owns the files)."""


def require(actor: Actor, permission: Permission | str, action: str = "") -> None:
    """Raise :class:`PermissionDenied` unless ``actor`` holds ``permission``."""
    if not isinstance(actor, Actor):
        raise PermissionDenied("no authenticated user; log in first")
    if not actor.can(permission):
        what = f" to {action}" if action else ""
        raise PermissionDenied(
            f"user {actor.name!r} ({actor.role.value}) is not allowed{what}; "
            f"this needs the {Permission(permission).value!r} permission"
        )
