"""Tables in and out: CSV download buttons and the observations CSV reader."""
from __future__ import annotations

import io
from typing import Callable

import numpy as np
import pandas as pd
import streamlit as st

from core.errors import ValidationError
from core.store import csv_safe

MAX_UPLOAD_ROWS = 200_000


def csv_bytes(df: pd.DataFrame) -> bytes:
    """``df`` as UTF-8 CSV (no index) that a spreadsheet cannot run: every text cell and header
    that starts with ``= + - @``, tab or CR gets a leading ``'`` (OWASP; ``core.store.csv_safe``);
    numbers are left as they are. Every CSV download of the workbench goes through here."""
    out = df.rename(columns=lambda c: csv_safe(str(c)))
    for col in out.columns[[dt == object or pd.api.types.is_string_dtype(dt) or isinstance(dt, pd.CategoricalDtype)
                            for dt in out.dtypes]]:
        out[col] = out[col].map(lambda v: csv_safe(v) if isinstance(v, str) else
                                (csv_safe(str(v)) if v is not None and not isinstance(v, (int, float)) else v))
    # RFC 4180 line ends: the csv writer quotes a cell holding any character of the line
    # terminator, so with "\n" alone a cell with a bare CR was written unquoted and split
    # into two rows by every reader
    return out.to_csv(index=False, lineterminator="\r\n").encode("utf-8")


def download_csv(df: pd.DataFrame | Callable[[], pd.DataFrame], filename: str, key: str,
                 label: str = "Download CSV") -> None:
    """A download button for ``df`` (or what ``df()`` returns) as a formula-safe UTF-8 CSV
    (:func:`csv_bytes`).

    The CSV is built when the button is clicked (``st.download_button`` calls a callable then),
    not on every rerun: a page's per-gem tables at 100k gems take about a second to encode."""
    st.download_button(label, lambda: csv_bytes(df() if callable(df) else df), file_name=filename,
                       mime="text/csv", key=key, icon=":material/download:")


def read_observations_csv(data: bytes) -> pd.DataFrame:
    """Parse an observations CSV with columns ``t, coherence[, gem]``.

    Raises ValidationError naming the column at fault (missing column, non-numbers,
    NaN/inf, coherence outside [0, 1], empty file, too many rows).
    """
    try:
        df = pd.read_csv(io.BytesIO(data))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise ValidationError("file", f"not a readable CSV ({exc.__class__.__name__}: {exc})") from None
    df.columns = [str(c).strip().lower() for c in df.columns]
    missing = [c for c in ("t", "coherence") if c not in df.columns]
    if missing:
        raise ValidationError(missing[0], f"column missing; the CSV needs columns t, coherence and optionally gem "
                                          f"(found: {', '.join(df.columns) or 'none'})")
    if df.empty:
        raise ValidationError("file", "the CSV has a header but no rows")
    if len(df) > MAX_UPLOAD_ROWS:
        raise ValidationError("file", f"{len(df)} rows is too many (max {MAX_UPLOAD_ROWS})")
    out = pd.DataFrame()
    for col in ("t", "coherence"):
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() | ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValidationError(col, f"row {row + 2} has {df[col].iloc[row]!r}, which is not a finite number")
        out[col] = values.astype(float)
    if ((out["coherence"] < 0) | (out["coherence"] > 1)).any():
        row = int(np.flatnonzero(((out["coherence"] < 0) | (out["coherence"] > 1)).to_numpy())[0])
        raise ValidationError("coherence", f"row {row + 2} has {out['coherence'].iloc[row]!r}; coherence is in [0, 1]")
    if "gem" in df.columns:
        out["gem"] = df["gem"].astype(str).str.strip()
    return out


def table_height(rows: int, max_height: int = 420) -> int:
    """Pixel height of an st.dataframe showing ``rows`` rows without empty filler (capped)."""
    return int(min(38 + 35 * max(int(rows), 1), max_height))
