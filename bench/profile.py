#!/usr/bin/env python3
"""Instruction-count profile of one Strongroom workload under callgrind.

    bench/.venv/bin/python bench/profile.py --bin-dir target/release --workload read --seconds 20

Starts `strongroom serve` (embedded defaults, as in bench.py) under
`valgrind --tool=callgrind`, sets it up like the benchmark (signup, vault, agent,
policy, agent token), preloads secrets, resets the counters, drives the workload
for N seconds at concurrency 4 with the benchmark's load generator, then prints the
top of `callgrind_annotate --inclusive=yes` and instructions per request.
Callgrind counts instructions, not time: the numbers repeat whatever else the
machine is doing, which makes them the right tool on a noisy 2-core box. System
calls and fsync waits are not in them (see bench/README.md for the thread view).
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import bench  # noqa: E402


class Profiled(bench.Strongroom):
    def _spawn(self, argv, logfile, env=None):  # type: ignore[override]
        self.out = self.dir / "callgrind.out"
        argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={self.out}", *argv]
        super()._spawn(argv, logfile, env)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin-dir", required=True)
    p.add_argument("--workload", default="read", choices=["read", "write", "login", "list"])
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--keys", type=int, default=1000, help="secrets preloaded for reads")
    p.add_argument("--top", type=int, default=40)
    o = p.parse_args()
    bins = Path(o.bin_dir)
    with tempfile.TemporaryDirectory(prefix="strongroom-profile-") as tmp:
        t = Profiled("strongroom")
        t.start(Path(tmp), bins)
        try:
            t.setup()
            opts = argparse.Namespace(bin_dir=o.bin_dir, loadgen_threads=1, read_keys=o.keys, preload_concurrency=8)
            r = bench.Runner(opts)
            if o.workload == "read":
                r.fill(t, bench.READ_PREFIX, 0, o.keys)
            if o.workload == "list":
                r.fill(t, bench.LIST_PREFIX + "k", 0, 1000)
            subprocess.run(["callgrind_control", "--zero", str(t.pid)], check=True, capture_output=True)
            t0 = time.time()
            res = r.loadgen(t, o.workload, concurrency=4, duration=o.seconds, label="profile")
            bench.log(f"{res['ok']} {o.workload} requests in {time.time() - t0:.1f} s under callgrind")
            subprocess.run(["callgrind_control", "--dump", str(t.pid)], check=True, capture_output=True)
            time.sleep(1)
            # The dump just made (the one at exit covers only the shutdown).
            dumps = sorted(Path(t.dir).glob("callgrind.out.*"), key=lambda f: f.stat().st_mtime)
            dump = Path(tempfile.gettempdir()) / f"strongroom-{o.workload}.callgrind"
            shutil.copy(dumps[-1], dump)
            bench.log(f"callgrind output kept as {dump} (callgrind_annotate --tree=caller {dump})")
        finally:
            t.stop()
        ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", str(dump)], capture_output=True,
                             text=True).stdout
        total = re.search(r"([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", ann)
        if total:
            ir = int(total.group(1).replace(",", ""))
            print(f"instructions per {o.workload}: {ir / max(1, res['ok']):,.0f} ({ir:,} for {res['ok']})")
        lines = ann.splitlines()
        start = next((i for i, line in enumerate(lines) if "file:function" in line), 0)
        print("\n".join(lines[start:start + o.top + 2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
