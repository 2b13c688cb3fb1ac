"""``make screenshots``: the console's pages as PNGs under docs/console/, from a live gateway.

Runs the demo config (configs/demo.yaml: the learned ``auto`` router and its pretrained
artifact) in this process, without Ray: the gateway app under uvicorn, the router's scorer
called in-process, the fake upstream on a free port and a throwaway embedded store. It
sends a burst of traffic through the openai SDK (routed queries from the shipped test
split, direct calls, two teams' keys, feedback on some answers), then signs in to the
console with Debian's chromium (Playwright, never its own browser download) and captures
each page. Not a test: the tests (tests/integration/test_console.py) assert; this only
draws. Prints the bytes the first screen transferred.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import uvicorn
import yaml
from tqdm import tqdm

from app.config import GatewayConfig, parse_config
from app.gateway.catalog import ModelCatalog
from app.main import create_app
from app.providers.pool import LocalProviderPool
from app.wiring import build_gateway
from devtools.servers import ThreadedFakeUpstream, free_port, wait_port
from router_models.inference.service import RoutingService
from router_models.inference.types import RouteDecision, RouteQuery, RouterSpec

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("overview", "routing", "keys", "spend", "health")
CHROMIUM = "/usr/bin/chromium"


class InProcessRouter:
    """The router-scoring node's service, called directly (a ``RouterClient``)."""

    def __init__(self, cfg: GatewayConfig) -> None:
        routers = ModelCatalog(cfg).routers
        specs = [RouterSpec(r.name, r.strategy, str(ROOT / r.artifact) if r.artifact else None, r.lam,
                            tuple((c.name, c.profile) for c in routers[r.name].candidates))
                 for r in cfg.router_settings.routers]
        self._service = RoutingService(specs)

    async def route(self, query: RouteQuery) -> RouteDecision:
        return (await self._service.route_batch([query]))[0]

    async def info(self) -> dict[str, Any]:
        return {"replica": "screenshots", "routers": self._service.describe()}


def demo_config(upstream: str, store: str) -> GatewayConfig:
    raw = yaml.safe_load((ROOT / "configs/demo.yaml").read_text())
    for entry in raw["model_list"]:
        entry["litellm_params"]["api_base"] = upstream
    raw["general_settings"]["access"] = {"sqlite_path": f"{store}/routeiq.db", "spend_flush_interval_s": 0.2}
    raw["general_settings"]["decisions"] = {"flush_interval_s": 0.2}
    return parse_config(raw)


def serve(cfg: GatewayConfig) -> tuple[str, uvicorn.Server]:
    app = create_app(build_gateway(cfg, LocalProviderPool(cfg), InProcessRouter(cfg)))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    wait_port(port)
    return f"http://127.0.0.1:{port}", server


def traffic(base: str, master: str, n: int, minutes: float) -> None:
    """Routed and direct requests under three keys, spread over ``minutes`` (so the charts
    have more than one point), feedback on a third of the routed ones."""
    admin = httpx.Client(base_url=base, headers={"authorization": f"Bearer {master}"}, timeout=60)
    for team, budget in (("research", 50.0), ("support", 20.0)):
        admin.post("/team/new", json={"team_id": team, "max_budget": budget, "budget_duration": "30d"})
    keys = [admin.post("/key/generate", json=body).json()["key"] for body in (
        {"key_alias": "notebooks", "team_id": "research", "max_budget": 10, "budget_duration": "30d"},
        {"key_alias": "helpdesk-bot", "team_id": "support", "rpm_limit": 600},
        {"key_alias": "batch-eval", "team_id": "research", "max_budget": 2, "budget_duration": "7d"})]
    queries = [json.loads(line)["query"][:600] for line in (ROOT / "router_models/data/routing/test.jsonl")
               .read_text().splitlines()[:n]]
    rng = random.Random(7)
    clients = [openai.OpenAI(base_url=f"{base}/v1", api_key=k, max_retries=0, timeout=60) for k in (master, *keys)]
    started, gap = time.monotonic(), minutes * 60 / max(1, n)
    for i, query in enumerate(tqdm(queries, desc="traffic", unit="req")):
        time.sleep(max(0.0, started + i * gap - time.monotonic()))
        model = rng.choice(["auto", "auto", "auto", "auto:cost", "auto:quality", "cheapest", "llama-3.1-8b-instruct"])
        raw = rng.choice(clients).chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": query}], max_tokens=64)
        if model.startswith("auto") and i % 3 == 0:
            admin.post("/v1/feedback", json={"request_id": raw.headers["x-request-id"], "score": rng.random()})
    admin.post("/key/block", json={"key": keys[2]})
    time.sleep(2)  # the spend and decision flushers write every 0.2 s


def capture(base: str, master: str, out: Path) -> int:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        sizes: list[int] = []  # from a cold cache: the login page, then the overview drawn
        page.on("requestfinished", lambda r: sizes.append(r.sizes()["responseBodySize"]
                                                        + r.sizes()["responseHeadersSize"]))
        page.goto(f"{base}/ui/login")
        page.screenshot(path=str(out / "login.png"))
        page.get_by_label("Key").fill(master)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state("networkidle")
        first_screen = sum(sizes)
        for name in PAGES:
            page.goto(f"{base}/ui/{name}")
            page.wait_for_load_state("networkidle")
            if name in ("overview", "routing"):
                page.select_option("#hours", "1")
            page.wait_for_timeout(500)  # charts draw after their data arrives
            page.screenshot(path=str(out / f"{name}.png"), full_page=True)
        browser.close()
    return first_screen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs/console")
    parser.add_argument("--requests", type=int, default=240)
    parser.add_argument("--minutes", type=float, default=4.0, help="spread the traffic over this long")
    args = parser.parse_args()
    upstream = ThreadedFakeUpstream().start()
    with tempfile.TemporaryDirectory() as store:
        cfg = demo_config(upstream.url, store)
        base, server = serve(cfg)
        master = cfg.master_key()
        traffic(base, master, args.requests, args.minutes)
        first = capture(base, master, args.out)
        server.should_exit = True
    upstream.stop()
    print(f"screenshots in {args.out}; first screen (login page, sign-in, overview drawn, cold cache): {first:,} bytes")


if __name__ == "__main__":
    main()
