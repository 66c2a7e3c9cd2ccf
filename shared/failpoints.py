"""Named crash points for fault tests.

``INVOICING_FAILPOINTS="relay.before_send"`` makes the process SIGKILL itself the first time
it reaches ``failpoint("relay.before_send")``; ``name@3`` waits for the third time. Nothing
happens when the variable is empty, which is the production setting.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

_hits: Counter[str] = Counter()


def _armed() -> dict[str, int]:
    spec = os.environ.get("INVOICING_FAILPOINTS", "")
    armed: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, nth = item.partition("@")
        armed[name] = int(nth) if nth else 1
    return armed


_ARMED = _armed()


def failpoint(name: str) -> None:
    if name not in _ARMED:
        return
    _hits[name] += 1
    if _hits[name] == _ARMED[name]:
        os.kill(os.getpid(), signal.SIGKILL)
