"""A gateway's process tree, measured: CPU and PSS per process kind, and stopping it.

A gateway started by a benchmark (``bench/serve_config.py`` or ``scripts/run-demo.sh``)
starts its own Ray, whose processes (GCS, raylet, agents, workers, Serve's HAProxy) are
all its descendants: the tree is what the gateway costs, and what must go when it stops.
Other Ray instances on the machine (a test session's, another user's) are not in it and
are never touched (``ray stop`` would stop them all).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess

import psutil


def tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants (empty when it is gone)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def kind(p: psutil.Process) -> str:
    """What a process is, coarse enough to compare runs: a Serve deployment or a Ray part.

    An actor's title names the method it is running (``ray::ProxyActor.receive_asgi_messages``)
    and changes with it; the kind drops it, or a CPU delta between two readings would split
    one process across two kinds.
    """
    name = p.name()
    if name.startswith("ray::"):
        return re.split(r"[-.]", re.sub(r"ServeReplica:[^:]+:", "", name.removeprefix("ray::")))[0]
    cmd = " ".join(p.cmdline()[:3])
    for k in ("gcs_server", "raylet", "dashboard", "log_monitor", "monitor.py", "runtime_env", "haproxy",
              "serve_config.py", "deployments.run_local", "fake_upstream", "default_worker", "serve run"):
        if k in cmd or k in name:
            return k
    return name


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the whole tree so far."""
    return sum(cpu_by_kind(pid).values())


def cpu_by_kind(pid: int) -> dict[str, float]:
    """User + system CPU seconds per process kind of the tree."""
    out: dict[str, float] = {}
    for p in tree(pid):
        try:
            t, k = p.cpu_times(), kind(p)
        except psutil.Error:
            continue
        out[k] = out.get(k, 0.0) + t.user + t.system
    return out


def pss_by_kind(pid: int) -> dict[str, tuple[int, float]]:
    """Process count and PSS (MB) per process kind of the tree."""
    out: dict[str, tuple[int, float]] = {}
    for p in tree(pid):
        try:
            k, pss = kind(p), p.memory_full_info().pss / 2**20
        except psutil.Error:
            continue
        n, mb = out.get(k, (0, 0.0))
        out[k] = (n + 1, mb + pss)
    return out


def stop_tree(proc: subprocess.Popen[str], timeout: float = 60.0, group: bool = False) -> None:
    """SIGTERM the process (``group``: its process group, for one started in a new session)
    and wait (it shuts its Ray down), then kill what is left of its tree as it was."""
    left = tree(proc.pid)
    if group:
        os.killpg(proc.pid, signal.SIGTERM)
    else:
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
    for p in left:
        try:
            p.kill()
        except psutil.Error:
            continue
    psutil.wait_procs(left, timeout=10)
