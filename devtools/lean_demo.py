"""``make run-lean``: the demo gateway in the smallest shape measured for one machine (issue #21).

What differs from ``make run`` (``configs/demo.yaml``, ``configs/serve.demo.yaml``):

- ``auto`` is a router on the static embedder (``routeiq train --embedder static``): a
  decision costs ~1 ms of CPU instead of ~12 for the shipped MiniLM router, at a stated
  routing-quality cost (docs/routing.md, "The static embedder");
- every router is scored in the ingress (``scoring: ingress``), so there is no
  RouterScoring deployment;
- the nine models are one provider group, so one Provider replica.

bench/RESULTS-auto.md measured it against the demo as shipped: 1,295 MB PSS instead of
1,711, 14 processes instead of 16, 0.131 idle cores instead of 0.156, and ``auto`` at about
2.4x the demo's throughput. The static router is not in git (~25 MB): the first run trains
it into ``.routeiq/routers/static`` from the shipped training split (80 s on two
cores, with progress bars); later runs reuse it. The configs are written next to it, derived
from the demo's, so the two cannot drift apart.

``python -m devtools.lean_demo`` prepares both and prints the Serve config's path.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".routeiq"
ROUTER = STATE / "routers" / "static"
CONFIGS = STATE / "lean"
KEPT = {"Ingress", "Provider-small"}
"""The Serve deployments the lean graph has (the demo's others are not built)."""


class LeanDemoError(Exception):
    """Why the lean demo cannot start, in one line."""


def ensure_router(path: Path = ROUTER, routeiq: Path | None = None) -> Path:
    """The static router at ``path``, trained there first if it is not (an earlier, broken
    attempt is removed and trained again; training writes into a sibling and renames)."""
    if (path / "manifest.json").is_file():
        return path
    routeiq = routeiq or Path(sys.executable).with_name("routeiq")
    if not routeiq.exists():
        raise LeanDemoError(f"{routeiq} not found: `make install-train` installs the trainer")
    partial = path.with_name(path.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    print(f"lean demo: training the static `auto` router into {path} (first run only)", file=sys.stderr)
    done = subprocess.run([str(routeiq), "train", "--embedder", "static", "--out", str(partial)], check=False)
    if done.returncode != 0 or not (partial / "manifest.json").is_file():
        shutil.rmtree(partial, ignore_errors=True)
        raise LeanDemoError(f"training the static router failed (exit {done.returncode}); see the lines above")
    shutil.rmtree(path, ignore_errors=True)
    partial.rename(path)
    return path


def gateway_config(demo: dict[str, Any], router: Path) -> dict[str, Any]:
    """The demo's gateway config, with one provider group and every router in the ingress."""
    lean = {**demo, "model_list": [{**m, "provider_group": "small"} for m in demo["model_list"]],
            "provider_groups": [{"name": "small"}]}
    routers = []
    for demo_spec in demo["router_settings"]["routers"]:  # `auto`, and `cheapest` (cost-first)
        spec = {**demo_spec, "scoring": "ingress"}
        if spec["name"] == "auto":
            spec["artifact"] = str(router.resolve())
        routers.append(spec)
    lean["router_settings"] = {**demo["router_settings"], "routers": routers}
    return lean


def serve_config(demo: dict[str, Any], gateway_path: Path) -> dict[str, Any]:
    """The demo's Serve config, pointing at ``gateway_path``, with the lean graph's deployments."""
    apps = []
    for app in demo["applications"]:
        apps.append({**app, "args": {**app["args"], "config_path": str(gateway_path)},
                     "deployments": [d for d in app["deployments"] if d["name"] in KEPT]})
    return {**demo, "applications": apps}


def write_configs(router: Path, out: Path = CONFIGS, root: Path = ROOT) -> Path:
    """Write ``gateway.yaml`` and ``serve.yaml`` under ``out``; return the Serve config's path."""
    out.mkdir(parents=True, exist_ok=True)
    demo_gateway = yaml.safe_load((root / "configs" / "demo.yaml").read_text(encoding="utf-8"))
    demo_serve = yaml.safe_load((root / "configs" / "serve.demo.yaml").read_text(encoding="utf-8"))
    gateway_path = out / "gateway.yaml"
    header = "# Written by devtools/lean_demo.py from configs/demo.yaml: edit that, not this.\n"
    gateway_path.write_text(header + yaml.safe_dump(gateway_config(demo_gateway, router), sort_keys=False),
                            encoding="utf-8")
    serve_path = out / "serve.yaml"
    serve_path.write_text(header.replace("demo.yaml", "serve.demo.yaml")
                          + yaml.safe_dump(serve_config(demo_serve, gateway_path), sort_keys=False),
                          encoding="utf-8")
    return serve_path


def main() -> None:
    try:
        print(write_configs(ensure_router()))
    except LeanDemoError as err:
        print(f"lean demo: {err}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
