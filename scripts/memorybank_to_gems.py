"""Convert the MemoryBank English evaluation data into timestamped gems and labelled questions.

Reads the vendored original files in ``data/memorybank-en/source/`` (or ``--source DIR``) and the hand-made labels in
``data/memorybank-en/evidence.json``, and writes into ``data/memorybank-en/`` (or ``--out DIR``):

- ``gems.jsonl``: one gem per exchange, id ``<user>-<YYYYMMDD>-<nn>``, created at 20:00 UTC of
  its history date plus ``nn`` minutes, rows sorted by (created_at, id);
- ``questions.jsonl``: one line per probing question, asked at 12:00 UTC on the day after the
  user's last history date, with the evidence, category and reference answer from
  ``evidence.json``;
- ``LICENSE``: the source's MIT licence, copied unchanged.

Deterministic (stdlib only; fixed field order, rows in a fixed sort, no clock or randomness):
re-running it reproduces the files byte for byte. Nothing is written unless every label checks out.
Run from the repository root: ``.venv/bin/python scripts/memorybank_to_gems.py``.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT / "data" / "memorybank-en" / "source"  # the vendored original files
DATA_DIR = ROOT / "data" / "memorybank-en"
CATEGORIES = ("dated", "relative-time", "multi", "recommendation", "preference", "event")
TITLE_CHARS = 60
# Exchanges of a day are spread one minute apart from 20:00 UTC so their order survives import.
DAY_START_HOUR = 20
ASK_HOUR = 12


class ConversionError(ValueError):
    """The source data or the labels are not what this converter expects (message says what to fix)."""


def user_slug(name: str) -> str:
    """Id-safe form of a user name: ``" John Zhang "`` -> ``"john_zhang"``."""
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def short_title(text: str, limit: int = TITLE_CHARS) -> str:
    """The user's words, whitespace collapsed, cut at a word boundary to at most ``limit`` chars."""
    words = " ".join(text.split())
    if len(words) <= limit:
        return words
    cut = words[: limit - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:") + "…"


def iso(instant: datetime) -> str:
    """ISO 8601 with an explicit UTC offset, seconds precision."""
    return instant.astimezone(timezone.utc).isoformat(timespec="seconds")


def build_gems(bank: dict) -> tuple[list[dict], dict[str, str]]:
    """One gem per exchange; also each user's question ``asked_at`` (by display name)."""
    gems: list[dict] = []
    asked_at: dict[str, str] = {}
    for raw_name, user in bank.items():
        name = raw_name.strip()
        slug = user_slug(name)
        days = sorted(user["history"])
        if not days:
            raise ConversionError(f"user {name!r} has no history; the source file is not the expected one")
        for day in days:
            d = date.fromisoformat(day)
            start = datetime(d.year, d.month, d.day, DAY_START_HOUR, tzinfo=timezone.utc)
            for n, exchange in enumerate(user["history"][day], start=1):
                query = exchange["query"].strip()
                response = exchange["response"].strip()
                gems.append({
                    "id": f"{slug}-{d:%Y%m%d}-{n:02d}",
                    "title": short_title(query),
                    "content": f"{name}: {query}\nCompanion: {response}",
                    "tags": [name, "memorybank"],
                    "source": f"memorybank-en {name} {day} #{n}",
                    "created_at": iso(start + timedelta(minutes=n)),
                })
        last = date.fromisoformat(days[-1]) + timedelta(days=1)
        asked_at[name] = iso(datetime(last.year, last.month, last.day, ASK_HOUR, tzinfo=timezone.utc))
    gems.sort(key=lambda g: (g["created_at"], g["id"]))
    return gems, asked_at


def load_questions(path: Path) -> list[tuple[str, int, str]]:
    """(user display name, 1-based number, verbatim question) in file order."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        for raw_name, questions in json.loads(line).items():
            for k, question in enumerate(questions, start=1):
                out.append((raw_name.strip(), k, question))
    return out


def build_questions(questions, labels: dict, gems: list[dict], asked_at: dict[str, str]) -> list[dict]:
    """Merge the hand labels into the questions, checking every label against the gems."""
    by_id = {g["id"]: g for g in gems}
    rows = []
    seen = set()
    for name, k, question in questions:
        qid = f"{user_slug(name)}-q{k}"
        seen.add(qid)
        label = labels.get(qid)
        if label is None:
            raise ConversionError(f"evidence.json has no entry for {qid} ({question!r}); label it first")
        missing = [key for key in ("evidence", "category", "answer") if key not in label]
        if missing:
            raise ConversionError(f"evidence.json {qid}: missing {', '.join(missing)}; every entry needs "
                                  "evidence (a list of gem ids, [] if unanswerable), category and answer")
        if len(set(label["evidence"])) != len(label["evidence"]):
            raise ConversionError(f"evidence.json {qid}: a gem id is listed twice in evidence")
        if label.get("category") not in CATEGORIES:
            raise ConversionError(f"evidence.json {qid}: category {label.get('category')!r} is not one of {CATEGORIES}")
        for gid in label["evidence"]:
            if gid not in by_id:
                raise ConversionError(f"evidence.json {qid}: gem {gid!r} does not exist in gems.jsonl")
            if by_id[gid]["tags"][0] != name:
                raise ConversionError(f"evidence.json {qid}: gem {gid!r} belongs to another user than {name!r}")
        rows.append({
            "id": qid,
            "question": question,
            "asked_at": asked_at[name],
            "evidence": sorted(label["evidence"]),
            "category": label["category"],
            "scope": name,
            "answer": label["answer"],
        })
    extra = sorted(set(labels) - seen - {"_about"})
    if extra:
        raise ConversionError(f"evidence.json labels questions that do not exist: {extra}")
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> None:
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    path.write_text(text, encoding="utf-8", newline="\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="folder of the MemoryBank English data")
    parser.add_argument("--labels", type=Path, default=DATA_DIR / "evidence.json", help="hand-made evidence labels")
    parser.add_argument("--out", type=Path, default=DATA_DIR,
                        help="folder to write gems.jsonl, questions.jsonl and LICENSE into")
    args = parser.parse_args(argv)
    try:
        bank = json.loads((args.source / "memory_bank_en.json").read_text(encoding="utf-8"))
        questions = load_questions(args.source / "probing_questions_en.jsonl")
        labels = json.loads(args.labels.read_text(encoding="utf-8"))
        gems, asked_at = build_gems(bank)
        rows = build_questions(questions, labels, gems, asked_at)
    except (OSError, ConversionError, KeyError, json.JSONDecodeError) as exc:
        print(f"memorybank_to_gems: {exc}; nothing was written", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    write_jsonl(args.out / "gems.jsonl", gems)
    write_jsonl(args.out / "questions.jsonl", rows)
    shutil.copyfile(args.source / "LICENSE", args.out / "LICENSE")
    print(f"wrote {len(gems)} gems and {len(rows)} questions to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
