"""Import gems from files (JSONL, CSV, Markdown/text folders, chat transcripts) and export a
lattice to a file.

Long file: the import's two passes (validation with the time checks, then the write with the
gems aged to the clock) and the export, which share the time line of a lattice (:class:`Timeline`).

Timestamped rows (``created_at``: an ISO 8601 instant with a zone, or a lattice time number) enter
with the state they would have had, had they been added then: closed form per gem
(``core.engine.age_in_place``), and, with coupling K != 0, the entangled newcomers replayed in
time order (``core.engine.enter_with_age``).
"""
from __future__ import annotations

import hashlib
import math
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from sqlalchemy import select

from core.access import Actor, Permission, require
from core.errors import LatticeError, ValidationError
from core.engine.aging import age_in_place, enter_with_age
from core.engine.lattice import Lattice
from core.engine.params import LatticeParams
from core.knowledge.base import embed_in_batches
from core.knowledge.registry import get_embedder
from core.store import gem_files, gem_records, present
from core.store.errors import ImportFailed, ImportIssue
from core.store.kernel import StoreKernel
from core.store.records import ImportReport, as_utc, epoch_seconds
from core.store.tables import GEM_STATES, GEMS, GEMS_WITH_STATE, STATE


IMPORT_BATCH_ROWS = 500  # gems parsed, embedded and written at a time (at most kernel.CHUNK: one IN list)
IMPORT_BATCH_BYTES = 8 * 2**20  # ... or fewer, once their contents reach this many characters
MAX_IMPORT_ROWS_ENV = "LATTICE_MAX_IMPORT_ROWS"
DEFAULT_MAX_IMPORT_ROWS = 2_000_000


def max_import_rows() -> int:
    """The most gems one import may write (``LATTICE_MAX_IMPORT_ROWS``, default 2,000,000)."""
    raw = os.environ.get(MAX_IMPORT_ROWS_ENV, "").strip()
    try:
        value = int(raw) if raw else DEFAULT_MAX_IMPORT_ROWS
    except ValueError:
        raise LatticeError(f"{MAX_IMPORT_ROWS_ENV} must be a whole number, got {raw!r}") from None
    return max(1, value)


def _batches(records: Iterable[gem_records.GemRecord]) -> Iterator[list[gem_records.GemRecord]]:
    batch: list[gem_records.GemRecord] = []
    size = 0
    for r in records:
        batch.append(r)
        size += len(r.content)
        if len(batch) >= IMPORT_BATCH_ROWS or size >= IMPORT_BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


FUTURE_GRACE_S = 300.0  # an ISO time up to 5 minutes after now is "now" (clocks differ a little)
MAX_SPAN_S = 2.5e11  # a row's time at most ~7,900 years from time 0: every instant stays a calendar date


