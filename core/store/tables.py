"""Named handles of the store's tables, and the column groups the store reads and writes.

The ORM classes of :mod:`core.store.models` define the schema; the store's queries use
their SQLAlchemy Core tables through these names (bulk statements, no per-row ORM loop).
"""
from __future__ import annotations

from core.store.models import (AuditRow, EntanglementRow, GemRow, GemStateRow, LatticeRow, ReflectionRow, RunRow,
                               SnapshotRow, TransactionRow)

LATTICES = LatticeRow.__table__
GEMS = GemRow.__table__  # a gem's content: text, tags, embedding, seq, archived, version
GEM_STATES = GemStateRow.__table__  # one state row per gem (gem_pk = gems.pk)
GEMS_WITH_STATE = GEMS.join(GEM_STATES, GEM_STATES.c.gem_pk == GEMS.c.pk)
ENTANGLEMENTS = EntanglementRow.__table__  # gem_a < gem_b: gem primary keys
TRANSACTIONS = TransactionRow.__table__  # the transaction log
AUDIT = AuditRow.__table__
RUNS = RunRow.__table__
REFLECTIONS = ReflectionRow.__table__
SNAPSHOTS = SnapshotRow.__table__

STATE = ("energy", "phase", "coherence", "uncertainty")  # a gem's state, in Lattice's array order
# a gem's own time (migration 0005): lattice time of creation (NULL: unknown), UTC of its last
# direct observation, how often it was observed; beside last_observed (lattice time)
GEM_TIME = ("created_t", "observed_at", "observations")
# columns of a gem as callers see it: content from gems, state from gem_states
GEM_COLUMNS = {**{c.name: c for c in GEMS.c},
               **{c.name: c for c in GEM_STATES.c if c.name in STATE + ("last_observed",) + GEM_TIME},
               "state_version": GEM_STATES.c.version.label("state_version")}
# the fields of a gem that get_gem / list_gems return (``gem_id`` is returned as ``id``)
GEM_FIELDS = ("gem_id", "title", "content", "tags", "source") + STATE + (
    "last_observed", "archived", "created_at", "updated_at", "version", "state_version") + GEM_TIME

# API auth (migration 0006): signing keys, programs' API keys, refresh tokens (core.store.auth_records)
from core.store.models import ApiKeyRow, RefreshTokenRow, SigningKeyRow  # noqa: E402  (appended block)

SIGNING_KEYS = SigningKeyRow.__table__
API_KEYS = ApiKeyRow.__table__
REFRESH_TOKENS = RefreshTokenRow.__table__
