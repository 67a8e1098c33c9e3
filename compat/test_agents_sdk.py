#!/usr/bin/env python3
"""Agents compatibility suite: drive a running Strongroom server's agents,
policies and personal API keys with the official, unmodified 1claw Python SDK
(PyPI `oneclaw` 0.61.14).

What the SDK does on the wire (read from its source, oneclaw/http_client.py and
oneclaw/client.py), beyond what test_core_sdk.py already relies on:

- ``create_client(api_key="ocv_…")`` (with or without ``agent_id``) is agent
  mode: before its first authenticated call, and again within 60 s of expiry,
  it POSTs ``/v1/auth/agent-token`` with ``{"api_key"[, "agent_id"]}``, keeps
  ``access_token``, schedules the refresh from ``expires_in`` (default 3600) and
  takes ``agent_id`` from the answer when it was not given. A non-2xx answer
  makes the call RAISE ``OneclawError("Agent token refresh failed: HTTP n")``
  with ``.status == n``; it is not returned as ``OneclawResponse.error``.
- ``create_client(api_key="1ck_…")`` POSTs ``/v1/auth/api-key-token``
  ``{"api_key"}`` once, in the constructor, and swallows every failure: the
  client then simply has no token and its calls go out without Authorization.
- ``auth.agent_token`` / ``auth.api_key_token`` / ``auth.revoke_token`` are
  ordinary calls returning ``OneclawResponse`` (no raise).

Usage:
    compat/.venv/bin/python compat/test_agents_sdk.py \
        --base-url http://127.0.0.1:8443 --email a@example.com --password 'Correct-Horse-42!'

The account must not exist yet (its signup creates the org). Prints one line per
step and, last, ``N passed, M failed``; exits 0 only when nothing failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
import uuid
from collections.abc import Callable, Iterator
from typing import Any

try:
    from oneclaw import OneclawClient, OneclawError, create_client
    from oneclaw.types import OneclawResponse
    from sdk_checks import StepFailed, as_dict, check, describe, fails, items, ok
except ImportError as exc:  # pragma: no cover - environment problem
    print(f"FAIL import oneclaw: {exc} (run: bash compat/setup.sh)")
    print("0 passed, 1 failed")
    sys.exit(1)

DB_PATH = "prod/db/password"
STRIPE_PATH = "prod/api/stripe"
STAGING_PATH = "staging/db/password"
DEEP_PATH = "prod/deep/a/b/c"
NEW_PROD_PATH = "prod/new/password"
PATTERN_A = "prod/*/password"
PATTERN_B = "prod/deep/**"
HUMAN_VALUES = {
    DB_PATH: "db-pass-v1",
    STRIPE_PATH: "sk_live_stripe",
    STAGING_PATH: "staging-db-pass",
    DEEP_PATH: "deep-value",
}
AGENT_WRITTEN_VALUE = "db-pass-v2-by-agent"
# JSON keys that would carry key material; none may appear in agent or key views.
SECRET_KEYS = {"api_key", "key_hash", "api_key_hash", "hash", "password_hash", "secret_hash"}

# Step names (the `needs` of later steps refer to them).
S_SIGNUP = "auth.signup creates the account and its org"
S_LOGIN = "auth.login returns a token"
S_SETUP = "vaults.create and four secrets.set as the human"
S_AGENT = "agents.create returns the agent and a one-time ocv_ key"
S_AGENT_VIEW = "agents.get and agents.list show the agent without key material"
S_POLICIES = "policies.create grants prod/*/password and prod/deep/** read"
S_POLICY_LIST = "policies.list shows both grants with their fields"
S_EXCHANGE = "auth.agent_token exchanges the key alone (access_token, expires_in, agent_id)"
S_EXCHANGE_BAD = "auth.agent_token refuses an unknown ocv_ key with 401"
S_AGENT_READ = "key-only agent client reads prod/db/password and prod/deep/a/b/c"
S_AGENT_403 = "agent is refused prod/api/stripe and staging/db/password (403)"
S_AGENT_NOWRITE = "agent without write permission cannot secrets.set (403)"
S_AGENT_LIST = "agent secrets.list shows exactly the readable paths"
S_AGENT_ME = "agents.me returns the agent's own id"
S_AGENT_ID = "agent client with an explicit agent_id works; a wrong agent_id is 401"
S_POLICY_UPDATE = "policies.update adds write: agent writes prod/db/password, still not staging"
S_POLICY_DELETE = "policies.delete of prod/deep/** revokes that read on the next request"
S_ROTATE = "agents.rotate_key returns a new ocv_ key"
S_ROTATE_OLD = "after rotate_key the old key gets no token (401)"
S_ROTATE_NEW = "after rotate_key the new key reads prod/db/password"
S_DEACTIVATE = "agents.update(is_active=False) stops token exchange (401)"
S_AGENT_DELETE = "agents.delete of a second agent stops its key (204, then 401)"
S_KEY_CREATE = "api_keys.create returns a one-time 1ck_ key"
S_KEY_USE = "a client built from the 1ck_ key can vaults.list"
S_KEY_DELETE = "api_keys.delete revokes the 1ck_ key"
S_REVOKE = "auth.revoke_token: the next call with that token is 401"


def describe_exc(exc: OneclawError) -> str:
    return f"{type(exc).__name__}(status={exc.status}, type={exc.error_type!r}): {exc}"


def walk_keys(data: Any) -> Iterator[str]:
    """Every JSON object key with a non-null value, at any depth."""
    if isinstance(data, dict):
        for key, value in data.items():
            if value is not None:
                yield key
            yield from walk_keys(value)
    elif isinstance(data, list):
        for value in data:
            yield from walk_keys(value)


def no_key_material(data: Any, plaintext: str, what: str) -> None:
    """Neither the plaintext key, nor a hash of it, nor a key-ish field may appear."""
    text = json.dumps(data)
    check(plaintext not in text, f"{what} contains the plaintext key")
    check("$argon2" not in text, f"{what} contains an Argon2 hash")
    leaked = sorted({k for k in walk_keys(data) if k in SECRET_KEYS or k.endswith("_hash")})
    check(not leaked, f"{what} carries key fields {leaked}: {data!r}")


def agent_create_fields(data: Any, what: str, name: str) -> tuple[str, str]:
    """Return (agent id, ocv_ key) from an agents.create answer ``{agent, api_key}``."""
    body = as_dict(data, what)
    agent = as_dict(body.get("agent"), f"{what} 'agent'")
    agent_id = agent.get("id")
    check(isinstance(agent_id, str) and agent_id, f"{what}: no agent.id in {body!r}")
    check(agent.get("name") == name, f"{what}: agent.name {agent.get('name')!r} != {name!r}")
    key = body.get("api_key")
    check(isinstance(key, str) and key.startswith("ocv_"), f"{what}: api_key {key!r} does not start with 'ocv_'")
    check(len(key) > len("ocv_") + 20, f"{what}: api_key {key!r} is implausibly short")
    return agent_id, key


class Suite:
    def __init__(self, base_url: str, email: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.email = email
        self.password = password
        self.human = create_client(base_url=self.base_url)
        self.vault_id: str | None = None
        self.vault_name = f"compat-agents-{uuid.uuid4().hex[:8]}"
        self.agent_id: str | None = None
        self.agent_key: str | None = None
        self.created_agent: dict[str, Any] = {}
        self.old_agent_key: str | None = None
        self.agent: OneclawClient | None = None  # key-only client on the first key
        self.policy_a: str | None = None
        self.policy_b: str | None = None
        self.user_key: str | None = None
        self.user_key_id: str | None = None
        self.db_value = HUMAN_VALUES[DB_PATH]
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
        except OneclawError as exc:
            # Agent-key clients raise when /v1/auth/agent-token is not 2xx.
            print(f"FAIL {name}: the SDK raised {describe_exc(exc)}")
            self.results.append((name, False))
        except json.JSONDecodeError as exc:
            print(f"FAIL {name}: the SDK could not parse a 2xx body as JSON ({exc}); only 204 may be empty")
            self.results.append((name, False))
        except Exception as exc:  # noqa: BLE001 - the SDK raised, or a bug in this script
            print(f"FAIL {name}: {type(exc).__name__}: {exc}")
            traceback.print_exc(limit=-4, file=sys.stdout)
            self.results.append((name, False))
        else:
            print(f"PASS {name}")
            self.results.append((name, True))

    # -- helpers --------------------------------------------------------------

    def agent_client(self, key: str, agent_id: str | None = None) -> OneclawClient:
        return create_client(base_url=self.base_url, api_key=key, agent_id=agent_id)

    def read_value(self, client: OneclawClient, path: str, what: str) -> Any:
        data = as_dict(ok(client.secrets.get(self.vault_id, path), what, 200), what)
        check(data.get("path") == path, f"{what}: path {data.get('path')!r} != {path!r}")
        return data.get("value")

    def exchange_refused(self, key: str, what: str, agent_id: str | None = None) -> None:
        """A fresh agent client with this key must get no token: the SDK raises with status 401."""
        client = self.agent_client(key, agent_id)
        try:
            try:
                resp = client.secrets.get(self.vault_id, DB_PATH)
            except OneclawError as exc:
                check(exc.status == 401, f"{what}: token exchange refused with {describe_exc(exc)}, want HTTP 401")
                return
            raise StepFailed(f"{what}: the key was still exchanged for a token; secrets.get answered {describe(resp)}")
        finally:
            client.close()

    def direct_exchange_refused(self, key: str, what: str, agent_id: str | None = None) -> None:
        anon = create_client(base_url=self.base_url)
        try:
            fails(anon.auth.agent_token(key, agent_id), what, 401)
            check(anon._http.get_token() is None, f"{what}: SDK stored a token after a refused exchange")
        finally:
            anon.close()

    def policies_by_id(self) -> dict[str, dict[str, Any]]:
        listed = items(ok(self.human.policies.list(self.vault_id), "policies.list", 200), "policies", "policies.list")
        return {p.get("id"): p for p in listed}

    # -- 1. human -------------------------------------------------------------

    def signup(self) -> None:
        data = ok(self.human.auth.signup(self.email, self.password), "auth.signup", (200, 201))
        body = as_dict(data, "auth.signup")
        if "email" in body:
            check(body["email"] == self.email, f"auth.signup echoed email {body['email']!r}")

    def login(self) -> None:
        data = as_dict(ok(self.human.auth.login(self.email, self.password), "auth.login", 200), "auth.login")
        token = data.get("access_token")
        check(isinstance(token, str) and token != "", f"auth.login returned no access_token: {data!r}")
        check(self.human._http.get_token() == token, "SDK did not keep the access_token")

    def human_setup(self) -> None:
        data = ok(self.human.vaults.create(name=self.vault_name, description="agents compat"), "vaults.create", 201)
        body = as_dict(data, "vaults.create")
        check(isinstance(body.get("id"), str) and body["id"], f"vaults.create returned no id: {body!r}")
        self.vault_id = body["id"]
        for path, value in HUMAN_VALUES.items():
            created = as_dict(ok(self.human.secrets.set(self.vault_id, path, value), f"secrets.set {path}", 201), path)
            check(created.get("path") == path, f"secrets.set {path}: path {created.get('path')!r}")
            check(created.get("version") == 1, f"secrets.set {path}: version {created.get('version')!r} != 1")

    # -- 2. agent registration ------------------------------------------------

    def agent_create(self) -> None:
        resp = self.human.agents.create(name="ci-bot", description="strongroom compat agent")
        data = ok(resp, "agents.create", 201)
        self.agent_id, self.agent_key = agent_create_fields(data, "agents.create", "ci-bot")
        self.created_agent = data["agent"]

    def agent_view(self) -> None:
        no_key_material(self.created_agent, self.agent_key, "agents.create 'agent' object")
        got = as_dict(ok(self.human.agents.get(self.agent_id), "agents.get", 200), "agents.get")
        check(got.get("id") == self.agent_id, f"agents.get id {got.get('id')!r} != {self.agent_id!r}")
        check(got.get("name") == "ci-bot", f"agents.get name {got.get('name')!r}")
        check(got.get("is_active") is True, f"agents.get is_active {got.get('is_active')!r}, want true")
        no_key_material(got, self.agent_key, "agents.get")
        agents = items(ok(self.human.agents.list(), "agents.list", 200), "agents", "agents.list")
        ids = [a.get("id") for a in agents]
        check(self.agent_id in ids, f"agents.list does not contain {self.agent_id}: {ids}")
        no_key_material(agents, self.agent_key, "agents.list")

    # -- 3. policies ----------------------------------------------------------

    def policy_create(self) -> None:
        made = {}
        for label, pattern in (("A", PATTERN_A), ("B", PATTERN_B)):
            resp = self.human.policies.create(
                self.vault_id,
                principal_type="agent",
                principal_id=self.agent_id,
                secret_path_pattern=pattern,
                permissions=["read"],
            )
            body = as_dict(ok(resp, f"policies.create {pattern}", 201), f"policies.create {pattern}")
            check(isinstance(body.get("id"), str) and body["id"], f"policies.create {pattern}: no id in {body!r}")
            check(body.get("secret_path_pattern") == pattern, f"policies.create {pattern}: echoed {body!r}")
            check(body.get("permissions") == ["read"], f"policies.create {pattern}: permissions {body.get('permissions')!r}")
            made[label] = body["id"]
        self.policy_a, self.policy_b = made["A"], made["B"]

    def policy_list(self) -> None:
        policies = self.policies_by_id()
        for pid, pattern in ((self.policy_a, PATTERN_A), (self.policy_b, PATTERN_B)):
            check(pid in policies, f"policies.list lacks policy {pid} ({pattern}): {list(policies)}")
            pol = policies[pid]
            want = {
                "secret_path_pattern": pattern,
                "principal_type": "agent",
                "principal_id": self.agent_id,
                "permissions": ["read"],
            }
            wrong = {k: pol.get(k) for k, v in want.items() if pol.get(k) != v}
            check(not wrong, f"policies.list entry {pid}: fields {wrong} differ from {want}")
            if "vault_id" in pol:
                check(pol["vault_id"] == self.vault_id, f"policies.list entry {pid}: vault_id {pol['vault_id']!r}")

    # -- 4. the agent at work -------------------------------------------------

    def agent_exchange(self) -> None:
        anon = create_client(base_url=self.base_url)
        try:
            data = as_dict(ok(anon.auth.agent_token(self.agent_key), "auth.agent_token", 200), "auth.agent_token")
            token = data.get("access_token")
            check(isinstance(token, str) and token, f"auth.agent_token: no access_token in {data!r}")
            check(anon._http.get_token() == token, "SDK did not keep the agent access_token")
            if "token_type" in data:
                check(str(data["token_type"]).lower() == "bearer", f"token_type {data['token_type']!r} != 'Bearer'")
            exp = data.get("expires_in")
            check(
                isinstance(exp, int) and not isinstance(exp, bool) and exp > 60,
                f"expires_in {exp!r}: the SDK refreshes 60 s before it, so it must be an integer > 60",
            )
            check(
                data.get("agent_id") == self.agent_id,
                f"agent_id {data.get('agent_id')!r} != {self.agent_id!r} (the SDK's key-only auto-discovery reads it)",
            )
        finally:
            anon.close()

    def agent_exchange_bad(self) -> None:
        self.direct_exchange_refused("ocv_" + uuid.uuid4().hex + uuid.uuid4().hex, "auth.agent_token(unknown key)")
        # Right prefix shape, wrong tail: the prefix lookup must not be enough.
        forged = self.agent_key[:-4] + ("AAAA" if not self.agent_key.endswith("AAAA") else "BBBB")
        self.direct_exchange_refused(forged, "auth.agent_token(key with a changed tail)")

    def agent_read(self) -> None:
        self.agent = self.agent_client(self.agent_key)  # no agent_id: key-only exchange
        value = self.read_value(self.agent, DB_PATH, f"agent secrets.get {DB_PATH}")
        check(value == self.db_value, f"agent read {DB_PATH} = {value!r}, want {self.db_value!r}")
        value = self.read_value(self.agent, DEEP_PATH, f"agent secrets.get {DEEP_PATH}")
        check(value == HUMAN_VALUES[DEEP_PATH], f"agent read {DEEP_PATH} = {value!r}")

    def agent_refused(self) -> None:
        for path in (STRIPE_PATH, STAGING_PATH):
            fails(self.agent.secrets.get(self.vault_id, path), f"agent secrets.get {path}", 403)

    def agent_no_write(self) -> None:
        fails(self.agent.secrets.set(self.vault_id, DB_PATH, "agent-overwrite"), f"agent secrets.set {DB_PATH}", 403)
        fails(self.agent.secrets.set(self.vault_id, NEW_PROD_PATH, "x"), f"agent secrets.set {NEW_PROD_PATH}", 403)
        data = as_dict(ok(self.human.secrets.get(self.vault_id, DB_PATH), "human secrets.get", 200), "human get")
        check(data.get("value") == self.db_value, f"refused write changed the value: {data.get('value')!r}")
        check(data.get("version") == 1, f"refused write made a new version: {data.get('version')!r}")
        fails(self.human.secrets.get(self.vault_id, NEW_PROD_PATH), f"human secrets.get {NEW_PROD_PATH}", 404)

    def agent_list(self) -> None:
        listed = items(ok(self.agent.secrets.list(self.vault_id), "agent secrets.list", 200), "secrets", "list")
        paths = sorted(s.get("path") for s in listed)
        check(paths == sorted([DB_PATH, DEEP_PATH]), f"agent secrets.list paths {paths}, want {sorted([DB_PATH, DEEP_PATH])}")
        check(not any("value" in s for s in listed), "agent secrets.list items carry a 'value' key")

    def agent_me(self) -> None:
        data = as_dict(ok(self.agent.agents.me(), "agents.me", 200), "agents.me")
        check(data.get("id") == self.agent_id, f"agents.me id {data.get('id')!r} != {self.agent_id!r}")
        no_key_material(data, self.agent_key, "agents.me")
        check(
            self.agent.resolved_agent_id == self.agent_id,
            f"client.resolved_agent_id {self.agent.resolved_agent_id!r} != {self.agent_id!r}",
        )

    # -- 5. explicit agent_id -------------------------------------------------

    def agent_with_id(self) -> None:
        client = self.agent_client(self.agent_key, self.agent_id)
        try:
            value = self.read_value(client, DB_PATH, "agent (explicit agent_id) secrets.get")
            check(value == self.db_value, f"agent (explicit agent_id) read {value!r}, want {self.db_value!r}")
        finally:
            client.close()
        self.exchange_refused(self.agent_key, "right key with a wrong agent_id", agent_id=str(uuid.uuid4()))

    # -- 6. policy update -----------------------------------------------------

    def policy_update(self) -> None:
        resp = self.human.policies.update(self.vault_id, self.policy_a, permissions=["read", "write"])
        body = as_dict(ok(resp, "policies.update", 200), "policies.update")
        check(sorted(body.get("permissions") or []) == ["read", "write"], f"policies.update answered {body!r}")
        check(body.get("secret_path_pattern") == PATTERN_A, f"policies.update changed the pattern: {body!r}")
        listed = self.policies_by_id()
        check(
            sorted(listed.get(self.policy_a, {}).get("permissions") or []) == ["read", "write"],
            f"policies.list after update: {listed.get(self.policy_a)!r}",
        )
        # Same agent client and token as before: permissions are checked per request.
        written = ok(self.agent.secrets.set(self.vault_id, DB_PATH, AGENT_WRITTEN_VALUE), "agent secrets.set", 201)
        written = as_dict(written, "agent secrets.set")
        check(written.get("version") == 2, f"agent secrets.set version {written.get('version')!r} != 2")
        check("value" not in written, "secrets.set response echoes the value")
        self.db_value = AGENT_WRITTEN_VALUE
        data = as_dict(ok(self.human.secrets.get(self.vault_id, DB_PATH), "human secrets.get", 200), "human get")
        check(data.get("value") == AGENT_WRITTEN_VALUE, f"human reads {data.get('value')!r} after the agent's write")
        fails(self.agent.secrets.set(self.vault_id, STAGING_PATH, "x"), f"agent secrets.set {STAGING_PATH}", 403)
        fails(self.agent.secrets.set(self.vault_id, STRIPE_PATH, "x"), f"agent secrets.set {STRIPE_PATH}", 403)

    # -- 7. policy delete -----------------------------------------------------

    def policy_delete(self) -> None:
        resp = self.human.policies.delete(self.vault_id, self.policy_b)
        ok(resp, "policies.delete", 204)
        check(resp.data is None, f"policies.delete returned a body: {resp.data!r}")
        check(self.policy_b not in self.policies_by_id(), "policies.list still shows the deleted policy")
        # The agent's token predates the delete: the grant must be gone on the next request anyway.
        fails(self.agent.secrets.get(self.vault_id, DEEP_PATH), f"same agent client secrets.get {DEEP_PATH}", 403)
        value = self.read_value(self.agent, DB_PATH, f"same agent client secrets.get {DB_PATH}")
        check(value == self.db_value, f"agent read {DB_PATH} = {value!r}, want {self.db_value!r}")
        listed = items(ok(self.agent.secrets.list(self.vault_id), "agent secrets.list", 200), "secrets", "list")
        paths = sorted(s.get("path") for s in listed)
        check(paths == [DB_PATH], f"agent secrets.list after delete: {paths}, want {[DB_PATH]}")
        fresh = self.agent_client(self.agent_key)
        try:
            fails(fresh.secrets.get(self.vault_id, DEEP_PATH), f"fresh agent client secrets.get {DEEP_PATH}", 403)
        finally:
            fresh.close()

    # -- 8. key rotation ------------------------------------------------------

    def rotate(self) -> None:
        data = as_dict(ok(self.human.agents.rotate_key(self.agent_id), "agents.rotate_key", (200, 201)), "rotate_key")
        new_key = data.get("api_key")
        check(isinstance(new_key, str) and new_key.startswith("ocv_"), f"rotate_key api_key {new_key!r} lacks 'ocv_'")
        check(new_key != self.agent_key, "rotate_key returned the same key")
        if isinstance(data.get("agent"), dict):
            no_key_material(data["agent"], new_key, "rotate_key 'agent' object")
        self.old_agent_key, self.agent_key = self.agent_key, new_key
        # The first client may re-exchange its (now old) key at any time: never use it again.
        if self.agent is not None:
            self.agent.close()
            self.agent = None

    def rotate_old(self) -> None:
        self.exchange_refused(self.old_agent_key, "fresh client with the old key")
        self.exchange_refused(self.old_agent_key, "fresh client with the old key and agent_id", self.agent_id)
        self.direct_exchange_refused(self.old_agent_key, "auth.agent_token(old key)")

    def rotate_new(self) -> None:
        for agent_id in (None, self.agent_id):
            client = self.agent_client(self.agent_key, agent_id)
            what = f"fresh client with the new key{' and agent_id' if agent_id else ''}"
            try:
                value = self.read_value(client, DB_PATH, f"{what}: secrets.get")
                check(value == self.db_value, f"{what} read {value!r}, want {self.db_value!r}")
            finally:
                client.close()

    # -- 9. deactivation and deletion -----------------------------------------

    def deactivate(self) -> None:
        data = ok(self.human.agents.update(self.agent_id, is_active=False), "agents.update(is_active=False)", 200)
        body = as_dict(data, "agents.update")
        if "is_active" in body:
            check(body["is_active"] is False, f"agents.update answered is_active {body['is_active']!r}")
        no_key_material(body, self.agent_key, "agents.update")
        got = as_dict(ok(self.human.agents.get(self.agent_id), "agents.get", 200), "agents.get")
        check(got.get("is_active") is False, f"agents.get after deactivation: is_active {got.get('is_active')!r}")
        self.exchange_refused(self.agent_key, "fresh client with the current key of a deactivated agent")
        self.exchange_refused(self.agent_key, "same, with agent_id", self.agent_id)
        self.direct_exchange_refused(self.agent_key, "auth.agent_token for a deactivated agent")

    def agent_delete(self) -> None:
        data = ok(self.human.agents.create(name="deploy-bot"), "agents.create deploy-bot", 201)
        other_id, other_key = agent_create_fields(data, "agents.create deploy-bot", "deploy-bot")
        client = self.agent_client(other_key)
        try:
            me = as_dict(ok(client.agents.me(), "deploy-bot agents.me", 200), "agents.me")
            check(me.get("id") == other_id, f"deploy-bot agents.me id {me.get('id')!r} != {other_id!r}")
        finally:
            client.close()
        resp = self.human.agents.delete(other_id)
        ok(resp, "agents.delete", 204)
        check(resp.data is None, f"agents.delete returned a body: {resp.data!r}")
        self.exchange_refused(other_key, "fresh client with a deleted agent's key")
        self.exchange_refused(other_key, "same, with agent_id", other_id)
        # Deleting may deactivate (keeps the audit trail) or remove: either is fine, active is not.
        after = self.human.agents.get(other_id)
        if after.error is not None:
            check(after.meta.status == 404, f"agents.get of a deleted agent: {describe(after)}, want 404 or inactive")
        else:
            check(as_dict(after.data, "agents.get").get("is_active") is False, f"deleted agent still active: {after.data!r}")
        agents = items(ok(self.human.agents.list(), "agents.list", 200), "agents", "agents.list")
        listed = [a for a in agents if a.get("id") == other_id]
        check(all(a.get("is_active") is False for a in listed), f"agents.list shows the deleted agent active: {listed}")

    # -- 10. personal API keys ------------------------------------------------

    def key_create(self) -> None:
        data = as_dict(ok(self.human.api_keys.create(name="laptop"), "api_keys.create", 201), "api_keys.create")
        key = data.get("api_key")
        check(isinstance(key, str) and key.startswith("1ck_"), f"api_keys.create api_key {key!r} lacks '1ck_'")
        meta = as_dict(data.get("key"), "api_keys.create 'key'")
        check(isinstance(meta.get("id"), str) and meta["id"], f"api_keys.create: no key.id in {data!r}")
        check(meta.get("name") == "laptop", f"api_keys.create key.name {meta.get('name')!r}")
        no_key_material(meta, key, "api_keys.create 'key' object")
        self.user_key, self.user_key_id = key, meta["id"]
        keys = items(ok(self.human.api_keys.list(), "api_keys.list", 200), "keys", "api_keys.list")
        check(self.user_key_id in [k.get("id") for k in keys], f"api_keys.list lacks {self.user_key_id}: {keys}")
        no_key_material(keys, key, "api_keys.list")

    def key_use(self) -> None:
        anon = create_client(base_url=self.base_url)
        try:
            data = as_dict(ok(anon.auth.api_key_token(self.user_key), "auth.api_key_token", 200), "api_key_token")
            check(isinstance(data.get("access_token"), str) and data["access_token"], f"no access_token: {data!r}")
        finally:
            anon.close()
        client = create_client(base_url=self.base_url, api_key=self.user_key)
        try:
            check(
                client._http.get_token() is not None,
                "create_client(api_key='1ck_…') got no token: its silent POST /v1/auth/api-key-token failed",
            )
            vaults = items(ok(client.vaults.list(), "vaults.list with the 1ck_ key", 200), "vaults", "vaults.list")
            check(self.vault_id in [v.get("id") for v in vaults], f"vaults.list via 1ck_ key lacks {self.vault_id}")
        finally:
            client.close()

    def key_delete(self) -> None:
        resp = self.human.api_keys.delete(self.user_key_id)
        ok(resp, "api_keys.delete", 204)
        check(resp.data is None, f"api_keys.delete returned a body: {resp.data!r}")
        keys = items(ok(self.human.api_keys.list(), "api_keys.list", 200), "keys", "api_keys.list")
        listed = [k for k in keys if k.get("id") == self.user_key_id]
        check(all(k.get("is_active") is False for k in listed), f"api_keys.list shows the revoked key active: {listed}")
        anon = create_client(base_url=self.base_url)
        try:
            fails(anon.auth.api_key_token(self.user_key), "auth.api_key_token(revoked key)", 401)
        finally:
            anon.close()
        client = create_client(base_url=self.base_url, api_key=self.user_key)
        try:
            check(client._http.get_token() is None, "a revoked 1ck_ key was still exchanged for a token")
            fails(client.vaults.list(), "vaults.list from a client built on the revoked key", 401)
        finally:
            client.close()

    # -- 11. token revocation -------------------------------------------------

    def revoke(self) -> None:
        resp = self.human.auth.revoke_token()
        ok(resp, "auth.revoke_token", (200, 204))
        fails(self.human.vaults.list(), "vaults.list with the revoked token", 401)
        fails(self.human.auth.me(), "auth.me with the revoked token", 401)
        # Revocation is per token: a new login still works.
        again = create_client(base_url=self.base_url)
        try:
            ok(again.auth.login(self.email, self.password), "auth.login after revoke", 200)
            ok(again.vaults.list(), "vaults.list with a new token", 200)
        finally:
            again.close()

    # -- plan -----------------------------------------------------------------

    def main(self) -> int:
        self.run(S_SIGNUP, self.signup)
        self.run(S_LOGIN, self.login, needs=(S_SIGNUP,))
        self.run(S_SETUP, self.human_setup, needs=(S_LOGIN,))
        self.run(S_AGENT, self.agent_create, needs=(S_LOGIN,))
        self.run(S_AGENT_VIEW, self.agent_view, needs=(S_AGENT,))
        self.run(S_POLICIES, self.policy_create, needs=(S_SETUP, S_AGENT))
        self.run(S_POLICY_LIST, self.policy_list, needs=(S_POLICIES,))
        self.run(S_EXCHANGE, self.agent_exchange, needs=(S_AGENT,))
        self.run(S_EXCHANGE_BAD, self.agent_exchange_bad, needs=(S_AGENT,))
        granted = (S_POLICIES,)
        self.run(S_AGENT_READ, self.agent_read, needs=granted)
        agent = (S_AGENT_READ,)
        self.run(S_AGENT_403, self.agent_refused, needs=agent)
        self.run(S_AGENT_NOWRITE, self.agent_no_write, needs=agent)
        self.run(S_AGENT_LIST, self.agent_list, needs=agent)
        self.run(S_AGENT_ME, self.agent_me, needs=agent)
        self.run(S_AGENT_ID, self.agent_with_id, needs=granted)
        self.run(S_POLICY_UPDATE, self.policy_update, needs=agent)
        self.run(S_POLICY_DELETE, self.policy_delete, needs=agent)
        self.run(S_ROTATE, self.rotate, needs=(S_AGENT,))
        self.run(S_ROTATE_OLD, self.rotate_old, needs=(S_ROTATE,))
        self.run(S_ROTATE_NEW, self.rotate_new, needs=(S_ROTATE,) + granted)
        self.run(S_DEACTIVATE, self.deactivate, needs=(S_AGENT,))
        self.run(S_AGENT_DELETE, self.agent_delete, needs=(S_LOGIN,))
        self.run(S_KEY_CREATE, self.key_create, needs=(S_LOGIN,))
        self.run(S_KEY_USE, self.key_use, needs=(S_KEY_CREATE, S_SETUP))
        self.run(S_KEY_DELETE, self.key_delete, needs=(S_KEY_CREATE,))
        self.run(S_REVOKE, self.revoke, needs=(S_LOGIN,))
        if self.agent is not None:
            self.agent.close()
        self.human.close()

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
