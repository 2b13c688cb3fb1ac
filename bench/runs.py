"""What every benchmark run shares: the machine line of a report, the commit measured,
and stopping a gateway started in its own process (with its Ray and Serve's HAProxy)."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from bench.proctree import stop_tree


def machine() -> str:
    """Cores, CPU model and Python: the line every RESULTS file starts with."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def commit_of(tree: Path) -> str:
    """The short commit a checkout is at (its folder name when it is not a git checkout)."""
    out = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         check=False)
    return out.stdout.strip() or tree.name


def stop_gateway(proc: subprocess.Popen[str]) -> None:
    """Stop a gateway process and everything it started (its Ray, Serve's HAProxy), and
    nothing else: never ``ray stop``, which stops every Ray on the machine."""
    stop_tree(proc)
