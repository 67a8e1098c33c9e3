#!/usr/bin/env python3
"""Core compatibility suite: drive a running Strongroom server with the
official, unmodified 1claw Python SDK (PyPI `oneclaw` 0.61.14).

What the SDK does on the wire (read from its source, oneclaw/http_client.py):
every call returns ``OneclawResponse(data, error, meta)`` and never raises for
HTTP errors. ``data`` is the raw decoded JSON body (a dict), ``None`` on 204;
``error`` is ``ErrorInfo(type, message, detail)`` on any non-2xx, with the
message taken from the body's ``detail``, else ``message``, else ``error``;
``meta.status`` is the HTTP status (0 on a network error). A 2xx other than
204 whose body is not JSON makes the SDK raise: the steps below catch that and
report it as a failure.

Usage:
    compat/.venv/bin/python compat/test_core_sdk.py \
        --base-url http://127.0.0.1:8443 --email a@example.com --password 'Correct-Horse-42!'

The account must not exist yet. Prints one line per step and, last,
``N passed, M failed``; exits 0 only when nothing failed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import traceback
import uuid
from collections.abc import Callable
from typing import Any

try:
    import httpx
    from oneclaw import create_client
    from oneclaw.types import OneclawResponse
    from sdk_checks import StepFailed, as_dict, check, describe, fails, items, ok
except ImportError as exc:  # pragma: no cover - environment problem
    print(f"FAIL import oneclaw: {exc} (run: bash compat/setup.sh)")
    print("0 passed, 1 failed")
    sys.exit(1)

SECRET_PATH = "prod/db/password"
ROTATED_PATH = "prod/api/key"
NESTED_PATH = "staging/svc-a/nested_dir/deep-key_1"
ALNUM_40 = re.compile(r"[A-Za-z0-9]{40}")


class Suite:
    def __init__(self, base_url: str, email: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.email = email
        self.password = password
        self.client = create_client(base_url=self.base_url)
        self.vault_id: str | None = None
        self.vault_name = f"compat-{uuid.uuid4().hex[:8]}"
        self.results: list[tuple[str, bool]] = []

    # -- runner ---------------------------------------------------------------

    def run(self, name: str, fn: Callable[[], None], needs: tuple[str, ...] = ()) -> None:
        blocked = [n for n, passed in self.results if n in needs and not passed]
        if blocked:
            print(f"FAIL {name}: not run, needs {', '.join(blocked)}")
            self.results.append((name, False))
            return
        try:
            fn()
        except StepFailed as exc:
            print(f"FAIL {name}: {exc}")
            self.results.append((name, False))
        except json.JSONDecodeError as exc:
            # OneclawResponse parsing: any 2xx other than 204 must carry a JSON body.
            print(f"FAIL {name}: the SDK could not parse a 2xx body as JSON ({exc}); only 204 may be empty")
            self.results.append((name, False))
        except Exception as exc:  # noqa: BLE001 - the SDK raised, or a bug in this script
            print(f"FAIL {name}: {type(exc).__name__}: {exc}")
            traceback.print_exc(limit=-4, file=sys.stdout)
            self.results.append((name, False))
        else:
            print(f"PASS {name}")
            self.results.append((name, True))

    # -- auth -----------------------------------------------------------------

    def signup(self) -> None:
        data = ok(self.client.auth.signup(self.email, self.password), "auth.signup", (200, 201))
        body = as_dict(data, "auth.signup")
        if "email" in body:
            check(body["email"] == self.email, f"auth.signup echoed email {body['email']!r}")

    def login_wrong_password(self) -> None:
        other = create_client(base_url=self.base_url)
        try:
            resp = other.auth.login(self.email, self.password + "x")
            fails(resp, "auth.login with a wrong password", 401)
            check(other._http.get_token() is None, "SDK stored a token after a failed login")
        finally:
            other.close()

    def login(self) -> None:
        data = as_dict(ok(self.client.auth.login(self.email, self.password), "auth.login", 200), "auth.login")
        token = data.get("access_token")
        check(isinstance(token, str) and token != "", f"auth.login returned no access_token: {data!r}")
        check(not data.get("mfa_required"), f"auth.login asked for MFA on a fresh account: {data!r}")
        # The SDK keeps the token itself (auth.login calls set_token); the me() step
        # proves it is then sent as Authorization: Bearer.
        check(self.client._http.get_token() == token, "SDK did not keep the access_token")

    def me(self) -> None:
        data = as_dict(ok(self.client.auth.me(), "auth.me", 200), "auth.me")
        check(data.get("email") == self.email, f"auth.me email {data.get('email')!r} != {self.email!r}")

    def no_token_rejected(self) -> None:
        anon = create_client(base_url=self.base_url)
        try:
            fails(anon.vaults.list(), "vaults.list without a token", 401)
        finally:
            anon.close()

    # -- vaults ---------------------------------------------------------------

    def vault_create(self) -> None:
        data = ok(
            self.client.vaults.create(name=self.vault_name, description="strongroom compat suite"),
            "vaults.create",
            201,
        )
        body = as_dict(data, "vaults.create")
        check(isinstance(body.get("id"), str) and body["id"], f"vaults.create returned no id: {body!r}")
        check(body.get("name") == self.vault_name, f"vaults.create name {body.get('name')!r}")
        self.vault_id = body["id"]

    def vault_list(self) -> None:
        vaults = items(ok(self.client.vaults.list(), "vaults.list", 200), "vaults", "vaults.list")
        ids = [v.get("id") for v in vaults]
        check(self.vault_id in ids, f"vaults.list does not contain {self.vault_id}: {ids}")

    def vault_get(self) -> None:
        data = as_dict(ok(self.client.vaults.get(self.vault_id), "vaults.get", 200), "vaults.get")
        check(data.get("id") == self.vault_id, f"vaults.get id {data.get('id')!r}")
        check(data.get("name") == self.vault_name, f"vaults.get name {data.get('name')!r} != {self.vault_name!r}")
        check(
            data.get("description") == "strongroom compat suite",
            f"vaults.get description {data.get('description')!r}",
        )

    # -- secrets --------------------------------------------------------------

    def secret_set_twice(self) -> None:
        vid = self.vault_id
        first = as_dict(ok(self.client.secrets.set(vid, SECRET_PATH, "s3cr3t-v1"), "secrets.set v1", 201), "v1")
        check(first.get("version") == 1, f"first secrets.set version {first.get('version')!r} != 1")
        check(first.get("path") == SECRET_PATH, f"secrets.set path {first.get('path')!r}")
        check("value" not in first, "secrets.set response echoes the value")
        second = as_dict(ok(self.client.secrets.set(vid, SECRET_PATH, "s3cr3t-v2"), "secrets.set v2", 201), "v2")
        check(second.get("version") == 2, f"second secrets.set version {second.get('version')!r} != 2")
        check("value" not in second, "secrets.set response echoes the value")

    def secret_get_latest(self) -> None:
        data = as_dict(ok(self.client.secrets.get(self.vault_id, SECRET_PATH), "secrets.get", 200), "secrets.get")
        check(data.get("value") == "s3cr3t-v2", f"secrets.get value {data.get('value')!r} != 's3cr3t-v2'")
        check(data.get("version") == 2, f"secrets.get version {data.get('version')!r} != 2")
        check(data.get("path") == SECRET_PATH, f"secrets.get path {data.get('path')!r}")
        check(data.get("type") == "generic", f"secrets.get type {data.get('type')!r} != SDK default 'generic'")

    def secret_list(self) -> None:
        listed = items(
            ok(self.client.secrets.list(self.vault_id, prefix="prod/"), "secrets.list", 200),
            "secrets",
            "secrets.list",
        )
        paths = [s.get("path") for s in listed]
        check(SECRET_PATH in paths, f"secrets.list(prefix='prod/') lacks {SECRET_PATH!r}: {paths}")
        check(all(isinstance(p, str) and p.startswith("prod/") for p in paths), f"prefix not applied: {paths}")
        leaking = [s.get("path") for s in listed if "value" in s]
        check(not leaking, f"secrets.list items carry a 'value' key: {leaking}")
        entry = next(s for s in listed if s.get("path") == SECRET_PATH)
        check(entry.get("version") == 2, f"secrets.list shows version {entry.get('version')!r}, want latest 2")

    def secret_versions(self) -> None:
        versions = items(
            ok(self.client.secrets.list_versions(self.vault_id, SECRET_PATH), "secrets.list_versions", 200),
            "versions",
            "secrets.list_versions",
        )
        numbers = sorted(v.get("version") for v in versions)
        check(numbers == [1, 2], f"secrets.list_versions versions {numbers} != [1, 2]")
        check(not any("value" in v for v in versions), "secrets.list_versions items carry a 'value' key")

    def secret_get_version(self) -> None:
        data = as_dict(
            ok(self.client.secrets.get_version(self.vault_id, SECRET_PATH, 1), "secrets.get_version", 200),
            "secrets.get_version",
        )
        check(data.get("value") == "s3cr3t-v1", f"secrets.get_version(1) value {data.get('value')!r}")
        check(data.get("version") == 1, f"secrets.get_version(1) version {data.get('version')!r}")

    def secret_rotate_generate(self) -> None:
        ok(
            self.client.secrets.rotate_generate(self.vault_id, ROTATED_PATH, length=40, charset="alphanumeric"),
            "secrets.rotate_generate",
            201,
        )
        data = as_dict(ok(self.client.secrets.get(self.vault_id, ROTATED_PATH), "secrets.get", 200), "secrets.get")
        value = data.get("value")
        check(isinstance(value, str), f"generated value is not a string: {value!r}")
        check(len(value) == 40, f"generated value has {len(value)} chars, want 40")
        check(ALNUM_40.fullmatch(value) is not None, f"generated value is not [A-Za-z0-9]: {value!r}")

    def secret_nested_path(self) -> None:
        vid = self.vault_id
        ok(self.client.secrets.set(vid, NESTED_PATH, "nested-value"), "secrets.set nested", 201)
        data = as_dict(ok(self.client.secrets.get(vid, NESTED_PATH), "secrets.get nested", 200), "nested")
        check(data.get("value") == "nested-value", f"nested secrets.get value {data.get('value')!r}")
        check(data.get("path") == NESTED_PATH, f"nested secrets.get path {data.get('path')!r}")
        staging = items(ok(self.client.secrets.list(vid, prefix="staging/"), "list staging/", 200), "secrets", "list")
        check(NESTED_PATH in [s.get("path") for s in staging], "secrets.list(prefix='staging/') lacks nested path")
        prod = items(ok(self.client.secrets.list(vid, prefix="prod/"), "list prod/", 200), "secrets", "list")
        check(NESTED_PATH not in [s.get("path") for s in prod], "secrets.list(prefix='prod/') shows a staging path")

    def secret_unknown_404(self) -> None:
        fails(self.client.secrets.get(self.vault_id, "prod/never/written"), "secrets.get of an unknown path", 404)

    def secret_delete(self) -> None:
        vid = self.vault_id
        resp = self.client.secrets.delete(vid, SECRET_PATH)
        ok(resp, "secrets.delete", 204)
        check(resp.data is None, f"secrets.delete returned a body: {resp.data!r}")
        gone = self.client.secrets.get(vid, SECRET_PATH)
        fails(gone, "secrets.get after delete", 410)
        check(gone.error.message != "HTTP 410", "410 body has no detail/message for the SDK to show")
        listed = items(ok(self.client.secrets.list(vid, prefix="prod/"), "secrets.list", 200), "secrets", "list")
        check(SECRET_PATH not in [s.get("path") for s in listed], "deleted path still listed")
        # The SDK hides headers, so look at the raw answer once: RFC 7807 problem+json.
        raw = httpx.get(
            f"{self.base_url}/v1/vaults/{vid}/secrets/{SECRET_PATH}",
            headers={"Authorization": f"Bearer {self.client._http.get_token()}"},
            timeout=30,
        )
        check(raw.status_code == 410, f"raw GET after delete: HTTP {raw.status_code}")
        ctype = raw.headers.get("content-type", "")
        check(ctype.startswith("application/problem+json"), f"410 content-type {ctype!r}, want problem+json")
        problem = raw.json()
        check(problem.get("status") == 410, f"problem body status {problem.get('status')!r}")
        check("title" in problem and "type" in problem, f"problem body lacks type/title: {problem!r}")

    def vault_delete(self) -> None:
        resp = self.client.vaults.delete(self.vault_id)
        ok(resp, "vaults.delete", 204)
        check(resp.data is None, f"vaults.delete returned a body: {resp.data!r}")
        missing = self.client.vaults.get(self.vault_id)
        fails(missing, "vaults.get after delete", 404)
        check(missing.error.type == "not_found", f"SDK error type {missing.error.type!r} != 'not_found'")
        vaults = items(ok(self.client.vaults.list(), "vaults.list", 200), "vaults", "vaults.list")
        check(self.vault_id not in [v.get("id") for v in vaults], "deleted vault still listed")

    # -- plan -----------------------------------------------------------------

    def main(self) -> int:
        self.run("auth.signup creates the account", self.signup)
        self.run(
            "auth.login rejects a wrong password", self.login_wrong_password, needs=("auth.signup creates the account",)
        )
        self.run("auth.login returns a token", self.login, needs=("auth.signup creates the account",))
        login = ("auth.login returns a token",)
        self.run("auth.me returns the email", self.me, needs=login)
        self.run("requests without a token get 401", self.no_token_rejected)
        self.run("vaults.create returns an id", self.vault_create, needs=login)
        vault = ("vaults.create returns an id",)
        self.run("vaults.list contains the vault", self.vault_list, needs=vault)
        self.run("vaults.get returns the name", self.vault_get, needs=vault)
        self.run("secrets.set twice makes versions 1 and 2", self.secret_set_twice, needs=vault)
        written = vault + ("secrets.set twice makes versions 1 and 2",)
        self.run("secrets.get returns the latest version", self.secret_get_latest, needs=written)
        self.run("secrets.list by prefix has metadata only", self.secret_list, needs=written)
        self.run("secrets.list_versions shows 1 and 2", self.secret_versions, needs=written)
        self.run("secrets.get_version(1) returns the old value", self.secret_get_version, needs=written)
        self.run("secrets.rotate_generate makes a 40-char alphanumeric value", self.secret_rotate_generate, needs=vault)
        self.run("nested path with - and _ round-trips", self.secret_nested_path, needs=vault)
        self.run("secrets.get of an unknown path is 404", self.secret_unknown_404, needs=vault)
        self.run("secrets.delete then get is 410 problem+json", self.secret_delete, needs=written)
        self.run("vaults.delete then get is 404", self.vault_delete, needs=vault)
        self.client.close()

        passed = sum(1 for _, good in self.results if good)
        failed = len(self.results) - passed
        print(f"{passed} passed, {failed} failed")
        return 0 if failed == 0 else 1


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True, help="server root, e.g. http://127.0.0.1:8443")
    parser.add_argument("--email", required=True, help="email of an account that does not exist yet")
    parser.add_argument("--password", required=True, help="12+ chars with upper, lower, digit and special")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args(sys.argv[1:])
    sys.exit(Suite(args.base_url, args.email, args.password).main())
