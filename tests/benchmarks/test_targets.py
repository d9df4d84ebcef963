"""Each benchmark's targets: a figure beside its goal, met or not, the same fields everywhere."""

import json
import subprocess
import sys

from attnlens.benchmarks import clustering, extraction
from attnlens.benchmarks.targets import Target, render


def test_a_target_is_met_in_its_direction_and_unmeasured_is_neither():
    assert Target("t", 0.9, 1.0, "at_most", "s").met is True
    assert Target("t", 1.1, 1.0, "at_most", "s").met is False
    assert Target("t", 0.8, 0.8, "at_least", "%").met is True
    assert Target("t", None, 1.0, "at_most").met is None
    assert Target("engines", 1, 1, "exactly").met is True and Target("engines", 0, 1, "exactly").met is False
    text = render([Target("speed", 1.234, 1.15, "at_most", "x").to_dict(), Target("share", 0.5, 0.8, "at_least", "%").to_dict(),
                   Target("seconds", None, 1.0, "at_most", "s").to_dict()])  # fmt: skip
    assert text.splitlines() == [
        "speed: 1.23x (goal <= 1.15x: NOT met)",
        "share: 50% (goal >= 80%: NOT met)",
        "seconds: - (goal <= 1.00 s: not measured)",
    ]


def test_extraction_targets_are_ratios_to_the_floor_at_the_sizes_with_goals():
    rows = [
        {"method": "floor", "tokens": 2048, "seconds": 4.0, "peak_rss_mb": 1000.0, "error": None},
        {"method": "attnlens", "tokens": 2048, "seconds": 4.4, "peak_rss_mb": 1400.0, "error": None},
        {"method": "floor", "tokens": 8192, "seconds": 30.0, "peak_rss_mb": 1200.0, "error": None},
        {"method": "attnlens", "tokens": 8192, "seconds": None, "peak_rss_mb": None, "error": "killed: out of memory"},
    ]
    smollm = {t["name"]: t for t in extraction.targets("smollm2-135m", rows)}
    assert smollm["time_vs_floor_2048"]["figure"] == 4.4 / 4.0 and smollm["time_vs_floor_2048"]["goal"] == 1.15
    assert smollm["time_vs_floor_2048"]["met"] is True
    assert smollm["memory_vs_floor_2048"]["met"] is False  # 1.4x
    assert smollm["time_vs_floor_8192"]["figure"] is None  # failed: not measured, never a pass
    other = {t["name"]: t for t in extraction.targets("gemma3-270m", rows)}
    assert other["time_vs_floor_2048"]["goal"] == 1.3


def test_clustering_bench_reports_its_targets_as_json():
    """A real run at 256 tokens: the rows are measured, the 4096-token targets are not."""
    proc = subprocess.run(
        [sys.executable, "-m", "attnlens.benchmarks.clustering", "--tokens", "256", "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    leiden = next(r for r in result["rows"] if r["method"] == "leiden")
    assert abs(leiden["tokens"] - 256) <= 8 and leiden["modularity"] > 0
    targets = {t["name"]: t for t in result["targets"]}
    assert set(targets) == {"cluster_s_4096", "modularity_4096"}
    assert all(t["figure"] is None and t["met"] is None for t in targets.values())
    assert clustering.targets([{**leiden, "tokens": 4095, "seconds": 0.5}])[0]["met"] is True
