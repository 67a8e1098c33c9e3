"""Assertions shared by the compatibility suites (`test_core_sdk.py`,
`test_agents_sdk.py`). Every SDK call returns ``OneclawResponse(data, error,
meta)``; these helpers turn one into a checked value or a failed step."""

from __future__ import annotations

from typing import Any

from oneclaw.types import OneclawResponse


class StepFailed(AssertionError):
    """A check inside a step did not hold."""


def check(cond: bool, message: str) -> None:
    if not cond:
        raise StepFailed(message)


def describe(resp: OneclawResponse[Any]) -> str:
    if resp.error is not None:
        return f"HTTP {resp.meta.status} {resp.error.type}: {resp.error.message}"
    return f"HTTP {resp.meta.status} data={resp.data!r}"


def ok(resp: OneclawResponse[Any], what: str, status: int | tuple[int, ...] | None = None) -> Any:
    """Assert the SDK call succeeded (optionally with an exact status); return data."""
    check(resp.error is None, f"{what} failed: {describe(resp)}")
    if status is not None:
        wanted = status if isinstance(status, tuple) else (status,)
        check(resp.meta.status in wanted, f"{what}: expected HTTP {wanted}, got {describe(resp)}")
    return resp.data


def fails(resp: OneclawResponse[Any], what: str, status: int) -> None:
    """Assert the SDK call failed with the given status."""
    check(resp.error is not None, f"{what} should fail with HTTP {status}, got {describe(resp)}")
    check(resp.meta.status == status, f"{what}: expected HTTP {status}, got {describe(resp)}")


def as_dict(data: Any, what: str) -> dict[str, Any]:
    check(isinstance(data, dict), f"{what}: expected a JSON object, got {data!r}")
    return data


def items(data: Any, key: str, what: str) -> list[dict[str, Any]]:
    body = as_dict(data, what)
    check(isinstance(body.get(key), list), f"{what}: expected a list under {key!r}, got {body!r}")
    for item in body[key]:
        check(isinstance(item, dict), f"{what}: list item is not an object: {item!r}")
    return body[key]
