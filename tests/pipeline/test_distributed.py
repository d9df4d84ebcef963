"""`--ray`: the same rows as one process, a kill -9 of the driver resumed, a dying worker
restarted, and the one-line error without Ray. A real local Ray (2 CPUs), no mock."""

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from attnlens.pipeline import distributed
from attnlens.pipeline.distributed import RayConfig
from tests.pipeline.test_annotate import ATTNLENS, ENV, IDS, rows, wait_for_rows, write_cases

pytestmark = pytest.mark.slow
FOUR = IDS[:4]
# what a row records about its own run, not about the case
RUN_COLUMNS = {"finished_at", "timings_total", *(f"timings_{s}" for s in ("generate", "extract", "cluster", "evaluate", "agent", "save"))}


def command(dataset: Path, run: Path, *extra: str) -> list[str]:
    return [
        ATTNLENS, "annotate", "--dataset", str(dataset), "--out", str(run), "--batch-size", "1",
        "--max-new-tokens", "8", "--backend", "transformers", "--max-llm-clusters", "0", *extra,
    ]


def close(a, b, where) -> None:
    """Equal, floats to 1e-6 relative (a worker has one torch thread, this process two)."""
    if isinstance(a, float) and isinstance(b, float) and not (math.isnan(a) and math.isnan(b)):
        assert b == pytest.approx(a, rel=1e-6, abs=1e-9), where
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            close(a[k], b[k], (*where, k))
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            close(x, y, (*where, i))
    else:
        assert a == b, where


def same_rows(a: list[dict], b: list[dict]) -> None:
    """The same cases with the same answers, clusters and figures (the clusters' JSON compared parsed)."""
    by_id = {r["id"]: r for r in b}
    assert sorted(r["id"] for r in a) == sorted(by_id)
    for row in a:
        other = by_id[row["id"]]
        for key, value in row.items():
            if key in RUN_COLUMNS:
                continue
            if key == "clusters":
                close(json.loads(value), json.loads(other[key]), (row["id"], key))
            else:
                close(value, other[key], (row["id"], key))


def test_ray_workers_write_the_rows_one_process_writes(tmp_path):
    dataset = write_cases(tmp_path / "cases.jsonl", FOUR, long_case=False)
    single = subprocess.run(command(dataset, tmp_path / "single"), env=ENV, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    ray = subprocess.run(command(dataset, tmp_path / "ray", "--ray", "--workers", "2"), env=ENV, capture_output=True,
                         text=True, timeout=400)  # fmt: skip
    assert ray.returncode == 0, ray.stderr[-2000:]
    assert "4 annotated now" in ray.stdout and "on 2 Ray workers" in ray.stderr
    got, want = rows(tmp_path / "ray"), rows(tmp_path / "single")
    assert len(got) == 4 and all(r["error"] is None for r in got)
    same_rows(want, got)
    for row in got:  # the explanations the workers saved are the ones the rows describe
        assert (tmp_path / "ray" / row["explanation_dir"] / "explanation.json").is_file()
    assert not list((tmp_path / "ray" / "parts").glob("*.parquet"))  # every part folded into the table

    # evaluate --ray scores the same explanations to the same figures
    results = {}
    for name, extra in (("single", ("--threads", "1")), ("ray", ("--ray", "--workers", "2"))):  # one thread each
        out = tmp_path / f"evaluation-{name}"
        cmd = [ATTNLENS, "evaluate", "--run", str(tmp_path / "single"), "--out", str(out), "--limit", "2",
               "--ablation", "deletion", "--draws", "1", *extra]  # fmt: skip
        done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        results[name] = {r["key"]: r for r in map(json.loads, (out / "cases.jsonl").read_text().splitlines())}
    assert len(results["ray"]) == 2 and results["ray"].keys() == results["single"].keys()
    for key, row in results["single"].items():
        assert row["error"] is None
        close({k: v for k, v in row.items() if k != "seconds"}, {k: v for k, v in results["ray"][key].items() if k != "seconds"}, (key,))


def test_kill_9_of_the_driver_then_resume(tmp_path):
    dataset = write_cases(tmp_path / "cases.jsonl", IDS, long_case=False)
    run = tmp_path / "run"
    proc = subprocess.Popen(command(dataset, run, "--ray", "--workers", "2"), env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        wait_for_rows(proc, run, 1, timeout=300)
        os.kill(proc.pid, signal.SIGKILL)  # the driver only: Ray's own processes are left to notice
        proc.wait()
        before = {r["id"]: r for r in rows(run)}
        assert 1 <= len(before) < len(IDS)
        done = subprocess.run(command(dataset, run, "--ray", "--workers", "2"), env=ENV, capture_output=True,
                              text=True, timeout=400)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
    finally:
        try:  # whatever the killed driver's Ray left behind (its session's process group)
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    after = rows(run)
    assert sorted(r["id"] for r in after) == sorted(IDS)  # every case exactly once: nothing lost, nothing twice
    by_id = {r["id"]: r for r in after}
    for i, row in before.items():  # what was finished before the kill is kept as it was
        assert by_id[i] == row
    assert all(r["error"] is None for r in after)
    assert not list(run.glob("explanations/*/.*.partial")) and not list((run / "parts").glob("*.parquet"))


class DiesOnce:
    """Exits its process the first time it sees item 1 (a marker file remembers): a real crash."""

    def __init__(self, marker: str):
        self.marker = marker

    def run(self, item: int) -> tuple[int, int]:
        if item == 1 and not os.path.exists(self.marker):
            Path(self.marker).write_text("died")
            os._exit(1)
        return item, os.getpid()


class AlwaysDies:
    def run(self, item: int) -> int:
        os._exit(1)


def test_a_dying_worker_is_restarted_and_its_call_redone(tmp_path):
    config = RayConfig(workers=2, retries=2)
    with distributed.connect(config) as ray:
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test file
        got = dict(distributed.map_unordered(ray, DiesOnce, (str(tmp_path / "died"),), [(i,) for i in range(4)], config))
        assert (tmp_path / "died").exists()  # a worker did die
        assert sorted(got) == [0, 1, 2, 3] and all(got[i][0] == i for i in got)  # and item 1 was still done
        failed = dict(distributed.map_unordered(ray, AlwaysDies, (), [(0,)], RayConfig(workers=1, retries=1)))
        assert isinstance(failed[0], Exception)  # restarts used up: the call comes back as its error


def test_without_ray_the_error_is_one_line(tmp_path):
    hidden = tmp_path / "no-ray" / "ray"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('ray is hidden for this test')\n")
    dataset = write_cases(tmp_path / "cases.jsonl", FOUR[:1], long_case=False)
    env = {**ENV, "PYTHONPATH": str(hidden.parent)}
    for cmd in (command(dataset, tmp_path / "run", "--ray"), [ATTNLENS, "evaluate", "--run", str(tmp_path), "--ray"]):
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "pip install 'attnlens[ray]'" in lines[0], result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()  # refused before anything was written
