"""Every benchmark in benchmarks/ runs to its figures in quick mode (``--quick``).

Each script (found by glob, so a new benchmark is covered without listing it here; modules whose
name starts with ``_`` are helpers) runs as its own process, as a user runs it, from the
repository root. It must exit 0, write no traceback, and print its figures: for the benchmarks
known here, the line that comes with their table; for any other, at least one figure. The runs
are started together (a few at a time) when the module starts, since most of a quick run is
waiting on servers and process start-up; each test waits for its own script.
"""

from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted(path.name for path in (ROOT / "benchmarks").glob("*.py") if not path.name.startswith("_"))
PARALLEL = 4
TIMEOUT_S = 600  # a hung benchmark fails its test instead of holding the suite

# What each benchmark prints with its figures (a benchmark not listed must print some figure).
FIGURES = {
    "capacity.py": "images meet the requirement",
    "cipher_speed.py": "target <= 50 ms",
    "cluster.py": "3-host estimate",
    "console.py": "target <= 200 ms",
    "dct_layout.py": "runs with fresh keys",
    "deep_vs_dct.py": "PSNR at the stored peak",
    "dicomweb.py": "WADO-RS series retrieval",
    "door.py": "stegonode, workers = 0, CPU ms",
    "fuzz.py": "PHI canary hits by place",
    "ingest.py": "C-FIND study level",
    "lean.py": "Processing throughput",
    "memory.py": "x decoded; bound 4",
    "realdata.py": "overlays:",
    "report.py": "CPU (user + system)",
    "robustness.py": "goal, 693_UNCR.dcm",
    "same_results.py": "images identical to",
    "segmenter.py": "Speed, ms per 512x512 CT slice",
    "speed.py": "TOTAL reveal",
    "stages.py": "total (worker)",
}
# Started first: the longest quick runs (servers, node processes, torch).
SLOWEST = ("ingest.py", "lean.py", "cluster.py", "fuzz.py", "report.py", "segmenter.py", "robustness.py")


def quick_run(name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), "--quick"], cwd=ROOT,
                          capture_output=True, text=True, timeout=TIMEOUT_S)


@pytest.fixture(scope="module")
def runs(request: pytest.FixtureRequest):
    """The quick runs of the benchmarks this session selected, started at once, a few at a time."""
    selected = {item.callspec.params["name"] for item in request.session.items
                if item.module is request.module and hasattr(item, "callspec")}
    order = sorted(selected, key=lambda name: (name not in SLOWEST, SLOWEST.index(name) if name in SLOWEST else 0))
    pool = ThreadPoolExecutor(PARALLEL)
    futures: dict[str, Future] = {name: pool.submit(quick_run, name) for name in order}
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


def test_every_benchmark_is_covered():
    """The glob finds the benchmarks (not an empty list that would make every check pass)."""
    assert len(BENCHMARKS) >= len(FIGURES)
    assert set(FIGURES) <= set(BENCHMARKS), f"benchmarks gone or renamed: {set(FIGURES) - set(BENCHMARKS)}"


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_quick_mode(name: str, runs: dict[str, Future]):
    result = runs[name].result()
    output = f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
    assert result.returncode == 0, output
    assert "Traceback" not in result.stderr + result.stdout, output
    assert re.search(r"\d", result.stdout), f"{name} printed no figure\n{output}"
    if name in FIGURES:
        assert FIGURES[name] in result.stdout, f"{name} did not print its figures\n{output}"
