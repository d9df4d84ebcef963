"""Study mode's store: one SQLite file (WAL mode) of ratings of explanations, CSV export, summary.

    db = study_db()                               # <cache root>/study/study.sqlite
    record(db, Rating(model=..., prompt=..., ...))
    export_csv(db, "ratings.csv"); summarise(db)  # the evaluation report calls summarise()

WAL lets the app's sessions write while an export or the evaluation report reads. Each call opens
its own short-lived connection: sqlite3 connections must not cross the app's worker threads.
"""

from __future__ import annotations

import csv
import sqlite3
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path

from attnlens.errors import InputError
from attnlens.extraction.models import cache_root

DB_NAME = "study.sqlite"
RATINGS = ("clarity", "usefulness", "trust")

SCHEMA = """
CREATE TABLE IF NOT EXISTS ratings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    session TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt TEXT NOT NULL,
    answer TEXT NOT NULL,
    clarity INTEGER NOT NULL CHECK (clarity BETWEEN 1 AND 5),
    usefulness INTEGER NOT NULL CHECK (usefulness BETWEEN 1 AND 5),
    trust INTEGER NOT NULL CHECK (trust BETWEEN 1 AND 5),
    chosen_cluster INTEGER,
    top_cluster INTEGER,
    n_clusters INTEGER NOT NULL,
    comment TEXT NOT NULL,
    time_on_task_s REAL NOT NULL,
    settings TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class Rating:
    """One participant's judgement of one explanation."""

    session: str
    model: str
    prompt: str
    answer: str
    clarity: int
    usefulness: int
    trust: int
    chosen_cluster: int | None  # the cluster they think mattered most (None: no choice)
    top_cluster: int | None  # the explanation's most important cluster
    n_clusters: int
    comment: str
    time_on_task_s: float  # from the explanation being shown to the rating submitted (server clock)
    settings: str  # the clustering settings used, as JSON


def study_db(data_dir: str | Path | None = None) -> Path:
    """The study database: `data_dir`/study.sqlite, by default under the attnlens cache root."""
    directory = Path(data_dir) if data_dir is not None else cache_root() / "study"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the study data directory {directory}: {exc}") from exc
    return directory / DB_NAME


def _connect(db: Path) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(db, timeout=10)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(SCHEMA)
    except sqlite3.Error as exc:
        raise InputError(f"cannot use the study database {db}: {exc}") from exc
    return conn


def record(db: str | Path, rating: Rating) -> int:
    """Store one rating; returns its row id."""
    for name in RATINGS:
        value = getattr(rating, name)
        if not isinstance(value, int) or not 1 <= value <= 5:
            raise InputError(f"{name} must be a whole number from 1 to 5, got {value!r}")
    row = {"created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **asdict(rating)}
    conn = _connect(Path(db))
    try:
        with conn:
            cursor = conn.execute(
                f"INSERT INTO ratings ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})", tuple(row.values())
            )
        return int(cursor.lastrowid)
    finally:
        conn.close()


COLUMNS = ("id", "created_at", *(f.name for f in fields(Rating)))


def rows(db: str | Path) -> list[dict]:
    """Every rating, oldest first."""
    db = Path(db)
    if not db.exists():
        raise InputError(f"no study database at {db} (nothing has been rated yet?)")
    conn = _connect(db)
    try:
        cursor = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM ratings ORDER BY id")
        return [dict(zip(COLUMNS, r)) for r in cursor.fetchall()]
    finally:
        conn.close()


def export_csv(db: str | Path, path: str | Path) -> int:
    """Write every rating to a CSV file (header included); returns the number of rows."""
    data = rows(db)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(data)
    return len(data)


def summarise(db_path: str | Path) -> dict:
    """What the evaluation report shows of the study: counts, mean ratings (with n), mean time on
    task, and how often the cluster a participant chose was the explanation's most important one."""
    data = rows(db_path)
    chosen = [r for r in data if r["chosen_cluster"] is not None and r["top_cluster"] is not None]
    return {
        "ratings": len(data),
        "sessions": len({r["session"] for r in data}),
        "models": sorted({r["model"] for r in data}),
        **{name: {"mean": _mean([r[name] for r in data]), "n": len(data)} for name in RATINGS},
        "time_on_task_s": {"mean": _mean([r["time_on_task_s"] for r in data]), "n": len(data)},
        "chose_top_cluster": {
            "rate": _mean([float(r["chosen_cluster"] == r["top_cluster"]) for r in chosen]),
            "n": len(chosen),
        },
        "comments": sum(1 for r in data if r["comment"].strip()),
    }


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
