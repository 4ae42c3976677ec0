"""A retrieval corpus of real text nobody here wrote: docstrings of numpy, scipy and pandas.

Each gem is the first paragraph of the docstring of one public function (its summary,
as the library's authors wrote it); its id is the function's qualified name, e.g.
``numpy.linalg.inv`` or ``pandas.DataFrame.dropna``. Built offline from the installed
packages, deterministically (modules in a fixed order, names sorted, an object reached
or a paragraph met twice kept once, under its first name, the other names recorded as
``aliases``: ``numpy.concat`` is ``numpy.concatenate``, ``pandas.merge`` has the same
summary as ``pandas.DataFrame.merge``).
"""
from __future__ import annotations

import importlib
import inspect
import re
import warnings
from dataclasses import dataclass

# modules (and the DataFrame class's methods); the order decides which alias is kept
SOURCES: tuple[str, ...] = (
    "numpy", "numpy.linalg", "numpy.fft",
    "scipy.optimize", "scipy.integrate", "scipy.interpolate", "scipy.spatial.distance", "scipy.stats",
    "pandas", "pandas.DataFrame",
)
MIN_CHARS = 15
_SIGNATURE = re.compile(r"^[\w.]+\(.*\)\s*(->.*)?$")


@dataclass(frozen=True)
class DocGem:
    id: str  # qualified name
    text: str  # first paragraph of the docstring
    aliases: tuple[str, ...] = ()  # other qualified names of the same object or paragraph

    @property
    def names(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)


def first_paragraph(doc: str) -> str:
    """The first paragraph of a docstring, whitespace collapsed; signature lines skipped."""
    paras = [p.strip() for p in re.split(r"\n\s*\n", inspect.cleandoc(doc or "")) if p.strip()]
    for p in paras:
        lines = [ln for ln in p.splitlines() if not _SIGNATURE.match(ln.strip())]
        text = " ".join(" ".join(lines).split())
        if text:
            return text
    return ""


def _members(path: str):
    if path == "pandas.DataFrame":
        import pandas as pd
        return [(n, getattr(pd.DataFrame, n, None)) for n in sorted(dir(pd.DataFrame))]
    mod = importlib.import_module(path)
    names = getattr(mod, "__all__", None) or dir(mod)
    return [(n, getattr(mod, n, None)) for n in sorted(set(names))]


def _is_function(obj) -> bool:
    import numpy as np
    if obj is None or inspect.isclass(obj) or inspect.ismodule(obj):
        return False
    return inspect.isroutine(obj) or isinstance(obj, np.ufunc) or type(obj).__name__ == "_ArrayFunctionDispatcher"


def build_corpus() -> list[DocGem]:
    """The gems (several hundred), in a deterministic order."""
    by_obj: dict[int, int] = {}  # object id -> position in gems
    by_text: dict[str, int] = {}
    gems: list[DocGem] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in SOURCES:
            for name, obj in _members(path):
                if name.startswith("_") or not _is_function(obj):
                    continue
                qual = f"{path}.{name}"
                key = id(getattr(obj, "__func__", obj))
                text = first_paragraph(getattr(obj, "__doc__", "") or "")
                pos = by_obj.get(key, by_text.get(text))
                if pos is not None:
                    g = gems[pos]
                    gems[pos] = DocGem(g.id, g.text, g.aliases + (qual,))
                    continue
                if len(text) < MIN_CHARS or "deprecated" in text.lower()[:60]:
                    continue
                by_obj[key] = by_text[text] = len(gems)
                gems.append(DocGem(qual, text))
    return gems


if __name__ == "__main__":
    gems = build_corpus()
    from collections import Counter
    print(len(gems), Counter(g.id.rsplit(".", 1)[0] for g in gems))
