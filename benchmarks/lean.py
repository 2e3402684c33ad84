#!/usr/bin/env python
"""The lean runtime's figures: install footprint, set-up time, start-up, segmenter speed, throughput.

* Footprint and set-up: a fresh ``git clone`` of this checkout's branch in a temporary folder,
  ``scripts/setup.sh`` run there as ``scripts/run.sh`` runs it (the runtime, no extras); wall
  time of the set-up and the size of its ``.venv`` (disk usage), with its largest packages.
  ``--test-setup`` also times ``scripts/setup.sh --test`` on top (what ``scripts/test.sh`` adds:
  pytest and the training extra, torch).
* Start-up: ``stegonode serve`` of that fresh clone, from process start to the first C-ECHO
  DCMTK's echoscu gets answered (a fresh data folder each time, so first-start key generation is
  included); median of ``--repeats``.
* Segmenter: milliseconds per 512x512 CT slice on 2 threads, ONNX Runtime and torch side by side
  (benchmarks/segmenter.py's measurement; needs the training extra in this .venv).
* Stages: CPU milliseconds of one worker per protect stage (benchmarks/stages.py: network, the
  rest of segmentation, embedding, collect + seal + de-identification, encoding, read and write).
* Throughput: instances per second a fresh node (2 workers, default segmenter) takes from first
  receive to last stored protected object, 200 CT slices over one association
  (benchmarks/ingest.py's measurement); median of ``--repeats``.

The machine is shared: the load average is printed before each part. Run from the repository
root (the clone is of the committed branch, not of uncommitted changes)::

    .venv/bin/python benchmarks/lean.py [--repeats 3] [--test-setup] [--parts setup,speed,stages,throughput] [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ingest import INSTANCES, stegonode_rates  # noqa: E402

from stegonode.node.config import DEFAULTS, SEGMENTER_CHOICES  # noqa: E402

from nodes import DCMTK_ENV, free_port, write_series  # noqa: E402

TARGETS = {"venv_mb": 700, "start_s": 5.0, "throughput": 25.0}
# The clone's processes use the clone's install only (not a PYTHONPATH this benchmark runs under).
CLONE_ENV = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} CPUs"


def disk_usage(path: Path) -> int:
    """Bytes on disk under ``path`` (what ``du -s`` counts), each hard-linked file once."""
    seen, total = set(), 0
    for folder, _, files in os.walk(path):
        for name in files:
            info = os.lstat(os.path.join(folder, name))
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_blocks * 512
    return total


def fresh_clone(work: Path) -> Path:
    branch = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--abbrev-ref", "HEAD"],
                            capture_output=True, text=True, check=True).stdout.strip()
    clone = work / "stegonode"
    subprocess.run(["git", "clone", "-q", "--branch", branch, str(ROOT), str(clone)], check=True)
    return clone


def timed_setup(clone: Path, *flags: str) -> float:
    start = time.perf_counter()
    subprocess.run([str(clone / "scripts" / "setup.sh"), *flags], check=True, env=CLONE_ENV)
    return time.perf_counter() - start


def report_venv(venv: Path, label: str) -> float:
    size = disk_usage(venv)
    site = next((venv / "lib").glob("python3*/site-packages"))
    packages = sorted(((disk_usage(p), p.name) for p in site.iterdir() if p.is_dir()), reverse=True)
    print(f"  .venv after {label}: {size / 1e6:.0f} MB ({size / 2**20:.0f} MiB)")
    print("  largest: " + ", ".join(f"{name} {bytes_ / 1e6:.0f} MB" for bytes_, name in packages[:8]))
    return size / 1e6


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a running process has used (its own, not its children's)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_to_echo(clone: Path, work: Path) -> tuple[float, float]:
    """Seconds from starting ``stegonode serve`` to the first answered C-ECHO, and the CPU
    seconds the node's process used until then (what a machine without other load waits)."""
    port = free_port()
    folder = Path(tempfile.mkdtemp(dir=work))
    config = folder / "node.toml"
    # The console on a port of its own too: another node (a benchmark running beside this one)
    # may hold the default 8080.
    config.write_text(f'[node]\nport = {port}\ndata_dir = "{folder / "data"}"\n[web]\nport = {free_port()}\n')
    with open(folder / "node.log", "w") as log:
        start = time.perf_counter()
        process = subprocess.Popen([str(clone / ".venv" / "bin" / "stegonode"), "serve", "--config", str(config)],
                                   stdout=log, stderr=subprocess.STDOUT, cwd=folder, start_new_session=True,
                                   env=CLONE_ENV)
    try:
        while time.perf_counter() - start < 120:
            echo = subprocess.run(["/usr/bin/echoscu", "-aec", "STEGONODE", "127.0.0.1", str(port)],
                                  env=DCMTK_ENV, capture_output=True)
            if echo.returncode == 0:
                return time.perf_counter() - start, cpu_seconds(process.pid)
            if process.poll() is not None:
                raise RuntimeError(f"node exited: {(folder / 'node.log').read_text()[-2000:]}")
            time.sleep(0.02)
        raise RuntimeError("no C-ECHO answer within 120 s")
    finally:
        process.terminate()
        process.wait(timeout=60)


