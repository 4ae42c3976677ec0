"""Bulk writes per database: many rows in one pass, not one ORM object per row.

PostgreSQL gets ``COPY ... FROM STDIN (FORMAT BINARY)`` through psycopg (values go to
the server as they are, no SQL text to build or parse); SQLite a driver-level
``executemany`` with the column types' own conversions (so stored values are exactly
what SQLAlchemy itself would store); any other backend a plain SQLAlchemy executemany.
Both run inside the caller's transaction.
"""
from __future__ import annotations

import json
import struct
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from sqlalchemy import (JSON, Boolean, Connection, DateTime, Double, Integer, LargeBinary, String, Table, Text,
                        bindparam, insert, update)

from core.store import faults

BATCH = 1000  # rows between fault checkpoints (and per statement where batches are used)
COPY_MIN = 2000  # PostgreSQL updates of fewer rows pass arrays as parameters instead of a COPY

# COPY types per column type. json's binary form is its text: JSON values go as our own
# json.dumps text (psycopg's Json wrapper cost more than the rest of the row).
_PG_TYPES = ((Boolean, "bool"), (Integer, "int4"), (Double, "float8"), (DateTime, "timestamptz"),
             (LargeBinary, "bytea"), (JSON, "text"), (Text, "text"), (String, "varchar"))


def _pg_type(col_type: Any) -> str:
    for cls, name in _PG_TYPES:
        if isinstance(col_type, cls):
            return name
    raise TypeError(f"no COPY type for {col_type!r}")


def insert_rows(conn: Connection, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]],
                checkpoint: str | None = None) -> int:
    """Insert ``rows`` (value tuples in ``columns`` order) into ``table``; returns the count.

    ``checkpoint``: the fault-injection point reached after every :data:`BATCH` rows.
    """
    cols = [table.c[name] for name in columns]
    n = 0
    if conn.dialect.name == "postgresql":
        json_at = [k for k, c in enumerate(cols) if isinstance(c.type, JSON)]
        names = ", ".join(f'"{c.name}"' for c in cols)
        with conn.connection.driver_connection.cursor() as cur:
            with cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN (FORMAT BINARY)') as copy:
                copy.set_types([_pg_type(c.type) for c in cols])
                for row in rows:
                    if json_at:
                        row = list(row)
                        for k in json_at:
                            row[k] = None if row[k] is None else json.dumps(row[k])
                    copy.write_row(row)
                    n += 1
                    if checkpoint and n % BATCH == 0:
                        faults.checkpoint(checkpoint)
        if checkpoint and n % BATCH:
            faults.checkpoint(checkpoint)
        return n
    batches = _batches(rows)
    if conn.dialect.name == "sqlite":
        procs: list[Callable[[Any], Any] | None] = [
            c.type.dialect_impl(conn.dialect).bind_processor(conn.dialect) for c in cols]
        convert = [(k, p) for k, p in enumerate(procs) if p is not None]
        sql = f'INSERT INTO "{table.name}" ({", ".join(c.name for c in cols)}) VALUES ({", ".join("?" * len(cols))})'
        for batch in batches:
            by_column = list(zip(*batch))  # convert column by column: only the columns that need it
            for k, proc in convert:
                by_column[k] = [None if v is None else proc(v) for v in by_column[k]]
            conn.exec_driver_sql(sql, list(zip(*by_column)))
            n += len(batch)
            if checkpoint:
                faults.checkpoint(checkpoint)
        return n
    for batch in batches:  # any other backend: portable SQLAlchemy executemany
        conn.execute(insert(table), [dict(zip(columns, row)) for row in batch])
        n += len(batch)
        if checkpoint:
            faults.checkpoint(checkpoint)
    return n


