"""A static English word-frequency table, for weights that do not depend on any corpus.

``data/english_zipf.tsv`` holds 28,338 lower-case English words with their Zipf frequency
(log10 of occurrences per billion words: "the" 7.73, "movie" 5.2, "nebula" 3.3), the words
of ``wordfreq`` 3.1.1's English list with Zipf >= 3.0 (source and licence in
``data/README.md``: CC BY-SA 4.0, with attribution). A word not in the table is rarer than
that: it gets :data:`UNLISTED_ZIPF`.

Because the table is fixed, a weight read from it is the same for a text whatever else is
in the lattice: an embedding made with it stays valid when gems are added (unlike a corpus
IDF, which moves with every import).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

TABLE_PATH = Path(__file__).with_name("data") / "english_zipf.tsv"
UNLISTED_ZIPF = 2.5
"""Zipf frequency of a word the table does not list (it lists Zipf >= 3.0; rarer words, names
and numbers all count as this rare)."""


@lru_cache(maxsize=1)
def zipf_table() -> dict[str, float]:
    """``word -> Zipf frequency`` (read once per process, ~28k entries)."""
    table: dict[str, float] = {}
    with TABLE_PATH.open(encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("#"):
                continue
            word, _, zipf = line.rstrip("\n").partition("\t")
            table[word] = float(zipf)
    return table


def zipf(word: str) -> float:
    """Zipf frequency of lower-case ``word`` (:data:`UNLISTED_ZIPF` when unlisted)."""
    return zipf_table().get(word, UNLISTED_ZIPF)