def segmenter_speed(slices: int = 16, repeats: int = 5) -> None:
    try:
        from segmenter import slice_ms
    except ImportError as exc:
        print(f"  not measured: {exc} (install the training extra for the torch side)")
        return
    ms = slice_ms(2, slices, repeats)
    print("  ms per 512x512 CT slice, 2 threads, wall (CPU of all threads), whole Mask R-CNN segmenter: "
          f"ONNX Runtime {ms['onnx_segmenter']:.1f} ({ms['onnx_segmenter_cpu']:.1f}), torch "
          f"{ms['torch_segmenter']:.1f} ({ms['torch_segmenter_cpu']:.1f}): torch / ONNX "
          f"{ms['torch_segmenter'] / ms['onnx_segmenter']:.2f}x wall, "
          f"{ms['torch_segmenter_cpu'] / ms['onnx_segmenter_cpu']:.2f}x CPU")
    print(f"  network + post-processing only: ONNX Runtime {ms['onnx_network']:.1f} ({ms['onnx_network_cpu']:.1f}), "
          f"torch {ms['torch_network']:.1f} ({ms['torch_network_cpu']:.1f}); classical segmenter "
          f"{ms['classical']:.1f} ({ms['classical_cpu']:.1f})")


def stages(quick: bool) -> None:
    """benchmarks/stages.py's table (its own process: it pins itself to one core)."""
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "stages.py"), *(["--quick"] if quick else [])],
                            capture_output=True, text=True, cwd=ROOT)
    print("\n".join("  " + line for line in result.stdout.splitlines()) or f"  not measured: {result.stderr[-500:]}")


def throughput(work: Path, repeats: int, instances: int = INSTANCES,
               segmenter: str = DEFAULTS["handlers"]["segment"]["segmenter"]) -> float:
    """Median instances per second; printed per round with the CPU seconds per instance that the
    node's process group (receivers and workers) used from the first C-STORE until it was idle,
    and what 2 cores free of other work would allow at that cost (storescu and the kernel's
    share of the loopback traffic not included: the bound is a little high)."""
    series = write_series(work / "series", instances)
    rates = []
    for round_ in range(repeats):
        figures: dict[str, float] = {}
        _, processed, _, cpu = stegonode_rates(Path(tempfile.mkdtemp(dir=work)), [series], segmenter, figures)
        rates.append(processed)
        print(f"  round {round_ + 1}: {processed:.1f} instances/s; {1000 * cpu:.0f} CPU ms per instance "
              f"(node's main process {1000 * figures['main_cpu']:.0f}, the rest its workers; "
              f"2 free cores: {2 / cpu:.1f} instances/s); {load()}", flush=True)
    return statistics.median(rates)


