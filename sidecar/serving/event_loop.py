"""One way to run an asyncio program: on uvloop when it is installed (faster socket I/O), else on
asyncio's own loop. The sidecar, its front ends, the bench servers and the load generator use it."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)
