"""Router artifacts: safetensors weights + a hashed, optionally HMAC-signed manifest.

No pickle by default (llmrouter saves KNN/SVM as .pkl; a crafted .pkl runs code on load).
"""

from router_models.artifacts.errors import ArtifactError
from router_models.artifacts.signing import SIGNING_KEY_ENV
from router_models.artifacts.store import (
    FORMAT_VERSION,
    MANIFEST_FILE,
    WEIGHTS_FILE,
    LoadedArtifact,
    load_artifact,
    save_artifact,
    sign_artifact,
    write_manifest,
)

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "SIGNING_KEY_ENV",
    "WEIGHTS_FILE",
    "ArtifactError",
    "LoadedArtifact",
    "load_artifact",
    "save_artifact",
    "sign_artifact",
    "write_manifest",
]