class Timeline:
    """How an import's times map to a lattice's time line, and the checks on them.

    ``epoch``: UTC epoch second of lattice time 0 (a new lattice: its first ISO row's time,
    fixed when that row is seen; None until then). ``clock``: the lattice time now (None for a
    new lattice: it becomes the latest row's time). Rows must be in non-decreasing ``created_at``
    order (rows without one are created at the clock and are not ordered), not in the future
    (after the clock of an existing lattice; after now + 5 minutes for an ISO time) and not
    have a ``state_at`` before their ``created_at``.
    """

    def __init__(self, name: str, unit_s: float, epoch: float | None, clock: float | None, wall: bool):
        self.name, self.unit_s, self.epoch, self.clock, self.wall = name, unit_s, epoch, clock, wall
        self.now = time.time()
        self.latest = -math.inf  # running maximum of the good rows' created_t (the order check)
        self.max_t = -math.inf  # the latest created_t / state_at of the good rows (a new lattice's clock)

    def _lattice_t(self, values: np.ndarray, iso: np.ndarray, candidates: np.ndarray | None = None) -> np.ndarray:
        first = iso if candidates is None else candidates
        if self.epoch is None and first.any():
            self.epoch = float(values[np.argmax(first)])  # a new lattice: time 0 = its first good ISO time
        epoch = self.epoch if self.epoch is not None else 0.0
        return np.where(iso, (values - epoch) / self.unit_s, values)

    def _when(self, t: float) -> str:
        if self.epoch is None:
            return f"t={t:.6g}"
        try:
            when = datetime.fromtimestamp(self.epoch + t * self.unit_s, tz=timezone.utc)
        except (OverflowError, ValueError, OSError):  # beyond the calendar: the lattice time says it
            return f"t={t:.6g}"
        return f"t={t:.6g}, {when:%Y-%m-%d %H:%M:%SZ}"

    def check(self, batch: list[gem_records.GemRecord], issues: list[ImportIssue]) -> list[bool]:
        """Per record of ``batch`` (file order): True if its times are good; an ImportIssue
        (file, line, field created_at/state_at) for each bad one."""
        n = len(batch)
        created = np.fromiter((math.nan if r.created is None else r.created for r in batch), np.float64, n)
        iso = np.fromiter((r.created_iso for r in batch), bool, n)
        timed = ~np.isnan(created)
        if not timed.any():
            return [True] * n
        # state_at "now" (inf) holds at the clock: nothing to check
        state = np.fromiter((math.nan if r.state_at is None or r.state_at == math.inf else r.state_at
                             for r in batch), np.float64, n)
        state_iso = np.fromiter((r.state_iso for r in batch), bool, n)
        horizon = self.now + FUTURE_GRACE_S
        ct = self._lattice_t(created, iso & timed, iso & timed & (created <= horizon))  # not a future row's
        st = self._lattice_t(state, state_iso, np.zeros(n, dtype=bool))
        bad: dict[int, tuple[str, str]] = {}
        for field, t, raw, is_iso in (("created_at", ct, created, iso), ("state_at", st, state, state_iso)):
            for k in np.flatnonzero(np.abs(t) * self.unit_s > MAX_SPAN_S):
                bad.setdefault(int(k), (field, f"t={float(t[k]):.6g} is more than 7,900 years from the lattice's "
                                               "time 0; give a time within the calendar"))
            for k in np.flatnonzero(is_iso & (raw > horizon)):
                bad.setdefault(int(k), (field, f"{self._when(float(t[k]))} is in the future (after now); "
                                               "give a time up to now"))
            if self.clock is not None:
                # an ISO time on a wall lattice within the grace is "now", not the future
                late = (t > self.clock) & ~(is_iso & (raw <= horizon) & self.wall)
                for k in np.flatnonzero(late):
                    bad.setdefault(int(k), (field, f"{self._when(float(t[k]))} is in the future: after the clock of "
                                                   f"lattice {self.name!r} ({self._when(self.clock)}); advance the "
                                                   "lattice first or import into a new lattice"))
        for k in np.flatnonzero(~np.isnan(st) & (st < ct)):
            bad.setdefault(int(k), ("state_at", f"{self._when(float(st[k]))} is before the row's created_at"))
        order_t = np.where(timed, ct, np.nan)
        order_t[list(bad)] = np.nan  # a bad row is skipped: it does not move the running maximum
        running = np.fmax.accumulate(np.concatenate(([self.latest], order_t)))
        for k in np.flatnonzero(order_t < running[:-1]):
            bad[int(k)] = ("created_at", f"out of order: {self._when(float(ct[k]))} is before an earlier row's "
                                         f"created_at ({self._when(float(running[k]))}); sort the rows by time")
        self.latest = float(running[-1])
        good = np.ones(n, dtype=bool)
        for k, (field, message) in sorted(bad.items()):
            issues.append(ImportIssue(batch[k].file, batch[k].line, field, message))
            good[k] = False
        both = np.concatenate((ct[good & timed], st[good & ~np.isnan(st)]))
        if both.size:
            self.max_t = max(self.max_t, float(both.max()))
        return good.tolist()

    def new_lattice(self, wall: bool) -> tuple[float, float]:
        """``(epoch, clock t)`` of a new lattice after the check pass: the clock at the latest row
        (a wall lattice: now), so the history ends now and nothing is in the future."""
        latest = max(self.max_t, 0.0) if math.isfinite(self.max_t) else 0.0
        if self.epoch is None:  # no ISO time: lattice time numbers only; their clock is now
            return self.now - latest * self.unit_s, latest
        clock = max(latest, (self.now - self.epoch) / self.unit_s) if wall else latest
        return self.epoch, clock

    def resolve(self, batch: list[gem_records.GemRecord], clock: float) -> np.ndarray:
        """Set each timed record's ``created_t`` and ``created_at``; return the ages (time units
        from ``state_at``, default ``created_at``, to ``clock``; NaN: created now)."""
        n = len(batch)
        created = np.fromiter((math.nan if r.created is None else r.created for r in batch), np.float64, n)
        if np.isnan(created).all():
            return created
        iso = np.fromiter((r.created_iso for r in batch), bool, n)
        state = np.fromiter((math.nan if r.state_at is None else r.state_at for r in batch), np.float64, n)
        state_iso = np.fromiter((r.state_iso for r in batch), bool, n)
        epoch = float(self.epoch if self.epoch is not None else 0.0)
        ct = np.minimum(np.where(iso, (created - epoch) / self.unit_s, created), clock)  # the grace: "now"
        # state_at "now" (inf) -> the clock: not aged
        st = np.minimum(np.where(state_iso, (state - epoch) / self.unit_s, state), clock)
        st = np.where(np.isnan(st), ct, st)
        instants = epoch + ct * self.unit_s
        for r, t, s in zip(batch, ct.tolist(), instants.tolist()):
            if r.created is not None:
                r.created_t = t
                try:
                    r.created_at = datetime.fromtimestamp(s, tz=timezone.utc)
                except (OverflowError, ValueError, OSError):
                    r.created_at = None  # a lattice whose time 0 is beyond the calendar: stamped now
        return clock - st