def quick() -> int:
    """Start-up and throughput at CI size: set-up and footprint need a fresh clone and its pip
    install, and the segmenter speed loads torch; neither is quick."""
    with tempfile.TemporaryDirectory(prefix="stegonode-lean-") as tmp:
        work = Path(tmp)
        print(f"Quick mode: no clone, no set-up; stegonode serve of this checkout's .venv ({load()}):", flush=True)
        start, cpu = start_to_echo(ROOT, work)
        print(f"  start to first C-ECHO answered {start:.2f} s, the node's CPU time until then {cpu:.2f} s")
        print(f"Processing throughput, 4 CT slices, classical segmenter ({load()}):", flush=True)
        rate = throughput(work, 1, 4, "classical")
        print(f"  {rate:.1f} instances/s")
    return 0


def verdict(value: float, target: float, at_most: bool, unit: str) -> str:
    met = value <= target if at_most else value >= target
    return f"target {'<=' if at_most else '>='} {target:g} {unit}: {'met' if met else 'NOT met'}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--test-setup", action="store_true", help="also time scripts/setup.sh --test (torch)")
    parser.add_argument("--parts", default="setup,speed,stages,throughput",
                        help="comma-separated: setup (clone, set-up, footprint, start-up), speed, stages (CPU ms "
                        "per protect stage, benchmarks/stages.py), throughput")
    parser.add_argument("--segmenter", choices=SEGMENTER_CHOICES, default=DEFAULTS["handlers"]["segment"]["segmenter"],
                        help="throughput's segmenter (default: the node's; classical runs no network)")
    parser.add_argument("--quick", action="store_true",
                        help="CI size: no clone or set-up (start-up of this checkout's .venv, once), no segmenter "
                        "speed (benchmarks/segmenter.py --quick runs it), throughput of 4 instances with the "
                        "classical segmenter, once")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if args.quick:
        return quick()
    with tempfile.TemporaryDirectory(prefix="stegonode-lean-") as tmp:
        work = Path(tmp)
        if "setup" in parts:
            print(f"Fresh clone, scripts/setup.sh as scripts/run.sh runs it ({load()}):", flush=True)
            clone = fresh_clone(work)
            seconds = timed_setup(clone)
            print(f"  set-up: {seconds:.0f} s (Debian packages already installed; pip from this machine's "
                  "package index and cache)")
            size = report_venv(clone / ".venv", "scripts/run.sh's set-up")
            print(f"  {verdict(size, TARGETS['venv_mb'], True, 'MB')}")
            print(f"stegonode serve start to first C-ECHO answered ({load()}):", flush=True)
            starts, cpu = zip(*(start_to_echo(clone, work) for _ in range(args.repeats)), strict=True)
            print(f"  {', '.join(f'{s:.2f}' for s in starts)} s; median {statistics.median(starts):.2f} s, "
                  f"{verdict(statistics.median(starts), TARGETS['start_s'], True, 's')}; the node's CPU time "
                  f"until then: median {statistics.median(cpu):.2f} s")
            if args.test_setup:
                print(f"scripts/setup.sh --test on top, as scripts/test.sh runs it ({load()}):", flush=True)
                seconds = timed_setup(clone, "--test")
                print(f"  set-up: {seconds:.0f} s more")
                report_venv(clone / ".venv", "scripts/test.sh's set-up")
            shutil.rmtree(clone)
        if "speed" in parts:
            print(f"Segmenter speed ({load()}):", flush=True)
            segmenter_speed()
        if "stages" in parts:
            print(f"CPU ms per protect stage, one worker ({load()}):", flush=True)
            stages(args.quick)
        if "throughput" in parts:
            default = args.segmenter == DEFAULTS["handlers"]["segment"]["segmenter"]
            print(f"Processing throughput, {INSTANCES} CT slices, 1 association, 2 workers, "
                  f"{'default' if default else args.segmenter} segmenter ({load()}):", flush=True)
            rate = throughput(work, args.repeats, segmenter=args.segmenter)
            print(f"  median {rate:.1f} instances/s, {verdict(rate, TARGETS['throughput'], False, 'instances/s')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
