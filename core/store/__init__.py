"""Crystal Lattice DB: persistence of lattices, gems and their history (SQLAlchemy 2, SQLite or
PostgreSQL). :class:`Store` is the one entry point (its docstring lists the API); the records
it returns, the history series of a lattice, the errors and the schema functions (Alembic) are
re-exported here. How the parts fit together: docs/architecture.md."""
from core.store.crypto import generate_key
from core.store.db import (SchemaError, check_known, create_db_engine, current_revision, database_url, head_revision,
                           upgrade)
from core.store.gem_files import csv_safe
from core.store.errors import (ConflictError, DatabaseUnavailable, EncryptionError, ImportFailed, ImportIssue,
                               NotFoundError, SnapshotError)
from core.store.history import History, decay_segments, lattice_history
from core.store.records import ImportReport, LatticeInfo, LoadedLattice
from core.store.pitr import RecoveryError, prepare_pitr, wait_for_recovery
from core.store.read_only import ReadOnlyError, ReadOnlyStore
from core.store.recovery import (RecoveryInProgress, RecoveryReadOnly, RecoveryReport, RecoveryStatus,
                                   recovery_status, verify_recovery)
from core.store.repair import DamagedStateError
from core.store.replication import ReplicationStatus, StandbyLag
from core.store.store import Store

__all__ = ["Store", "History", "lattice_history", "decay_segments", "generate_key", "LoadedLattice", "LatticeInfo",
           "ImportReport", "ImportIssue", "ConflictError", "ImportFailed", "NotFoundError", "SnapshotError",
           "SchemaError", "DatabaseUnavailable", "EncryptionError", "DamagedStateError", "database_url", "csv_safe",
           "ReadOnlyStore", "ReadOnlyError", "ReplicationStatus", "StandbyLag",  # a read replica, its lag
           "prepare_pitr", "wait_for_recovery", "RecoveryError",  # PostgreSQL point-in-time recovery
           # verified recovery after a failover or restore: the write gate, its status and report
           "verify_recovery", "recovery_status", "RecoveryStatus", "RecoveryReport", "RecoveryReadOnly",
           "RecoveryInProgress",
           # the schema (Alembic), for the ``db`` command
           "create_db_engine", "current_revision", "head_revision", "upgrade", "check_known"]