def _age_batch(batch: list[gem_records.GemRecord], age: np.ndarray, params: LatticeParams,
               replayed: dict[str, tuple[float, float, float]]) -> None:
    """Age the records of a batch to the clock in place: closed form (``age_in_place``) for the
    timed ones, the replayed states of coupled newcomers (``replayed``: id -> phase, c, u) as given."""
    timed = np.flatnonzero(~np.isnan(age))
    if timed.size:
        cols = {s: np.fromiter((getattr(batch[k], s) for k in timed), np.float64, timed.size) for s in STATE}
        age_in_place(cols["energy"], cols["phase"], cols["coherence"], cols["uncertainty"], age[timed], params)
        for j, k in enumerate(timed.tolist()):
            r = batch[k]
            r.phase, r.coherence, r.uncertainty = (float(cols["phase"][j]), float(cols["coherence"][j]),
                                                   float(cols["uncertainty"][j]))
    for r in batch:
        if r.id in replayed:
            r.phase, r.coherence, r.uncertainty = replayed[r.id]


def _id_hash(gid: str) -> int:
    return int.from_bytes(hashlib.blake2b(gid.encode("utf-8"), digest_size=8).digest(), "little")


class TransferMixin(StoreKernel):
    """Files in and out (uses the lattice, gem and state parts of the Store)."""

    def import_path(self, name: str, path: str | Path, actor: Actor, *, split_headings: bool = False,
                    skip_bad: bool = False, edges: str | Path | None = None, embedder: str | None = None,
                    params: LatticeParams | dict | None = None, preset: str | None = None,
                    clock: str | None = None, format: str = "auto",
                    progress: Callable[[int, int], None] | None = None) -> ImportReport:
        """Import gems from a JSONL/CSV file, a chat transcript (JSONL of ``time``, ``speaker``,
        ``text``, optional ``session``: detected from the first row, or ``format="chat"``) or a
        folder of Markdown/text files into lattice ``name``.

        Creates the lattice (with ``embedder``, ``params``, ``preset``, ``clock``: see
        ``create_lattice``; default clock manual, default embedder the preset's: hashing-v2 for
        memory, hashing-v1 otherwise) if it does not exist; for an existing one a
        ``preset`` or ``clock`` that differs from its own is a ValidationError. All or
        nothing unless ``skip_bad``: any bad row fails with ImportFailed naming file, line and
        field, and nothing is written. Entanglements come from ``edges`` or, if present, the
        side file ``<stem>.entanglements.csv``. ``progress(done, total)`` follows the embedding.

        Rows with ``created_at`` (:class:`Timeline`) enter aged to the clock; their lattice time
        and instant of creation are stored (``gem_times``). Into a new lattice, ISO times set its
        epoch (the earliest row) and its clock (the latest row; a wall lattice: now).

        Memory does not grow with the file: a first pass validates the rows in batches
        (keeping 8 bytes per gem id to find duplicates), a second parses, embeds and writes
        them a batch at a time, all inside one transaction (so still all or nothing).
        """
        require(actor, Permission.EDIT, "import gems")
        gem_files.check_path(path)
        gem_files.check_format(path, format)
        p = Path(path)
        edge_file = Path(edges) if edges else (gem_files.edges_path_for(p) if p.is_file() else None)
        edge_recs: list[gem_records.EdgeRecord] = []
        issues: list[ImportIssue] = []
        if edge_file is not None and (edges or edge_file.exists()):
            edge_recs, issues = gem_files.parse_edges(edge_file)
        lattice_exists = self.exists(name)
        if lattice_exists:
            info = self.info(name)  # a wall lattice catches up first: its clock is now
            self._check_same(name, "preset", preset, info.preset, "the preset of an existing lattice is changed "
                             "with its parameters (the Lattice page, or Store.update_params with "
                             "core.engine.preset_params)")
            self._check_same(name, "clock", clock, info.clock, "change it with Store.set_clock")
            emb, lat_params = self._embedder_for(info), info.params
            timeline = Timeline(name, info.unit_seconds, info.epoch.timestamp() if info.epoch else 0.0, info.t,
                                info.clock == "wall")
        else:
            clock = clock or "manual"
            lat_params = self._new_params(params, clock, preset)
            embedder = self._new_embedder(embedder, lat_params)
            emb = get_embedder(embedder)
            timeline = Timeline(name, lat_params.time_unit_seconds, None, None, clock == "wall")
        skip, new_ids, good = self._check_rows(name, path, split_headings, lattice_exists, issues, timeline, format)
        known_existing: set[str] = set()
        if lattice_exists and edge_recs:
            with self._read() as conn:
                known = {e.source for e in edge_recs} | {e.target for e in edge_recs}
                known_existing = self._existing_ids(conn, self._lattice_row(conn, name)["id"], sorted(known))

        def is_new(gid: str) -> bool:
            k = int(np.searchsorted(new_ids, np.uint64(_id_hash(gid))))
            return k < len(new_ids) and int(new_ids[k]) == _id_hash(gid)

        good_edges = []
        for e in edge_recs:
            bad = next((f for f, g in (("source", e.source), ("target", e.target))
                        if g not in known_existing and not is_new(g)), None)
            if bad:
                issues.append(ImportIssue(e.file, e.line, bad, f"unknown gem id {getattr(e, bad)!r}"))
            else:
                good_edges.append(e)
        issues.sort(key=lambda i: (i.file, i.line))
        if issues and not skip_bad:
            raise ImportFailed(issues)
        if not good:
            raise LatticeError(f"{path}: no gems to import" + (f" ({len(issues)} bad rows skipped)" if issues else ""))
        create = None
        if not lattice_exists:
            create = self._lattice_values(lat_params, embedder, clock or "manual")
            create["epoch"], create["t"] = timeline.new_lattice(clock == "wall")
            timeline.epoch = create["epoch"]
            if clock == "wall":
                create["wall_anchor"] = timeline.now
        ids: list[str] = []
        with self._write(name, actor, Permission.EDIT, "import gems", create=create) as tx:
            if lattice_exists:
                self._catch_up_tx(tx, name)  # type: ignore[attr-defined]  (StateMixin) the clock is now
            now_t = float(tx.t)
            if lattice_exists:
                timeline.epoch = epoch_seconds(tx.row)
            replayed = self._replay_coupled(path, split_headings, format, skip, good_edges, timeline, now_t,
                                            lat_params)

            def write(batch: list[gem_records.GemRecord], edges: list[gem_records.EdgeRecord]) -> None:
                done = len(ids)
                step = None if progress is None else (lambda d, _t: progress(done + d, good))
                _age_batch(batch, timeline.resolve(batch, now_t), lat_params, replayed)
                vectors = embed_in_batches(emb, [r.content for r in batch], progress=step)
                ids.extend(self._insert_gems(tx, name, actor, batch, vectors, "import", edges))

            again: list[ImportIssue] = []
            rows = (r for r in gem_files.iter_records(path, again, split_headings=split_headings, fmt=format)
                    if (r.file, r.line) not in skip)
            pending = None
            for batch in _batches(rows):  # the last batch carries the entanglements
                if pending is not None:
                    write(pending, [])
                pending = batch
            if pending is None or len(ids) + len(pending) != good or (again and not skip_bad):
                raise LatticeError(f"{path} changed while it was being imported; nothing was written - import again")
            write(pending, good_edges)
            version = tx.version
        self._analyze_after_bulk(len(ids))
        return ImportReport(name, str(path), len(ids), ids, len(good_edges), issues, version)

    @staticmethod
    def _check_same(name: str, what: str, given: str | None, current: str, how: str) -> None:
        if given is not None and given != current:
            raise ValidationError(what, f"lattice {name!r} already exists with {what} {current!r}, not {given!r}; "
                                        f"omit --{what} to import into it ({how}), or import into a new lattice "
                                        "- nothing was written")

    def _replay_coupled(self, path: str | Path, split_headings: bool, fmt: str, skip: set[tuple[str, int]],
                        edges: list[gem_records.EdgeRecord], timeline: Timeline, clock: float,
                        params: LatticeParams) -> dict[str, tuple[float, float, float]]:
        """Coupled newcomers (K != 0, entangled with each other by the import, timestamped): their
        states replayed from their times to ``clock`` in time order (``enter_with_age``), by id.
        One more pass over the file, reading only those rows; {} when nothing is coupled."""
        if params.K == 0 or not edges:
            return {}
        members = {e.source for e in edges} | {e.target for e in edges}
        recs = [r for r in gem_files.iter_records(path, [], split_headings=split_headings, fmt=fmt)
                if r.id in members and (r.file, r.line) not in skip]
        if not any(r.created is not None for r in recs):
            return {}
        age = timeline.resolve(recs, clock)
        start = np.where(np.isnan(age), clock, clock - age)  # state_at (or created_at) in lattice time
        lat = Lattice(*(np.array([getattr(r, s) for r in recs], dtype=np.float64) for s in STATE), params=params,
                      ids=[r.id for r in recs], t=float(clock))  # enter_with_age sets the clock itself
        pos = {r.id: k for k, r in enumerate(recs)}
        pairs = {(min(pos[e.source], pos[e.target]), max(pos[e.source], pos[e.target])): e.weight
                 for e in edges if e.source in pos and e.target in pos}
        if pairs:
            (i, j), w = zip(*pairs.keys()), list(pairs.values())
            lat.set_edges(list(i), list(j), w)
        out = enter_with_age(lat, start, clock)
        return {r.id: (float(out.phase[k]), float(out.coherence[k]), float(out.uncertainty[k]))
                for k, r in enumerate(recs)}

    def _check_rows(self, name: str, path: str | Path, split_headings: bool, lattice_exists: bool,
                    issues: list[ImportIssue], timeline: Timeline | None = None,
                    fmt: str = "auto") -> tuple[set[tuple[str, int]], np.ndarray, int]:
        """The validation pass of an import, streamed in batches: adds every bad row to ``issues``.

        Returns the (file, line) of the valid rows to skip all the same (an id that the lattice
        already has or that an earlier row took, or bad times: ``timeline``), the sorted hashes
        of the new ids, and the number of gems to write.
        """
        skip: set[tuple[str, int]] = set()
        hashes: list[np.ndarray] = []
        good, limit = 0, max_import_rows()
        with self._read() as conn:
            lid = self._lattice_row(conn, name)["id"] if lattice_exists else None
            for batch in _batches(gem_files.iter_records(path, issues, split_headings=split_headings, fmt=fmt)):
                existing = self._existing_ids(conn, lid, [r.id for r in batch if r.id]) if lid is not None else set()
                for r in batch:
                    if r.id in existing:
                        issues.append(ImportIssue(r.file, r.line, "id", f"gem id {r.id!r} already exists in lattice {name!r}"))
                        skip.add((r.file, r.line))
                kept = [r for r in batch if r.id not in existing]
                if timeline is not None:
                    ok = timeline.check(kept, issues)
                    skip.update((r.file, r.line) for r, k in zip(kept, ok) if not k)
                    kept = [r for r, k in zip(kept, ok) if k]
                good += len(kept)
                if good > limit:
                    raise LatticeError(f"{path}: more than {limit} gems in one import (the limit, "
                                       f"{MAX_IMPORT_ROWS_ENV}); split the file - nothing was written")
                hashes.append(np.fromiter((_id_hash(r.id) for r in kept if r.id), dtype=np.uint64))
        all_ids = np.sort(np.concatenate(hashes)) if hashes else np.zeros(0, dtype=np.uint64)
        repeated = all_ids[1:][all_ids[1:] == all_ids[:-1]]
        if len(repeated):  # a rare case: find the rows by a second pass
            repeated_set = set(repeated.tolist())
            first: dict[str, int] = {}
            for r in gem_files.iter_records(path, [], split_headings=split_headings, fmt=fmt):
                if not r.id or (r.file, r.line) in skip or _id_hash(r.id) not in repeated_set:
                    continue
                if r.id in first:
                    issues.append(ImportIssue(r.file, r.line, "id", f"duplicate id {r.id!r} (first at line {first[r.id]})"))
                    skip.add((r.file, r.line))
                    good -= 1
                else:
                    first[r.id] = r.line
        return skip, np.unique(all_ids), good

    def export(self, name: str, out: str | Path, *, include_archived: bool = False,
               now: float | None = None) -> dict[str, Any]:
        """Write the lattice's gems to ``out`` (.jsonl or .csv) and its entanglements to
        ``<stem>.entanglements.csv``: everything needed to re-import the same lattice.

        Each gem's ``created_at`` (its own creation instant, UTC) is written with ``state_at`` =
        ``now`` (the state written is the state at the clock), in ``created_at`` order (then
        lattice order, so rows are in time order), so the file imports back to the same gems,
        states and creation instants. Read only: a wall-clock lattice's state is the one as of
        ``now`` (UTC epoch seconds, default the current time), computed in memory.
        """
        with self._read() as conn:
            row = self._lattice_row(conn, name)
            q = (select(GEMS.c.pk, GEMS.c.archived, GEMS.c.gem_id.label("id"), GEMS.c.title, GEMS.c.content,
                        GEMS.c.tags, GEMS.c.source, *[GEM_STATES.c[s] for s in STATE], GEMS.c.created_at)
                 .select_from(GEMS_WITH_STATE).where(GEMS.c.lattice_id == row["id"]).order_by(GEMS.c.seq))
            if not include_archived:
                q = q.where(GEMS.c.archived.is_(False))
            rows = [dict(r) for r in conn.execute(q).mappings()]
            # a wall lattice's state as of now, computed in this read (core.store.present): nothing written
            values = present.state_now(conn, row, [r["pk"] for r in rows], [r["id"] for r in rows],
                                       {s: [r[s] for r in rows] for s in STATE}, [bool(r["archived"]) for r in rows],
                                       now, self._load_state)  # type: ignore[attr-defined]  (StateMixin)
        for k, r in enumerate(rows):
            del r["pk"], r["archived"]
            r.update({s: float(values[s][k]) for s in STATE})
        created = [as_utc(r["created_at"]) for r in rows]
        for r, when in zip(rows, created):
            r["content"] = self.cipher.decrypt(r["content"])
            r["title"] = self.cipher.decrypt(r["title"])  # titles are encrypted at rest too (core.store.crypto)
            r["created_at"], r["state_at"] = when.isoformat(), "now"
        created_s = np.array([w.timestamp() for w in created], dtype=np.float64)
        rows = [rows[k] for k in np.argsort(created_s, kind="stable")]
        keep = {r["id"] for r in rows}
        edges = [(a, b, w) for a, b, w in self.entanglements(name).itertuples(index=False) if a in keep and b in keep]
        n = gem_files.write_gems(out, rows)
        edge_path = gem_files.edges_path_for(out)
        if edges:
            gem_files.write_edges(edge_path, edges)
        elif edge_path.exists():
            edge_path.unlink()  # a stale side file would re-import old edges
        return {"lattice": name, "path": str(out), "gems": n, "entanglements": len(edges),
                "entanglements_path": str(edge_path) if edges else None}
