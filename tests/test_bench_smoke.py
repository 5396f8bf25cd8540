"""Seconds-long runs of every benchmark script (``--quick``), so they cannot rot unnoticed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# Real-time windows and subprocesses: in the full run (`pytest`), not in the fast lane.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent


def run_module(*args: str, timeout: float = 60.0) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DASHSCOPE_"))}
    done = subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_slots_benchmark_compares_ours_with_the_sdk_within_the_caps() -> None:
    out = run_module("bench.slots", "--quick")
    ours = next(line for line in out.splitlines() if line.startswith("| ours (default"))
    sdk = next(line for line in out.splitlines() if line.startswith("| official SDK"))
    for row in (ours, sdk):
        efficiency = float(row.split("|")[4])
        assert 0.2 < efficiency <= 1.0, row
    assert re.search(r"completion time ours / SDK: \d\.\d{3}", out)
    caps = [line for line in out.splitlines() if line.startswith("| ours lag_per_poll=")]
    assert caps and all(line.endswith("| ok |") for line in caps), out
    assert "OVER" not in out


def test_image_preparation_benchmark_reports_every_case() -> None:
    out = run_module("bench.image_prep", "--quick")
    rows = [line for line in out.splitlines() if line.startswith("| ") and "MB)" in line]
    assert len(rows) == 4  # two images x two models
    for row in rows:
        ratio = float(row.split("|")[6])
        assert ratio > 0, row


def test_bot_process_benchmark_runs_the_bot_at_depth_and_end_to_end() -> None:
    out = run_module("bench.bot_process", "--quick")
    depth = out.split("## Memory at depth")[1].splitlines()[4]
    idle, peak = (float(x) for x in re.findall(r"(\d+\.\d) MB", depth)[:2])
    assert 20 < idle <= peak, depth
    assert "ok" in depth and "OVER" not in out
    overhead = out.split("## Bot overhead end to end")[1].splitlines()[4]
    per_second = float(overhead.split("|")[1])
    assert per_second > 0.5, overhead


def test_polling_and_store_benchmarks_run() -> None:
    polling = run_module("bench.polling", "--quick")
    assert re.search(r"detection lag: median \d+\.\d+ s", polling)
    store = run_module("bench.store_bench", "--count", "200", "--workers", "10")
    assert re.search(r"sequential: +\d+ reservations/s", store)


def test_flood_benchmark_measures_the_first_reaction_with_and_without_the_limit() -> None:
    out = run_module("bench.flood", "--quick")
    rows = [line for line in out.splitlines() if "median" in line]
    assert len(rows) == 2, out
    limited, unlimited = (float(re.search(r"median (\d+\.\d+) s", row)[1])  # type: ignore[index]
                          for row in rows)
    assert limited < unlimited, out


def test_failover_benchmark_times_a_new_leader_and_compares_one_instance_with_three() -> None:
    out = run_module("bench.failover", "--quick", timeout=240.0)
    leading = next(line for line in out.splitlines() if line.startswith("| a survivor leading"))
    median = float(leading.split("|")[2].strip().removesuffix(" s"))
    assert 0 < median < 10, leading
    [trial] = [line for line in out.splitlines() if line.startswith("| 1 |")]
    assert trial.split("|")[5].strip() == "4/4", trial  # each photo answered once
    batches = [line for line in out.splitlines() if line.startswith(("| one instance",
                                                                      "| three instances"))]
    assert len(batches) == 2, out
    for row in batches:
        assert row.split("|")[4].strip() == "2 (cap 2)", row  # the instances kept to one cap
        assert row.split("|")[6].strip() == "4/4", row
