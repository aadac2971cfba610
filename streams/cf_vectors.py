"""Whether a user's online CF vector may condition the model's soft prompt (streams/candidates.py,
"The CF soft prompt"): the outcomes counted in `glide_worker_cf_vectors_total{outcome}`."""

from __future__ import annotations

CF_OUTCOMES = ("ok", "missing", "version_mismatch", "bad_dimension")


def cf_outcome(vector, version: str | None, model_cf_version: str | None, cf_dim: int | None) -> str:
    """Whether an online CF vector may condition the model: ``ok``, or why the default vector is
    served instead. A model without a recorded CF version (older manifests) accepts any version."""
    if vector is None or len(vector) == 0:
        return "missing"
    if model_cf_version is not None and version != model_cf_version:
        return "version_mismatch"  # another CF space than the projector learnt: its vector means nothing
    if cf_dim is not None and len(vector) != cf_dim:
        return "bad_dimension"
    return "ok"


def backend_cf_dim(backend) -> int | None:
    """The projector's input dimension of a backend (HFBackend: glm.d_cf; VLLMBackend: projector.d_cf)."""
    glm = getattr(backend, "glm", None)
    projector = getattr(glm, "projector", None) or getattr(backend, "projector", None)
    return getattr(projector, "d_cf", None)
