"""What the benchmarks read of the machine they run on: how busy its processors were, so that
a figure measured while other jobs ran can be told from one measured on an idle machine."""

from __future__ import annotations

import os
from pathlib import Path


def busy_seconds() -> float:
    """CPU time all the machine's cores spent busy so far (Linux /proc/stat: all but idle and
    I/O wait; steal, the time the hypervisor gave another machine, counts as busy)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
