"""Worker processes that die with their parent.

`serve --front-ends`, the dataset generator and the director evaluation start worker processes.
When the parent is killed (SIGTERM or SIGKILL from an orchestrator, a test, a shell), Python's own
clean-up never runs and the workers would go on computing as orphans; this asks the kernel to
SIGTERM each worker when its parent dies.
"""

from __future__ import annotations

import contextlib
import signal


def die_with_parent() -> None:
    """Call first thing in a worker process (Linux; elsewhere it does nothing)."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
