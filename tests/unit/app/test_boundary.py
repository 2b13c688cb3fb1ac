"""``app`` must stay importable without ray or torch (the ingress is plain FastAPI)."""

from __future__ import annotations

import subprocess
import sys


def test_importing_app_loads_neither_ray_nor_torch() -> None:
    code = (
        "import sys, app.main, app.gateway, app.providers.caller, app.providers.pool;"
        "bad = [m for m in ('ray', 'torch', 'llmrouter', 'litellm') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
