#!/usr/bin/env python3
"""Soak: one Strongroom server held at half of its measured peak for a long time.

Run it through `bash bench/soak.sh` (which builds the binaries first). The server
runs on loopback in a temporary directory with the embedded defaults (file key
provider, SQLite), like `bench/bench.py`'s `strongroom` target. Steps:

1. set up an owner, a vault, an agent with read+write on `bench/**`, and preload
   the secrets the reads pick from and the prefix the lists walk;
2. measure the peak of the mixed workload (closed loop, `--peak-seconds`);
3. drive the server open-loop at `--load` (default 0.5) of that peak for
   `--minutes`, the same mix (reads, writes as new versions of a bounded set of
   secrets, lists, agent logins), latencies measured from each request's
   scheduled start;
4. at the end of every window (`--window` seconds), sample the server: resident
   memory, open file descriptors, threads, database and WAL size, CPU.

Checks (exit 1 when one fails): no request failed; after the warm-up windows,
resident memory and open file descriptors show no upward trend beyond noise
(see `trend_check`). Results: `<out>.json` and `<out>.md`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (the side-by-side benchmark's helpers and Strongroom target)

MIX = "read=70,write=20,list=5,login=5"
READ_KEYS = 2000
LIST_KEYS = 200
WRITE_KEYS = 5000

# "No upward trend beyond noise": over the windows after the warm-up, the growth a
# least-squares line predicts across them stays under this much...
RSS_GROWTH_LIMIT_FRACTION = 0.05  # ...of the median resident memory,
RSS_GROWTH_FLOOR_KB = 4 * 1024  # or 4 MiB, whichever is larger (allocator noise);
FD_GROWTH_LIMIT = 8  # and open descriptors rise by at most this many over the warm-up's highest.


def server_sample(t: bench.Strongroom, data: Path) -> dict[str, Any]:
    pid = t.pid
    db = data / "strongroom.db"
    wal = data / "strongroom.db-wal"
    return {
        "rss_kb": t.status_kb("VmRSS"),
        "hwm_kb": t.status_kb("VmHWM"),
        "rss_anon_kb": t.status_kb("RssAnon"),
        "rss_file_kb": t.status_kb("RssFile") + t.status_kb("RssShmem"),
        "threads": t.status_kb("Threads"),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "db_bytes": db.stat().st_size if db.exists() else 0,
        "wal_bytes": wal.stat().st_size if wal.exists() else 0,
        "data_dir_bytes": bench.disk_bytes(data),
        "cpu_s": t.cpu_seconds(),
    }


def slope_per_s(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs (0 for fewer than two points)."""
    if len(xs) < 2:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return 0.0 if den == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den


