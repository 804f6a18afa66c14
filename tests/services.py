"""Reaching the real services some tests need.

A test that needs a service which is absent is skipped with the reason; with
``EVENTYARD_REQUIRE_SERVICES=1`` (set by ``.ci/run``) it fails instead, so CI can never pass
by skipping the real path.
"""

from __future__ import annotations

import os
import socket

import pytest

__all__ = ["require_service"]


def require_service(name: str, port: int, host: str = "127.0.0.1") -> None:
    """Skip (or fail under EVENTYARD_REQUIRE_SERVICES=1) unless ``host:port`` accepts TCP."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return
    except OSError as exc:
        reason = f"{name} is not reachable on {host}:{port} ({exc})"
    if os.environ.get("EVENTYARD_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}; EVENTYARD_REQUIRE_SERVICES=1 requires it")
    pytest.skip(reason)
