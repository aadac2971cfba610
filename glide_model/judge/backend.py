"""The one interface every judge backend implements: chat messages + a JSON schema in, answer text out.

Backends only produce text; checking it against the schema, the retry and the counting of malformed
answers happen once, in glide_model/judge/judge.py, so every backend is held to the same rules.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

Messages = list[dict[str, str]]


class BackendError(RuntimeError):
    """The backend could not answer (server down, HTTP error, timeout); the message is safe to print."""


@runtime_checkable
class ChatBackend(Protocol):
    # Identifies the model and decoding in cache keys and reports, e.g. "hf:smollm2-135m-instruct:constrained";
    # never holds a credential.
    name: str

    def complete(self, messages: Messages, schema: dict[str, Any], max_tokens: int) -> str:
        """The assistant's answer to ``messages``; ``schema`` is the JSON schema it should follow."""
        ...
