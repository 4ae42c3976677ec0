"""Values from core (numpy scalars, pandas timestamps, datetimes, NaN) as plain JSON values.

JSON has no NaN or infinity and no numpy types: a NaN score term (an interference term of a
gem with no partner) becomes ``null`` and an ``int64`` a plain int, so a response never fails
to serialise (which would be a 500).
"""
from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd


def plain(value: Any) -> Any:
    """``value`` with every nested numpy/pandas/datetime value as a JSON value (NaN, inf -> None)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (pd.Timestamp, datetime, date)):
        return None if pd.isna(value) else value.isoformat()
    if value is pd.NaT or value is pd.NA:
        return None
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A DataFrame's rows as plain dicts (see :func:`plain`)."""
    return [plain(r) for r in frame.to_dict(orient="records")]