def _batches(rows: Iterable[Sequence[Any]]) -> Iterable[list[Sequence[Any]]]:
    batch: list[Sequence[Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def update_by_key(conn: Connection, table: Table, key: str, keys: np.ndarray, values: dict[str, np.ndarray],
                  bump: str | None = None) -> None:
    """``UPDATE table SET name = values[name][i] (, bump = bump + 1) WHERE key = keys[i]`` for all i.

    ``keys`` are integers, ``values`` float arrays of the same length. PostgreSQL, from
    :data:`COPY_MIN` rows: the arrays go in as one binary COPY built by numpy into a
    temporary table, then one ``UPDATE ... FROM`` (adapting 500k Python floats as
    parameters took longer than the update itself); fewer rows: the arrays as parameters
    of ``UPDATE ... FROM unnest(...)``. SQLite: a driver-level executemany.
    """
    names = list(values)
    sets = [f'"{n}" = v."{n}"' for n in names] + ([f'"{bump}" = t."{bump}" + 1'] if bump else [])
    if conn.dialect.name == "postgresql" and len(keys) < COPY_MIN:
        # a few rows (an observation): arrays as parameters, no temporary table to create
        arrays = ", ".join(["%(k)s::int8[]"] + [f"%({n})s::float8[]" for n in names])
        columns = ", ".join(f'"{n}"' for n in names)
        conn.exec_driver_sql(
            f'UPDATE "{table.name}" AS t SET {", ".join(sets)} FROM unnest({arrays}) AS v(k, {columns}) '
            f'WHERE t."{key}" = v.k',
            {"k": np.asarray(keys, dtype=np.int64).tolist(),
             **{n: np.asarray(values[n], dtype=np.float64).tolist() for n in names}})
        return
    if conn.dialect.name == "postgresql":
        tmp = f"_bulk_{table.name}"
        columns = ", ".join(f'"{n}" float8' for n in names)
        conn.exec_driver_sql(f'CREATE TEMP TABLE IF NOT EXISTS "{tmp}" (k int8, {columns}) ON COMMIT DROP')
        with conn.connection.driver_connection.cursor() as cur:
            with cur.copy(f'COPY "{tmp}" FROM STDIN (FORMAT BINARY)') as copy:
                copy.write(_pg_binary_copy(keys, [values[n] for n in names]))
        conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")  # the hash join of 100k keys stays in memory
        conn.exec_driver_sql(f'UPDATE "{table.name}" AS t SET {", ".join(sets)} FROM "{tmp}" AS v '
                             f'WHERE t."{key}" = v.k')
        conn.exec_driver_sql(f'TRUNCATE "{tmp}"')  # a second update in this transaction starts empty
        return
    rows = list(zip(*(np.asarray(values[n], dtype=np.float64).tolist() for n in names),
                    np.asarray(keys, dtype=np.int64).tolist()))
    if conn.dialect.name == "sqlite":
        bump_sql = f', "{bump}" = "{bump}" + 1' if bump else ""
        placeholders = ", ".join(f'"{n}" = ?' for n in names)
        conn.exec_driver_sql(f'UPDATE "{table.name}" SET {placeholders}{bump_sql} WHERE "{key}" = ?', rows)
        return
    stmt = update(table).where(table.c[key] == bindparam("b_key")).values(
        **{n: bindparam(f"b_{n}") for n in names}, **({bump: table.c[bump] + 1} if bump else {}))
    conn.execute(stmt, [{"b_key": r[-1], **{f"b_{n}": v for n, v in zip(names, r)}} for r in rows])


def _pg_binary_copy(keys: np.ndarray, columns: Sequence[np.ndarray]) -> bytes:
    """PostgreSQL's binary COPY stream of rows (int8 key, float8 columns...), built by numpy:
    per row a big-endian field count, then per field its byte length and value."""
    fields = [("n", ">i2"), ("len_k", ">i4"), ("k", ">i8")]
    for j in range(len(columns)):
        fields += [(f"len_{j}", ">i4"), (f"v_{j}", ">f8")]
    rows = np.empty(len(keys), dtype=np.dtype(fields))
    rows["n"], rows["len_k"], rows["k"] = 1 + len(columns), 8, keys
    for j, col in enumerate(columns):
        rows[f"len_{j}"], rows[f"v_{j}"] = 8, col
    header = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)  # signature, flags, no extension
    return header + rows.tobytes() + struct.pack(">h", -1)  # -1: end of data


def select_columns(conn: Connection, sql: str, dtypes: Sequence[Any]) -> list[np.ndarray]:
    """The result of ``sql`` (no parameters) as one array per column, of ``dtypes``.

    Straight from the driver's cursor (binary results on PostgreSQL), in the caller's
    transaction and so in its snapshot: no SQLAlchemy row object per row, which for 100k
    rows cost more than the query. The rows become columns in one numpy call (a
    structured array built from the row tuples), not a ``zip(*rows)`` of Python tuples:
    for 1e6 rows of five numbers that took longer than the query itself. A value the
    structured conversion refuses (a NULL in an integer column, say) goes through the
    per-column conversion instead, which gives the same values and errors as ever.

    A binary ``COPY ... TO STDOUT`` decoded by numpy was measured here and is slower than
    this on PostgreSQL: psycopg hands over a COPY one message per row
    (``benchmarks/store.py`` ``pg_load_vs_copy`` keeps it as the reference).
    """
    cursor = conn.connection.driver_connection.cursor(
        **({"binary": True} if conn.dialect.name == "postgresql" else {}))
    try:
        cursor.execute(sql)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    return rows_to_columns(rows, dtypes)


def rows_to_columns(rows: Sequence[Sequence[Any]], dtypes: Sequence[Any]) -> list[np.ndarray]:
    """Row tuples as one array per column, of ``dtypes`` (each exactly ``np.array(column, dtype)``)."""
    if len(dtypes) == 1:  # one column: a list, not zip(*rows) over a million argument tuples
        return [np.array([r[0] for r in rows], dtype=dtypes[0])]
    kinds = [np.dtype(t) for t in dtypes]
    if rows:
        layout = np.dtype([(f"c{j}", d) for j, d in enumerate(kinds)])
        try:
            table = np.array(rows, dtype=layout)
        except (TypeError, ValueError, OverflowError):
            pass  # e.g. None in an integer column: the per-column path below says what it says
        else:
            return [np.ascontiguousarray(table[f"c{j}"]) for j in range(len(kinds))]
    cols = list(zip(*rows)) if rows else [()] * len(dtypes)
    return [np.array(c, dtype=t) for c, t in zip(cols, dtypes)]