def trend_check(windows: list[dict[str, Any]], warmup: int) -> dict[str, Any]:
    """RSS and fds after the warm-up: flat, or the run fails.

    Caches that fill up (SQLite's page cache per connection, the allocator's
    arenas) make resident memory rise and then level off; a leak keeps rising.
    So the trend is the least-squares growth across the second half of the
    windows after the warm-up (at least three), where a filling cache has
    levelled off and a leak has not; the growth across all of them is reported
    beside it."""
    steady = windows[warmup:]
    late = steady[len(steady) // 2:] if len(steady) >= 6 else steady[-3:]

    def growth(ws: list[dict[str, Any]], key: str) -> float:
        xs = [w["end_s"] for w in ws]
        ys = [w["server"][key] for w in ws]
        return slope_per_s(xs, ys) * (xs[-1] - xs[0]) if len(xs) > 1 else 0.0

    rss = [w["server"]["rss_kb"] for w in steady]
    fds = [w["server"]["fds"] for w in steady]
    rss_limit = max(RSS_GROWTH_LIMIT_FRACTION * statistics.median(rss), RSS_GROWTH_FLOOR_KB)
    late_rss = growth(late, "rss_kb")
    late_fds = growth(late, "fds")
    warm_fds = max((w["server"]["fds"] for w in windows[:warmup]), default=fds[0])
    return {
        "steady_windows": len(steady),
        "trend_windows": len(late),
        "rss_kb_first": rss[0],
        "rss_kb_last": rss[-1],
        "rss_kb_max": max(rss),
        "rss_growth_steady_kb": round(growth(steady, "rss_kb")),
        "rss_trend_kb": round(late_rss),
        "rss_trend_limit_kb": round(rss_limit),
        "rss_flat": late_rss <= rss_limit,
        "fds_warmup_max": warm_fds,
        "fds_max": max(fds),
        "fds_trend": round(late_fds, 2),
        "fds_flat": max(fds) <= warm_fds + FD_GROWTH_LIMIT and late_fds <= FD_GROWTH_LIMIT,
    }


def markdown(doc: dict[str, Any]) -> str:
    o, c = doc["options"], doc["checks"]
    lines = [
        f"# Soak: {o['minutes']} minutes at {o['load']:.0%} of peak — {doc['started']}",
        "",
        f"Machine: {doc['machine']['cores']} cores ({doc['machine']['cpu']}), {doc['machine']['memory_gib']} GiB, git {doc['machine']['git']}; binary `{doc['version']}` "
        f"({o['profile']} build), embedded defaults (file key provider, SQLite), rate limits off.",
        f"Mix: `{o['mix']}` (writes are new versions of {WRITE_KEYS} secrets; lists walk {LIST_KEYS} entries; "
        f"reads pick among {READ_KEYS}); {o['concurrency']} connections, open loop, latency from each request's "
        "scheduled start.",
        f"Peak of the mix (closed loop, {o['peak_seconds']:.0f} s): **{doc['peak']['rps']:.0f} req/s** "
        f"(p50 {doc['peak']['p50_ms']:.2f} ms, p99 {doc['peak']['p99_ms']:.2f} ms); "
        f"soak rate **{doc['rate']:.0f} req/s**.",
        "",
        "| window end | req/s | p50 ms | p99 ms | max ms | errors | RSS MiB (anon + file) | fds | threads | DB MiB | "
        "WAL MiB | server CPU % |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for w in doc["windows"]:
        s = w["server"]
        lines.append(
            f"| {w['end_s']:.0f} s{' (warm-up)' if w['index'] < o['warmup_windows'] else ''} | {w['rps']:.0f} | "
            f"{w['p50_ms']:.2f} | {w['p99_ms']:.2f} | {w['max_ms']:.1f} | {w['errors']} | "
            f"{s['rss_kb'] / 1024:.1f} ({s['rss_anon_kb'] / 1024:.1f} + {s['rss_file_kb'] / 1024:.1f}) | {s['fds']} | {s['threads']} | {s['db_bytes'] / 2**20:.1f} | "
            f"{s['wal_bytes'] / 2**20:.1f} | {w['server_cpu_pct']:.0f} |")
    total = doc["totals"]
    lines += [
        "",
        f"Requests: {total['requests']} ({total['ok']} ok, **{total['errors']} errors**); "
        f"whole-run p50 {total['p50_ms']:.2f} ms, p99 {total['p99_ms']:.2f} ms.",
        "",
        "| check | measured | limit | verdict |",
        "|---|---|---|---|",
        f"| errors | {total['errors']} | 0 | {'pass' if total['errors'] == 0 else 'FAIL'} |",
        f"| RSS trend (least-squares growth over the last {c['trend_windows']} of {c['steady_windows']} windows "
        f"after warm-up) | {c['rss_trend_kb'] / 1024:+.1f} MiB (all {c['steady_windows']}: "
        f"{c['rss_growth_steady_kb'] / 1024:+.1f} MiB, {c['rss_kb_first'] / 1024:.1f} → "
        f"{c['rss_kb_last'] / 1024:.1f} MiB, max {c['rss_kb_max'] / 1024:.1f}) | "
        f"≤ {c['rss_trend_limit_kb'] / 1024:.1f} MiB | "
        f"{'pass' if c['rss_flat'] else 'FAIL'} |",
        f"| open fds after warm-up | max {c['fds_max']}, trend {c['fds_trend']:+} | ≤ warm-up max "
        f"{c['fds_warmup_max']} + {FD_GROWTH_LIMIT} | {'pass' if c['fds_flat'] else 'FAIL'} |",
        "",
        f"Verdict: **{'pass' if doc['passed'] else 'FAIL'}**.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin-dir", required=True, help="directory with strongroom and strongroom-loadgen")
    p.add_argument("--profile", default="release", help="the build profile, for the report")
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--window", type=float, default=60.0, help="seconds per reported window")
    p.add_argument("--warmup-windows", type=int, default=3, help="windows left out of the trend checks")
    p.add_argument("--load", type=float, default=0.5, help="fraction of the measured peak to hold")
    p.add_argument("--peak-seconds", type=float, default=15.0)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--mix", default=MIX)
    p.add_argument("--out", default=str(bench.RESULTS / "soak-latest"), help="results path, without extension")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    o = p.parse_args()
    if not (0 < o.load <= 1) or o.minutes <= 0 or o.window <= 0 or o.warmup_windows < 0:
        p.error("--load in (0, 1], --minutes and --window > 0, --warmup-windows >= 0")
    n_windows = int(o.minutes * 60 // o.window)
    if n_windows < o.warmup_windows + 6:
        p.error(f"{n_windows} windows leave fewer than 6 after {o.warmup_windows} warm-up windows")

    bins = Path(o.bin_dir)
    loadgen = str(bins / "strongroom-loadgen")
    workdir = Path(tempfile.mkdtemp(prefix="strongroom-soak-"))
    t = bench.Strongroom("soak")

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())

    def loadgen_argv(*, rate: float, duration: float, warmup: float, window: float) -> list[str]:
        return [loadgen, "run", "--api", "strongroom", "--url", t.url, "--workload", "mix", "--mix", o.mix,
                "--concurrency", str(o.concurrency), "--threads", "2", "--duration", str(duration),
                "--warmup", str(warmup), "--rate", str(rate), "--window", str(window),
                "--token", t.token, "--vault", t.vault, "--api-key", t.api_key,
                "--keys", str(READ_KEYS), "--read-prefix", bench.READ_PREFIX, "--list-prefix", bench.LIST_PREFIX,
                "--write-prefix", "bench/soak/k", "--write-keys", str(WRITE_KEYS)]

    try:
        t.start(workdir, bins)
        t.setup()
        data = t.dir / "data"
        fill = [loadgen, "run", "--api", "strongroom", "--url", t.url, "--workload", "fill", "--concurrency", "16",
                "--token", t.token, "--vault", t.vault]
        for prefix, count in ((bench.READ_PREFIX, READ_KEYS), (bench.LIST_PREFIX + "k", LIST_KEYS)):
            r = json.loads(subprocess.run(fill + ["--read-prefix", prefix, "--count", str(count)],
                                          capture_output=True, text=True, check=True).stdout.splitlines()[-1])
            if r["errors"]:
                raise RuntimeError(f"preload of {prefix}: {r['first_error']}")
        bench.log(f"soak: preloaded {READ_KEYS} + {LIST_KEYS} secrets; measuring the mix's peak")
        peak = json.loads(subprocess.run(loadgen_argv(rate=0, duration=o.peak_seconds, warmup=3, window=0),
                                         capture_output=True, text=True, check=True).stdout.splitlines()[-1])
        if peak["errors"]:
            raise RuntimeError(f"errors while measuring the peak: {peak['first_error']}")
        rate = max(1.0, peak["rps"] * o.load)
        duration = n_windows * o.window
        bench.log(f"soak: peak {peak['rps']:.0f} req/s; holding {rate:.0f} req/s for {duration:.0f} s "
                  f"({n_windows} windows of {o.window:.0f} s)")

        samples: list[dict[str, Any]] = []
        out_file = workdir / "soak.json"
        cpu0 = t.cpu_seconds()
        t0 = time.monotonic()
        proc = subprocess.Popen(loadgen_argv(rate=rate, duration=duration, warmup=0, window=o.window)
                                + ["--json", str(out_file)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for i in range(n_windows):
            # Just before the window's end: the last one must see the load still on.
            time.sleep(max(0.0, t0 + (i + 1) * o.window - 0.5 - time.monotonic()))
            if t.proc.poll() is not None:
                raise RuntimeError(f"the server exited ({t.proc.returncode}) during the soak")
            s = server_sample(t, data)
            s["cpu_pct"] = 100 * (s["cpu_s"] - cpu0) / o.window
            cpu0 = s["cpu_s"]
            samples.append(s)
            bench.log(f"  window {i + 1}/{n_windows}: rss {s['rss_kb'] / 1024:.1f} MiB, fds {s['fds']}, "
                      f"db {s['db_bytes'] / 2**20:.1f} MiB, wal {s['wal_bytes'] / 2**20:.1f} MiB, "
                      f"cpu {s['cpu_pct']:.0f}%")
        _, err = proc.communicate(timeout=o.window + 60)
        if proc.returncode != 0:
            raise RuntimeError(f"loadgen failed ({proc.returncode}): {err.decode()[-2000:]}")
        result = json.loads(out_file.read_text())
        lw = result["windows"]
        windows = []
        for i, s in enumerate(samples):
            w = lw[i] if i < len(lw) else {"ok": 0, "errors": 0, "rps": 0, "p50_ms": 0, "p99_ms": 0, "max_ms": 0,
                                           "statuses": {}, "first_error": None}
            windows.append({**w, "index": i, "end_s": (i + 1) * o.window, "server": s,
                            "server_cpu_pct": s["cpu_pct"]})
        checks = trend_check(windows, o.warmup_windows)
        # The run's totals count every request, including any past the last sampled window.
        totals = {k: result[k] for k in ("requests", "ok", "errors", "p50_ms", "p99_ms", "statuses", "first_error")}
        passed = totals["errors"] == 0 and checks["rss_flat"] and checks["fds_flat"]
        doc = {
            "started": started, "version": t.version, "machine": bench.machine_info(),
            "options": {**vars(o), "mix": o.mix}, "peak": peak, "rate": rate,
            "windows": windows, "totals": totals, "checks": checks, "passed": passed,
        }
    finally:
        t.stop()
        if o.keep:
            bench.log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    out = Path(o.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")
    md = markdown(doc)
    out.with_suffix(".md").write_text(md)
    print(md)
    if not passed:
        bench.log(f"soak FAILED: errors {totals['errors']} (first: {totals['first_error']}), checks {checks}")
        return 1
    bench.log(f"soak passed; wrote {out}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
