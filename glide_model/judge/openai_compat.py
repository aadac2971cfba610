"""Judge backend on any OpenAI-compatible chat endpoint (vLLM's `vllm serve`, a hosted API, ...).

Standard library HTTP only (one POST per answer), so the main environment needs no client package.
The key comes from the settings (GLIDE_JUDGE_API_KEY) and is sent only as the Authorization
header: it is never part of ``name``, the cache key or an error message.

Structured output: ``response_format`` of type ``json_schema`` (vLLM guided decoding, OpenAI
structured outputs). A server that rejects it with HTTP 400 is asked again without it, and not
asked with it again; the prompt spells the format out, and the judge parses and retries anyway.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any

from glide_model.judge.backend import BackendError, Messages

_USERINFO = re.compile(r"//[^/@\s]*@")


def _public_url(url: str) -> str:
    """The URL without any user:password@ part."""
    return _USERINFO.sub("//", url)


class OpenAIChatBackend:
    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout_s: float = 120.0,
                 guided_json: bool = True):
        if not base_url:
            raise ValueError("the openai judge backend needs a base URL (GLIDE_JUDGE_BASE_URL, e.g. http://127.0.0.1:8000/v1)")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self._key = api_key or None
        self.timeout_s = timeout_s
        self.guided_json = guided_json
        self.name = f"openai:{model}@{_public_url(base_url.rstrip('/'))}"
        self.generated_tokens = 0

    def _safe(self, text: str) -> str:
        text = _public_url(str(text))
        return text.replace(self._key, "***") if self._key else text

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        request = urllib.request.Request(self.url, data=json.dumps(body).encode(), headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            return json.loads(response.read().decode())

    def complete(self, messages: Messages, schema: dict[str, Any], max_tokens: int) -> str:
        body: dict[str, Any] = {"model": self.model, "messages": messages, "max_tokens": max_tokens,
                                "temperature": 0.0}
        if self.guided_json:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "judge_scores", "schema": schema, "strict": True}}
        try:
            try:
                reply = self._post(body)
            except urllib.error.HTTPError as exc:
                if exc.code != 400 or "response_format" not in body:
                    raise
                self.guided_json = False  # this server does not do structured output
                body.pop("response_format")
                reply = self._post(body)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300] if exc.fp else ""
            raise BackendError(self._safe(f"{self.url} answered HTTP {exc.code}: {detail}")) from None
        except (urllib.error.URLError, TimeoutError, OSError, json.JSONDecodeError) as exc:
            raise BackendError(self._safe(f"{self.url} unreachable or invalid: {exc}")) from None
        try:
            text = reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise BackendError(self._safe(f"{self.url} sent no choices[0].message.content")) from None
        usage = reply.get("usage") or {}
        self.generated_tokens += int(usage.get("completion_tokens") or 0)
        return text if isinstance(text, str) else ""
