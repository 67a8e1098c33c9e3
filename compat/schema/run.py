"""Runs schemathesis against a live Strongroom server's own /openapi.json, in
three passes (see hooks.py), and checks the results itself:

- no check failed in any pass (every response conforms to the documented
  status codes, content types, headers and schemas; no 5xx);
- every operation of the document was called at least once and answered.

Coverage is computed from schemathesis' NDJSON event stream (each recorded
request/response pair, keyed by the operation it was generated for), not
from its summary line.

Usage (crates/cli/tests/schema_conformance.rs runs it):

    python run.py --fixtures FIXTURES.json --report-dir DIR [--max-examples N]
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import subprocess
import sys
import time

import requests

HERE = os.path.dirname(os.path.abspath(__file__))

# Operations that revoke, delete, deactivate, demote or re-key something:
# run last, each call with its own token and its own doomed resource.
DESTRUCTIVE = [
    "DELETE /v1/auth/token",
    "DELETE /v1/vaults/{vault_id}",
    "PATCH /v1/agents/{agent_id}",
    "DELETE /v1/agents/{agent_id}",
    "POST /v1/agents/{agent_id}/rotate-key",
    "PATCH /v1/org/members/{user_id}",
    "DELETE /v1/org/members/{user_id}",
    "DELETE /v1/auth/api-keys/{key_id}",
    "PUT /v1/vaults/{vault_id}/policies/{policy_id}",
    "DELETE /v1/vaults/{vault_id}/policies/{policy_id}",
]

# What an agent does: run first, while its grant and token are intact.
AGENT = [
    "GET /v1/agents/me",
    "GET /v1/auth/me",
    "GET /v1/vaults",
    "GET /v1/vaults/{vault_id}",
    "GET /v1/vaults/{vault_id}/secrets",
    "GET /v1/vaults/{vault_id}/secrets/{path}",
    "PUT /v1/vaults/{vault_id}/secrets/{path}",
    "GET /v1/vaults/{vault_id}/secret-versions/{path}",
    "GET /v1/vaults/{vault_id}/secret-version/{path}/{version}",
    "POST /v1/vaults/{vault_id}/secret-rotate/{path}",
]

# negative_data_rejection and the rest of "all" except those below.
# positive_data_acceptance is left out: it expects a 2xx for every
# schema-valid request, but a schema-valid id of nothing (a random UUID) is
# rightly a 404, and a valid body may be refused by a rule the schema can't
# say (sign-up is closed; a vault name is taken).
EXCLUDED_CHECKS = ["positive_data_acceptance"]


def operations(base: str) -> list[str]:
    doc = requests.get(base + "/openapi.json", timeout=30).json()
    ops = []
    for path, item in doc["paths"].items():
        for method in ("get", "put", "post", "delete", "patch"):
            if method in item:
                ops.append(f"{method.upper()} {path}")
    return sorted(ops)


def run_pass(name: str, args, base: str, include: list[str] | None, exclude: list[str], phases: str) -> str:
    report = os.path.join(args.report_dir, f"{name}.ndjson")
    cmd = [
        os.path.join(os.path.dirname(sys.executable), "schemathesis"),
        "run",
        base + "/openapi.json",
        "--checks", "all",
        "--exclude-checks", ",".join(EXCLUDED_CHECKS),
        "--max-examples", str(args.max_examples),
        "--phases", phases,
        "--workers", str(args.workers),
        "--seed", str(args.seed),
        "--request-timeout", "30",
        "--report", "ndjson",
        "--report-ndjson-path", report,
        "--no-color",
        "--suppress-health-check", "all",
    ]
    for op in include or []:
        cmd += ["--include-name", op]
    for op in exclude:
        cmd += ["--exclude-name", op]
    env = dict(os.environ)
    env.update(
        STRONGROOM_ST_PASS=name,
        STRONGROOM_ST_FIXTURES=args.fixtures,
        SCHEMATHESIS_HOOKS="hooks",
        PYTHONPATH=HERE + os.pathsep + env.get("PYTHONPATH", ""),
    )
    start = time.monotonic()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=args.report_dir)
    took = time.monotonic() - start
    with open(os.path.join(args.report_dir, f"{name}.txt"), "w", encoding="utf-8") as f:
        f.write(out.stdout + out.stderr)
    print(f"pass {name}: exit {out.returncode} in {took:.1f}s")
    if out.returncode not in (0, 1) or not os.path.exists(report):
        print(out.stdout[-4000:], out.stderr[-4000:])
        raise SystemExit(f"schemathesis pass {name} did not run (exit {out.returncode})")
    return report


def read_events(report: str, pass_name: str, answered, failures, errors) -> None:
    with open(report, encoding="utf-8") as f:
        for line in f:
            event = json.loads(line)
            (kind, body), = event.items()
            if kind == "NonFatalError" or kind == "FatalError":
                errors.append(f"[{pass_name}] {kind}: {json.dumps(body)[:600]}")
                continue
            if kind != "ScenarioFinished":
                continue
            rec = body.get("recorder") or {}
            cases = rec.get("cases", {})
            for case_id, inter in rec.get("interactions", {}).items():
                case = cases.get(case_id, {}).get("value", {})
                op = f"{case.get('method', '?').upper()} {case.get('path', '?')}"
                resp = inter.get("response")
                if resp is not None:
                    answered[op][resp["status_code"]] += 1
            for case_id, checks in rec.get("checks", {}).items():
                case = cases.get(case_id, {}).get("value", {})
                op = f"{case.get('method', '?').upper()} {case.get('path', '?')}"
                for check in checks:
                    if check.get("status") == "failure":
                        info = (check.get("failure_info") or {}).get("failure", {})
                        failures.append(
                            f"[{pass_name}] {op} {check['name']}: {info.get('title', '')}: "
                            f"{info.get('message', '')[:500]} (case {case_id})"
                        )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--report-dir", required=True)
    ap.add_argument("--max-examples", type=int, default=20)
    # One worker: with more, threads parse Python source at once (hypothesis
    # describing its lambdas, lazy imports), which CPython 3.11 (Debian 12's)
    # can fail with "SystemError: AST constructor recursion depth mismatch".
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=20261202)
    args = ap.parse_args()
    args.fixtures = os.path.abspath(args.fixtures)
    args.report_dir = os.path.abspath(args.report_dir)
    with open(args.fixtures, encoding="utf-8") as f:
        base = json.load(f)["base_url"]

    ops = operations(base)
    missing_names = [op for op in DESTRUCTIVE + AGENT if op not in ops]
    if missing_names:
        raise SystemExit(f"run.py names operations the document lacks: {missing_names}")

    passes = [
        ("agent", AGENT, [], "examples,coverage,fuzzing"),
        ("user", None, DESTRUCTIVE, "examples,coverage,fuzzing,stateful"),
        ("destructive", DESTRUCTIVE, [], "examples,coverage,fuzzing"),
    ]
    answered: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    failures: list[str] = []
    errors: list[str] = []
    for name, include, exclude, phases in passes:
        report = run_pass(name, args, base, include, exclude, phases)
        read_events(report, name, answered, failures, errors)

    print("operation coverage (status: responses):")
    for op in ops:
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(answered.get(op, {}).items()))
        print(f"  {op}: {statuses or 'NEVER CALLED'}")
    # Calls with a method the document lacks on a path are the
    # unsupported_method check's probes (their 405 is checked by it).
    paths = {op.split(" ", 1)[1] for op in ops}
    unknown = sorted(op for op in set(answered) - set(ops) if op.split(" ", 1)[1] not in paths)
    never = [op for op in ops if not answered.get(op)]
    ok = True
    if never:
        ok = False
        print(f"NOT EXERCISED ({len(never)}): {never}")
    if unknown:
        ok = False
        print(f"responses recorded for operations the document lacks: {unknown}")
    # A run whose credentials or fixtures broke would still call everything,
    # answered 401 or 404: most operations must have succeeded at least once.
    # (Which few miss a 2xx varies from run to run with the stateful phase's
    # walks, hence a floor and not "all".)
    no_success = [op for op in ops if not any(200 <= s < 300 for s in answered.get(op, {}))]
    if no_success:
        print(f"never answered 2xx ({len(no_success)}): {no_success}")
    if len(no_success) > len(ops) // 4:
        ok = False
        print("FEWER THAN 75% OF OPERATIONS EVER SUCCEEDED")
    if errors:
        ok = False
        print(f"ERRORS ({len(errors)}):")
        for e in errors:
            print("  " + e)
    if failures:
        ok = False
        print(f"FAILURES ({len(failures)}):")
        for line in sorted(set(failures)):
            print("  " + line)
    total = sum(sum(c.values()) for c in answered.values())
    print(f"schema conformance: {len(ops)} operations, {total} responses, {len(failures)} failures, {len(errors)} errors")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
