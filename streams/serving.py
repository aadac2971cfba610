"""Assemble the GLIDE worker from the registry: the promoted (or given) model export, the SID
assignments of the model's quantizer from the catalog DB, the Feast store, and the candidate
settings from the environment (GLIDE_CANDIDATES_*)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from glide.config import ConfigError, GlideSettings
from glide_model.llm.threads import parse_threads, set_intra_op_threads, threads_from_env
from streams.candidates import CandidateConfig, CandidateService

# CandidateConfig field -> the environment variable that overrides its default.
CANDIDATE_ENV = {"refresh_ttl_s": "GLIDE_CANDIDATES_REFRESH_TTL_S", "session_modes": "GLIDE_CANDIDATES_SESSION_MODES"}


def candidate_config_from_env(environ: Mapping[str, str] | None = None, **overrides) -> CandidateConfig:
    """CandidateConfig's defaults, then GLIDE_CANDIDATES_REFRESH_TTL_S (seconds; 0: regenerate at
    every session start) and GLIDE_CANDIDATES_SESSION_MODES (all | session), then ``overrides``; a
    bad value raises ConfigError naming its variable."""
    environ = os.environ if environ is None else environ
    values: dict = {}
    for name, env in CANDIDATE_ENV.items():
        if env not in environ:
            continue
        try:
            values[name] = float(environ[env]) if name == "refresh_ttl_s" else environ[env]
            CandidateConfig(**{name: values[name]})
        except ValueError as exc:
            raise ConfigError(f"bad candidate setting {env}={environ[env]!r}: {exc}") from None
    return CandidateConfig(**values | overrides)


def serve_threads(threads: int | None = None, environ: Mapping[str, str] | None = None) -> int:
    """The worker's decoder threads: ``threads`` if given, else GLIDE_SERVE_THREADS (a positive
    integer or auto), else one less than the usable cores (at least 1); a bad value raises ConfigError naming its variable."""
    try:
        return parse_threads(threads) if threads is not None else threads_from_env(environ)
    except ValueError as exc:
        raise ConfigError(f"bad worker setting: {exc}") from None


def build_service(
    settings: GlideSettings,
    model_dir: str | Path | None = None,
    backend: str = "hf",
    num_beams: int = 30,
    config: CandidateConfig | None = None,
    threads: int | None = None,
) -> CandidateService:
    """``threads``: the decoder's torch intra-op threads (default: GLIDE_SERVE_THREADS, else one less
    than the cores this process may use; glide_model/llm/threads.py says why, with measurements)."""
    from glide.catalog import CatalogDB
    from glide_model.llm.checkpoint import CheckpointError, Manifest, check_compatible
    from glide_model.sids.collisions import CollisionTable
    from glide_model.sids.encoder import TextEncoder
    from glide_model.sids.live import SidIndex
    from glide_model.sids.quantizer import load_quantizer
    from glide_model.sids.trie import SidTrie
    from streams.feature_store import open_store

    decoder_threads = serve_threads(threads)  # a bad GLIDE_SERVE_THREADS fails before anything loads
    db = CatalogDB.from_settings(settings)
    version = None
    if model_dir is None:
        promoted = db.promoted_model()
        if promoted is None:
            raise ConfigError("no promoted model in the registry: run `glide train` (or pass --model DIR)")
        model_dir, version = promoted["artifact_path"], promoted["version"]
    model_dir = Path(model_dir)
    try:
        manifest = Manifest.read(model_dir)
    except (CheckpointError, OSError, ValueError, TypeError) as exc:  # missing, unreadable or malformed
        where = "--model" if version is None else f"the promoted model {version!r}"
        raise ConfigError(f"{where} folder {model_dir} is not a usable GLIDE model export ({exc}): pass a "
                          "folder written by `glide train` (with glide_manifest.json), or promote one") from None
    # A registered export passed as --model keeps its registry version on the candidates it serves.
    version = version or db.version_of_artifact(model_dir)
    assignments = db.sid_assignments(manifest.quantizer_version)
    if not assignments:
        raise ConfigError(f"the catalog DB has no SIDs of quantizer {manifest.quantizer_version!r}, which the "
                          f"model {model_dir} speaks: run `glide sids refresh` with that quantizer")
    check_compatible(manifest, quantizer_version=manifest.quantizer_version, catalog_version=None)
    episodes = db.episodes_frame()
    table = CollisionTable.from_frame(episodes, assignments)
    trie = SidTrie(np.asarray(list(assignments.values()), dtype=np.int64), manifest.codebook_size)
    # Live cold start: new episodes from `catalog-updates` are encoded with the model's quantizer into
    # this same trie and collision table (the encoder loads on the first new episode).
    index = None
    quantizer = db.get_quantizer(manifest.quantizer_version)
    if quantizer and Path(quantizer["artifact_path"]).is_dir():
        index = SidIndex(load_quantizer(quantizer["artifact_path"]), TextEncoder(), trie, table)
    if backend == "vllm":
        # vLLM runs in its own venv (infra/vllm/.venv), as a server process this worker talks to.
        from glide_model.llm.vllm_process import VLLMProcessBackend, VLLMProcessError

        try:
            gen = VLLMProcessBackend(model_dir, trie, num_beams=num_beams, dtype=manifest.serving_dtype)
        except ConfigError:
            raise
        except (CheckpointError, ValueError, VLLMProcessError) as exc:  # not servable by vLLM: say why, once
            reason = exc.summary() if isinstance(exc, VLLMProcessError) else str(exc)
            raise ConfigError(f"--backend vllm cannot serve {model_dir}: {reason}") from None
    elif backend == "hf":
        from glide_model.llm.decoding import HFBackend
        from glide_model.llm.serving_model import load_for_serving

        set_intra_op_threads(decoder_threads)
        glm, _ = load_for_serving(model_dir, device="auto")  # as evaluation loads it: same weights, same dtype
        gen = HFBackend(glm, trie, num_beams=num_beams)
    else:
        raise ConfigError(f"unknown backend {backend!r}: use hf or vllm")
    show_of = dict(zip(episodes["episode_id"], episodes["show_id"]))
    published_at = dict(zip(episodes["episode_id"], episodes["published_at"]))  # rule: published by the session
    return CandidateService(open_store(settings), gen, table, show_of, version or model_dir.name,
                            config or candidate_config_from_env(), sid_index=index, published_at=published_at,
                            cf_version=manifest.cf_version, cf_dim=(manifest.projector or {}).get("d_cf"),
                            quantizer_version=manifest.quantizer_version)
