"""What an evaluation ranks over: a lattice's gems with their text, embedding, state and times.

Times are lattice times (the lattice's time unit). A gem's coherence at another time T
follows from its last event (observation, else creation) by the closed form of pure decay,
``c(T) = c_event exp(-lambda_ (T - t_event) / E)`` (:meth:`EvalCorpus.last_event`): exact for
any T after the event, under any decay scale. The corpus refuses to rank at a time before an
observation it would have to undo (evaluate a backup taken before it instead).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Sequence

import numpy as np

from core.engine import Lattice, LatticeParams, unit_seconds
from core.errors import ValidationError
from core.knowledge import Embedder, embed_queries, get_embedder, normalise_rows


@dataclass
class EvalCorpus:
    """Gems to rank, struct of arrays in lattice order.

    ``created_t``/``last_observed_t``: lattice times, NaN when unknown / never observed.
    ``epoch``: the UTC instant of lattice time 0 (None: datetimes cannot be converted).
    """

    ids: list[str]
    texts: list[str]
    tags: list[list[str]]
    embeddings: np.ndarray  # (N, d) float32, L2-normalised rows
    lattice: Lattice  # state at lattice.t; params are the lattice's
    created_t: np.ndarray
    last_observed_t: np.ndarray
    observations: np.ndarray
    embedder: Embedder
    epoch: datetime | None = None
    name: str = "lattice"
    _scopes: dict = field(default_factory=dict, repr=False)
    _event: tuple | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        n = len(self.ids)
        self.embeddings = normalise_rows(np.asarray(self.embeddings, dtype=np.float32))
        for label, arr in (("texts", self.texts), ("tags", self.tags), ("embeddings", self.embeddings),
                           ("created_t", self.created_t), ("last_observed_t", self.last_observed_t),
                           ("observations", self.observations)):
            if len(arr) != n:
                raise ValidationError(label, f"has {len(arr)} entries for {n} gems")
        if len(self.lattice) != n:
            raise ValidationError("lattice", f"has {len(self.lattice)} gems for {n} ids")
        self.created_t = np.asarray(self.created_t, dtype=np.float64)
        self.last_observed_t = np.asarray(self.last_observed_t, dtype=np.float64)
        self.observations = np.asarray(self.observations, dtype=np.int64)
        self.position = {gid: i for i, gid in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def params(self) -> LatticeParams:
        return self.lattice.params

    @property
    def last_access_t(self) -> np.ndarray:
        """When each gem was last observed, else created (unknown creation: lattice time 0)."""
        created = np.where(np.isnan(self.created_t), 0.0, self.created_t)
        return np.where(np.isnan(self.last_observed_t), created, self.last_observed_t)

    def last_event(self) -> tuple[np.ndarray, np.ndarray]:
        """``(event_t, event_c)``: each gem's last event (observation, else creation; unknown:
        the lattice's clock t) and its coherence just after it.

        Since its last event a gem has only decayed, under the lattice's decay scale, so
        ``event_c = c(t) exp(lambda_ (t - event_t) / E)`` exactly (capped at 1). A parameter
        point with another decay scale then re-derives the coherence from the event rather
        than decaying the lattice's own result further: a sweep over the half-life measures
        that half-life, not the lattice's. A coherence that underflowed to 0 cannot be
        inverted; it is taken as 1 just after the event (true of imports and of observations
        with eta = 1).
        """
        if self._event is None:
            lat = self.lattice
            known = np.where(np.isnan(self.created_t), lat.t, self.created_t)
            event_t = np.where(np.isnan(self.last_observed_t), known, self.last_observed_t)
            event_t = np.minimum(event_t, lat.t)
            with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
                event_c = lat.coherence * np.exp(lat.params.lambda_ * (lat.t - event_t) / lat.energy)
            event_c = np.where(np.isfinite(event_c) & (lat.coherence > 0), np.minimum(event_c, 1.0), 1.0)
            self._event = (event_t, event_c)
        return self._event

    def lattice_time(self, when: datetime | float) -> float:
        """A question's time in lattice units (a number is already one)."""
        if isinstance(when, (int, float)):
            return float(when)
        if self.epoch is None:
            raise ValidationError("asked_at", "this lattice has no epoch, so ISO times cannot be placed on its "
                                              "clock; give asked_at as a lattice time number")
        return (when - self.epoch).total_seconds() / unit_seconds(self.params.time_unit)

    def scope_mask(self, scope: str | None) -> np.ndarray | None:
        """Gems tagged ``scope`` (None: every gem); cached per tag."""
        if scope is None:
            return None
        if scope not in self._scopes:
            self._scopes[scope] = np.fromiter((scope in t for t in self.tags), dtype=bool, count=len(self))
        return self._scopes[scope]

    def candidates(self, asked_t: float, scope: str | None) -> np.ndarray:
        """Gems that exist at ``asked_t`` (created by then; unknown creation counts) and are in scope."""
        mask = ~(self.created_t > asked_t)
        scoped = self.scope_mask(scope)
        return mask if scoped is None else mask & scoped

    def check_time(self, asked_t: float, where: str) -> None:
        """Refuse a time before an observation the closed form would have to undo."""
        if asked_t < self.lattice.t and np.nanmax(self.last_observed_t, initial=-np.inf) > asked_t:
            raise ValidationError("asked_at", f"{where}: asked at lattice time {asked_t:g}, before gems were last "
                                              f"observed (up to t={np.nanmax(self.last_observed_t):g}); evaluate a "
                                              "backup taken before that, or ask later")

    def embed(self, questions: Sequence[str]) -> np.ndarray:
        return embed_queries(self.embedder, list(questions))


def corpus_from_store(store, name: str) -> EvalCorpus:
    """The lattice ``name`` as stored (active gems; read-only: nothing is written, not even a
    wall-clock lattice's catch-up: each question decays the state to its own time)."""
    loaded = store.load_stored(name)
    info, lat = loaded.info, loaded.lattice
    ids = list(lat.ids)
    texts = store.gem_texts(name, ids)
    times = store.gem_times(name, ids).set_index("gem_id").reindex(ids)
    return EvalCorpus(
        ids=ids, texts=(texts["title"].fillna("") + "\n" + texts["content"].fillna("")).tolist(),
        tags=[list(t or []) for t in texts["tags"]], embeddings=store.embeddings(name, ids), lattice=lat,
        created_t=times["created_t"].to_numpy(dtype=float, na_value=np.nan),
        last_observed_t=times["last_observed_t"].to_numpy(dtype=float, na_value=np.nan),
        observations=times["observations"].fillna(0).to_numpy(dtype=np.int64),
        embedder=get_embedder(info.embedder), epoch=getattr(info, "epoch", None), name=name)
