"""Schemathesis hooks for the schema-conformance suite (loaded by run.py
through SCHEMATHESIS_HOOKS, one `schemathesis run` per pass).

Which pass this is comes from STRONGROOM_ST_PASS, the fixtures the Rust test
made (tokens, ids) from the JSON file named by STRONGROOM_ST_FIXTURES:

- ``agent``: the agent's token; ids in the URL are swapped, on alternate
  cases, for the fixture vault and a secret path the agent is granted, so
  authorization is exercised with real grants, not only 404s.
- ``user``: the owner's token; ids swapped the same way for the fixture vault,
  secret, agent and policy.
- ``destructive``: operations that revoke, delete, deactivate, demote or
  re-key. Every call gets a fresh token (minted from a personal API key), and
  an id in the URL is swapped, on alternate cases, for a resource made for
  that call alone, so nothing another call relies on is destroyed.

A generated id that is not a UUID is left alone: it exercises the 400.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid

import requests
import schemathesis

# Import the transports now, on one thread: schemathesis imports them lazily
# from its worker threads, and two threads importing anyio at once can trip
# CPython 3.11's compiler ("AST constructor recursion depth mismatch").
import schemathesis.transport.asgi  # noqa: F401,E402
import schemathesis.transport.requests  # noqa: F401,E402
import schemathesis.transport.wsgi  # noqa: F401,E402

PASS = os.environ["STRONGROOM_ST_PASS"]
with open(os.environ["STRONGROOM_ST_FIXTURES"], encoding="utf-8") as f:
    FIX = json.load(f)
BASE = FIX["base_url"]
HTTP = requests.Session()
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _api(method: str, path: str, token: str, body: dict | None = None) -> dict:
    r = HTTP.request(method, BASE + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    if r.status_code >= 300:
        raise RuntimeError(f"fixture call {method} {path} answered {r.status_code}: {r.text[:200]}")
    return r.json() if r.content else {}


def fresh_user_token() -> str:
    r = HTTP.post(BASE + "/v1/auth/api-key-token", json={"api_key": FIX["api_key"]}, timeout=30)
    if r.status_code != 200:
        raise RuntimeError(f"could not mint a fresh token: {r.status_code}")
    return r.json()["access_token"]


def _alternate(value: object) -> bool:
    """Half of the generated values (decided by the value, so a shrunk or
    replayed case decides the same way)."""
    return hashlib.sha256(repr(value).encode()).digest()[0] % 2 == 0


def _is_uuid(value: object) -> bool:
    return isinstance(value, str) and bool(UUID_RE.match(value))


@schemathesis.auth(refresh_interval=None, retry_on=[])
class Bearer:
    """The pass's credential; in the destructive pass, a new one per call."""

    def get(self, case, context):
        if PASS == "agent":
            return FIX["agent_token"]
        if PASS == "user":
            return FIX["user_token"]
        return fresh_user_token()

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


def _fresh(name: str, token: str) -> str:
    """A resource made for one destructive call; returns its id."""
    tag = uuid.uuid4().hex[:12]
    if name == "vault_id":
        return _api("POST", "/v1/vaults", token, {"name": f"doomed-{tag}"})["id"]
    if name == "agent_id":
        return _api("POST", "/v1/agents", token, {"name": f"doomed-{tag}", "vault_ids": [FIX["vault_id"]]})["agent"]["id"]
    if name == "key_id":
        return _api("POST", "/v1/auth/api-keys", token, {"name": f"doomed-{tag}"})["key"]["id"]
    if name == "policy_id":
        return _api(
            "POST",
            f"/v1/vaults/{FIX['vault_id']}/policies",
            token,
            {
                "secret_path_pattern": f"doomed/{tag}/*",
                "principal_type": "agent",
                "principal_id": FIX["agent_id"],
                "permissions": ["read"],
            },
        )["id"]
    if name == "user_id":
        email = f"doomed-{tag}@example.com"
        invite = _api("POST", "/v1/org/invite", token, {"email": email, "role": "member"})
        r = HTTP.post(
            BASE + "/v1/auth/signup",
            json={"email": email, "password": FIX["password"], "invite_token": invite["invite_token"]},
            timeout=30,
        )
        if r.status_code != 201:
            raise RuntimeError(f"invited sign-up answered {r.status_code}")
        members = _api("GET", "/v1/org/members", token)["members"]
        return next(m["id"] for m in members if m["email"] == email)
    raise KeyError(name)


FIXTURE_IDS = {
    "vault_id": lambda: FIX["vault_id"],
    "agent_id": lambda: FIX["agent_id"],
    "policy_id": lambda: FIX["policy_id"],
    "key_id": lambda: FIX["key_id"],
    "user_id": lambda: FIX["member_id"],
}


@schemathesis.hook
def before_call(context, case, kwargs):
    params = case.path_parameters or {}
    if not params:
        return
    if PASS == "destructive":
        # Not the case's own header: the ignored_auth check sends a bad one.
        token = fresh_user_token()
        for name in list(params):
            if name == "vault_id" and "policy_id" in params:
                params[name] = FIX["vault_id"]
            elif name in FIXTURE_IDS and _is_uuid(params[name]) and _alternate(params[name]):
                params[name] = _fresh(name, token)
        return
    for name, value in list(params.items()):
        if name in FIXTURE_IDS and _is_uuid(value) and _alternate(value):
            params[name] = FIXTURE_IDS[name]()
        elif name == "path" and _alternate(value):
            params[name] = FIX["secret_path"]
        elif name == "version" and _alternate(value):
            params[name] = 1
