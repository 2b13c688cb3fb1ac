"""What each replica kind imports, in a fresh interpreter: the ingress and the provider
calls never load an encoder runtime (torch, onnxruntime, transformers), and a provider
group loads litellm only when one of its models uses the litellm transport.

Resident memory per replica is the measure (bench/RESULTS-auto.md: PSS per process kind);
an encoder runtime in the ingress or a provider would cost each replica ~100-400 MB.
"""

from __future__ import annotations

import json
import subprocess
import sys

from devtools.configs import gateway_config

HEAVY = ("torch", "onnxruntime", "transformers", "tokenizers", "sentence_transformers", "llmrouter")


def _loaded(code: str) -> set[str]:
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return {m.split(".")[0] for m in json.loads(out.splitlines()[-1])}


def test_ingress_and_provider_modules_load_no_encoder_runtime() -> None:
    loaded = _loaded("import deployments.ingress, deployments.provider_call, deployments.graph")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def _provider(group: str) -> str:
    cfg = json.dumps(gateway_config("http://127.0.0.1:9/v1"))
    return ("from app.config import parse_config\nfrom deployments.provider_call import ProviderDeployment\n"
            f"ProviderDeployment(parse_config(json.loads({cfg!r})).provider_settings({group!r}))")


def test_a_native_provider_replica_loads_no_litellm_and_no_encoder() -> None:
    loaded = _loaded(_provider("small"))
    assert "litellm" not in loaded
    assert not loaded & set(HEAVY)


def test_a_litellm_transport_replica_loads_litellm() -> None:
    assert "litellm" in _loaded(_provider("slow"))  # the probe can see it: the test above can fail
