"""Study mode's store on a real SQLite file: WAL mode, validation, CSV export, the summary."""

import csv
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from attnlens.errors import InputError
from attnlens.pipeline.study import Rating, export_csv, record, study_db, summarise

ATTNLENS = str(Path(sys.executable).with_name("attnlens"))


def rating(**changes) -> Rating:
    base = dict(
        session="s1", model="smollm2-135m", prompt="What is 2 + 2?", answer="4", clarity=4, usefulness=3, trust=5,
        chosen_cluster=0, top_cluster=0, n_clusters=3, comment="", time_on_task_s=12.0, settings="{}",
    )
    return Rating(**{**base, **changes})


def test_ratings_are_stored_in_one_wal_file_and_summarised(tmp_path):
    db = study_db(tmp_path)
    assert db == tmp_path / "study.sqlite"
    record(db, rating())
    record(db, rating(session="s2", clarity=2, chosen_cluster=1, comment="too long", time_on_task_s=30.0))
    record(db, rating(session="s2", chosen_cluster=None))
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    summary = summarise(db)
    assert summary["ratings"] == 3 and summary["sessions"] == 2 and summary["models"] == ["smollm2-135m"]
    assert summary["clarity"] == {"mean": pytest.approx(10 / 3), "n": 3}
    assert summary["time_on_task_s"]["mean"] == pytest.approx(18.0)
    assert summary["chose_top_cluster"] == {"rate": 0.5, "n": 2}  # the rating without a choice is left out
    assert summary["comments"] == 1


@pytest.mark.parametrize("field, value", [("clarity", 0), ("usefulness", 6), ("trust", None)])
def test_out_of_range_ratings_are_refused(tmp_path, field, value):
    with pytest.raises(InputError, match=field):
        record(study_db(tmp_path), rating(**{field: value}))


def test_export_writes_every_rating_as_csv(tmp_path):
    db = study_db(tmp_path)
    record(db, rating(comment='with, a "comma"\nand a line'))
    assert export_csv(db, tmp_path / "out" / "ratings.csv") == 1
    rows = list(csv.DictReader((tmp_path / "out" / "ratings.csv").open()))
    assert rows[0]["comment"] == 'with, a "comma"\nand a line' and rows[0]["clarity"] == "4"


def test_study_export_command(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = tmp_path / "ratings.csv"
    missing = subprocess.run([ATTNLENS, "study", "export", "--data-dir", str(tmp_path), "--out", str(out)],
                             capture_output=True, text=True, env=env, timeout=120)
    assert missing.returncode == 2 and "no study database" in missing.stderr and "Traceback" not in missing.stderr
    record(study_db(tmp_path), rating())
    proc = subprocess.run([ATTNLENS, "study", "export", "--data-dir", str(tmp_path), "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "1 ratings" in proc.stdout and len(list(csv.DictReader(out.open()))) == 1
