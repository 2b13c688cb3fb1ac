"""What every benchmark run shares: the machine line of a report, the commit measured,
and starting and stopping a gateway in its own process (with its Ray and Serve's HAProxy)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from bench.proctree import stop_tree
from devtools.servers import free_port, wait_port

HERE = Path(__file__).resolve().parent


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


def start_gateway(tree: Path, config: Path, env: dict[str, str], *extra: str) -> tuple[subprocess.Popen[str], int]:
    """The gateway of ``tree`` (this checkout or another) on a free port: ``bench/serve_config.py``
    in its own process, with ``env`` over this one's; back once it printed READY and listens.

    ``config`` may be deleted once this returns (the app is built by then); ``extra`` are more
    arguments of serve_config.py (an overrides file).
    """
    return start_served(tree, env, lambda port: [str(HERE / "serve_config.py"), str(config), str(port), "bench",
                                                 *extra])


def start_served(tree: Path, env: dict[str, str],
                 argv: Callable[[int], list[str]]) -> tuple[subprocess.Popen[str], int]:
    """A bench script that prints READY once it serves (``argv(port)``: its path and arguments),
    run with ``tree`` as its working directory, on a free port."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, *argv(port)], cwd=tree, env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "READY":
            break
    wait_port(port)
    return proc, port


def stop_gateway(proc: subprocess.Popen[str]) -> None:
    """Stop a gateway process and everything it started (its Ray, Serve's HAProxy), and
    nothing else: never ``ray stop``, which stops every Ray on the machine."""
    stop_tree(proc)
