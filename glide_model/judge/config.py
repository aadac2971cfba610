"""`JudgeSettings`: which backend judges, and how; every field overridable by GLIDE_JUDGE_* variables.

The API key lives here as a SecretStr so it never reaches a repr, a log or the cache key.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from glide.config import build_settings


class JudgeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GLIDE_JUDGE_", extra="ignore")

    backend: Literal["hf", "openai"] = "hf"
    # hf: "smollm2" (the shipped SmolLM2-135M-Instruct), "tiny" (random test model) or any HF folder;
    # openai: the served model name.
    model: str = "smollm2"
    base_url: str | None = None  # openai: e.g. http://127.0.0.1:8000/v1
    api_key: SecretStr | None = None
    # hf: "constrained" fills the schema's skeleton and reads each score from the model's
    # distribution over the allowed digits (fast, never malformed); "free" generates text and parses it.
    decoding: Literal["constrained", "free"] = "constrained"
    max_new_tokens: int = Field(default=96, ge=8, le=1024)
    timeout_s: float = Field(default=120.0, gt=0)
    # openai: ask the server for schema-guided JSON (response_format json_schema); servers that
    # refuse it are asked again without.
    guided_json: bool = True


def load_judge_settings(**overrides) -> JudgeSettings:
    """Settings from the environment with explicit (non-None) overrides; ConfigError on a bad value."""
    return build_settings(JudgeSettings, "judge setting", **overrides)
