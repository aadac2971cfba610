"""The OpenAI-compatible backend: against a stdlib stand-in (fast: key handling, structured-output
fallback, errors), and against a real vLLM OpenAI server of SmolLM2 from infra/vllm/.venv (skipped with
the reason when that venv is absent)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from glide_model.judge.backend import BackendError
from glide_model.judge.judge import Judge
from glide_model.judge.openai_compat import OpenAIChatBackend
from glide_model.judge.prompt import EPISODE_FIELDS, EpisodeCard

REPO = Path(__file__).resolve().parents[3]
VLLM_PYTHON = REPO / "infra" / "vllm" / ".venv" / "bin" / "python"
CARD = EpisodeCard("e1", "The heist", "Crime Daily", "true crime", "A bank job.", "Ann", 30)
PROFILE = "Listener profile (last 90 days): 12 listens.\nTop shows: Crime Daily (true crime).\nTopics: true crime 80%."
KEY = "sk-test-0123456789"


class _Fake(BaseHTTPRequestHandler):
    requests: list = []
    refuse_schema = True

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append((self.headers.get("Authorization"), body))
        if "response_format" in body and type(self).refuse_schema:
            self.send_response(400)
            self.end_headers()
            self.wfile.write(b'{"error": "response_format not supported"}')
            return
        content = json.dumps({f: 4 for f in EPISODE_FIELDS})
        reply = {"choices": [{"message": {"content": content}}], "usage": {"completion_tokens": 20}}
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(reply).encode())


@pytest.fixture
def fake_server():
    _Fake.requests = []
    server = HTTPServer(("127.0.0.1", 0), _Fake)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()


def test_key_as_header_only_and_schema_fallback(fake_server) -> None:
    backend = OpenAIChatBackend(fake_server, "m", api_key=KEY)
    judge = Judge(backend)
    assert judge.judge_episode(PROFILE, CARD).ok and judge.judge_episode(PROFILE + " ", CARD).ok
    auth, first = _Fake.requests[0]
    assert auth == f"Bearer {KEY}" and first["response_format"]["type"] == "json_schema"
    assert "response_format" not in _Fake.requests[1][1]  # refused once: asked again without
    assert "response_format" not in _Fake.requests[2][1]  # and not asked with it again
    assert KEY not in backend.name and backend.generated_tokens == 40


def test_unreachable_server_is_a_counted_failure_without_the_key() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = OpenAIChatBackend(f"http://user:{KEY}@127.0.0.1:{port}/v1", "m", api_key=KEY, timeout_s=2)
    with pytest.raises(BackendError) as info:
        backend.complete([{"role": "user", "content": "hi"}], {}, 8)
    assert KEY not in str(info.value)
    judge = Judge(backend)
    j = judge.judge_episode(PROFILE, CARD)
    assert not j.ok and judge.stats.backend_errors == 1 and KEY not in j.error and KEY not in backend.name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.vllm
@pytest.mark.skipif(not VLLM_PYTHON.exists(), reason=f"{VLLM_PYTHON} is absent: build it with `make vllm-env`")
def test_real_vllm_server_judges_smollm2(tmp_path) -> None:
    from glide.config import load_settings
    from glide_model.llm.backbone import smollm2_folder

    folder = smollm2_folder(load_settings().data_dir)
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_TARGET_DEVICE": "cpu", "VLLM_CPU_KVCACHE_SPACE": "1",
           "VLLM_HOST_IP": "127.0.0.1"}
    log = (tmp_path / "vllm.log").open("w")
    # The server module, not the `vllm serve` script: vllm-cpu's script looks up the version of a
    # distribution named "vllm" and exits (PackageNotFoundError); the module serves the same API.
    proc = subprocess.Popen([str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server", "--model", str(folder),
                             "--host", "127.0.0.1", "--port", str(port), "--served-model-name", "smollm2",
                             "--max-model-len", "2048"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, f"vllm serve exited: {(tmp_path / 'vllm.log').read_text()[-2000:]}"
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, "vllm serve did not come up in 300 s"
                time.sleep(2)
        judge = Judge(OpenAIChatBackend(f"http://127.0.0.1:{port}/v1", "smollm2", timeout_s=120))
        results = [judge.judge_episode(PROFILE, CARD) for _ in range(2)]
        # Guided JSON (or the retry) gives schema-valid scores; whatever happens is counted, not raised.
        assert judge.stats.judged == 2
        assert judge.stats.malformed == sum(not r.ok for r in results)
        assert judge.stats.backend_errors == 0
        assert any(r.ok for r in results), [r.error for r in results]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
