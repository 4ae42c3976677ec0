"""Experiment runs (parameters, metrics, a compressed trajectory) and reflection records.

A reflection's query and answer (which quotes gems) are encrypted at rest like gem content
when the store has keys (core.store.crypto); :meth:`RunsMixin.list_reflections` decrypts them.
"""
from __future__ import annotations

import io
from typing import Any, Sequence

import numpy as np
import pandas as pd
from sqlalchemy import insert, select

from core.access import Actor, Permission, require
from core.errors import ValidationError
from core.engine.params import LatticeParams
from core.store.errors import NotFoundError
from core.store.kernel import StoreKernel, Tx, plain_json
from core.store.models import utcnow
from core.store.tables import LATTICES, REFLECTIONS, RUNS


def _encode_frame(df: pd.DataFrame) -> bytes:
    """A DataFrame as compressed npz: numeric columns float32 (compact), others as text."""
    arrays = {"__columns__": np.array(list(map(str, df.columns)))}
    for k, col in enumerate(df.columns):
        s = df[col]
        arrays[f"c{k}"] = (s.to_numpy(np.float32) if pd.api.types.is_numeric_dtype(s)
                           else s.astype(str).to_numpy().astype(np.str_))
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def _decode_frame(blob: bytes) -> pd.DataFrame:
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        cols = list(z["__columns__"])
        return pd.DataFrame({c: z[f"c{k}"] for k, c in enumerate(cols)})


class RunsMixin(StoreKernel):
    """Runs and reflections: records, not state changes (the lattice version stays as it is,
    except when :meth:`StateMixin.apply_reflection` inserts one with its state update)."""

    def save_run(self, name: str | None, run_name: str, params: LatticeParams | dict, metrics: dict[str, Any],
                 actor: Actor, trajectory: pd.DataFrame | None = None) -> int:
        """Save an experiment (numeric trajectory columns stored as float32, compressed); returns its id."""
        require(actor, Permission.EDIT, "save a run")
        p = params.to_dict() if isinstance(params, LatticeParams) else LatticeParams.from_dict(params).to_dict()
        blob = _encode_frame(trajectory) if trajectory is not None else None
        metrics = plain_json(dict(metrics), "metrics")
        with self._tx() as conn:
            lid = self._lattice_row(conn, name)["id"] if name else None
            return conn.execute(insert(RUNS).values(
                lattice_id=lid, name=str(run_name), params=p, metrics=metrics, trajectory=blob,
                actor=actor.name, created_at=utcnow()).returning(RUNS.c.id)).scalar_one()

    def list_runs(self, name: str | None = None) -> pd.DataFrame:
        """id, name, lattice, params, metrics, actor, created_at of saved runs (newest first)."""
        with self._read() as conn:
            q = (select(RUNS.c.id, RUNS.c.name, LATTICES.c.name.label("lattice"), RUNS.c.params, RUNS.c.metrics,
                        RUNS.c.actor, RUNS.c.created_at)
                 .outerjoin(LATTICES, LATTICES.c.id == RUNS.c.lattice_id).order_by(RUNS.c.id.desc()))
            if name:
                q = q.where(LATTICES.c.name == name)
            rows = conn.execute(q).all()
        return pd.DataFrame(rows, columns=["id", "name", "lattice", "params", "metrics", "actor", "created_at"])

    def get_run(self, run_id: int) -> dict[str, Any]:
        with self._read() as conn:
            r = conn.execute(select(RUNS, LATTICES.c.name.label("lattice"))
                             .outerjoin(LATTICES, LATTICES.c.id == RUNS.c.lattice_id)
                             .where(RUNS.c.id == int(run_id))).mappings().first()
        if r is None:
            raise NotFoundError(f"no run with id {run_id}")
        out = dict(r)
        out["trajectory"] = _decode_frame(r["trajectory"]) if r["trajectory"] else None
        return out

    def _insert_reflection(self, tx: Tx, actor: Actor, query: str, answer: str = "",
                           provider_trace: Sequence[Any] = (), gems_used: Sequence[Any] = (),
                           latency_ms: float | None = None, tokens_in: int | None = None,
                           tokens_out: int | None = None) -> int:
        if not isinstance(query, str) or not isinstance(answer, str):
            raise ValidationError("query", "query and answer must be text")
        return tx.conn.execute(insert(REFLECTIONS).values(
            lattice_id=tx.lid, query=self.cipher.encrypt(query), answer=self.cipher.encrypt(answer),
            provider_trace=plain_json(list(provider_trace), "provider_trace"),
            gems_used=plain_json(list(gems_used), "gems_used"),
            latency_ms=None if latency_ms is None else float(latency_ms),
            tokens_in=None if tokens_in is None else int(tokens_in),
            tokens_out=None if tokens_out is None else int(tokens_out),
            actor=actor.name, lattice_t=tx.t, created_at=utcnow()).returning(REFLECTIONS.c.id)).scalar_one()

    def record_reflection(self, name: str, actor: Actor, query: str, answer: str = "", *,
                          provider_trace: Sequence[Any] = (), gems_used: Sequence[Any] = (),
                          latency_ms: float | None = None, tokens_in: int | None = None,
                          tokens_out: int | None = None) -> int:
        """Store a reflection (query, answer, provider trace, gems used with score terms...); returns its id."""
        require(actor, Permission.REFLECT, "record a reflection")
        # A record, not a state change: the lattice version (and so caches) stay as they are.
        with self._tx() as conn:
            tx = Tx(conn, self._lattice_row(conn, name))
            return self._insert_reflection(tx, actor, query, answer, provider_trace, gems_used, latency_ms,
                                           tokens_in, tokens_out)

    def list_reflections(self, name: str, limit: int = 50) -> pd.DataFrame:
        with self._read() as conn:
            lid = self._lattice_row(conn, name)["id"]
            rows = conn.execute(select(REFLECTIONS).where(REFLECTIONS.c.lattice_id == lid)
                                .order_by(REFLECTIONS.c.id.desc())
                                .limit(limit)).mappings().all()
        out = [dict(r) for r in rows]
        for r in out:
            r["query"], r["answer"] = self.cipher.decrypt(r["query"]), self.cipher.decrypt(r["answer"])
        return pd.DataFrame(out)
