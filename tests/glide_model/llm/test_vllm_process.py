"""VLLMProcessBackend: the worker's GenerationBackend on a vLLM server process (infra/vllm/.venv).

Two halves. The lifecycle (start, a dying or hanging server, refused requests, restart, shutdown,
the trie growing) runs the real server loop (glide_model/llm/vllm_server.py) with a fake backend in
this venv: seconds, no vLLM. The candidates (``vllm`` marker; skipped without the venv) come from a
real vLLM server on a tiny export and must be HFBackend's on the same requests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from glide.config import ConfigError
from glide_model.llm.checkpoint import Manifest
from glide_model.llm.vllm_process import DEFAULT_VLLM_PYTHON, VLLMProcessBackend, VLLMProcessError, VLLMServerError
from glide_model.serving.contract import RecRequest
from glide_model.sids.trie import SidTrie

K, M = 8, 3

# The real server loop, its backend replaced: each request's user_id says what to do.
FAKE_SERVER = textwrap.dedent("""
    import os, sys, time
    from glide_model.llm import vllm_server

    class FakeBackend:
        def __init__(self, msg):
            if os.environ.get("FAKE_START") == "refuse":
                raise ValueError("head_dim 16 has no vLLM CPU attention kernel")
            if os.environ.get("FAKE_START") == "crash":
                print("engine core died at start", flush=True)
                os._exit(7)
            self.trie, self.last_run = msg["trie"], {}

        def generate(self, requests):
            for r in requests:
                if r.user_id == "die":
                    print("segfault in the engine", flush=True)
                    os._exit(3)
                if r.user_id == "hang":
                    time.sleep(3600)
                if r.user_id == "bad":
                    raise ValueError("a soft-prompt prompt needs exactly one <user_emb> token")
                if r.user_id == "engine-dead":
                    raise RuntimeError("EngineDeadError: EngineCore encountered an issue")
            self.last_run = {"path": "fake", "requests": len(requests)}
            # the score reports the size of the trie the server holds
            return [[((0, 0, i), float(len(self.trie)))] for i, _ in enumerate(requests)]

        def close(self):
            pass

    vllm_server.start_backend = FakeBackend
    sys.exit(vllm_server.main())
""")


@pytest.fixture
def export(tmp_path) -> Path:
    """Only a merged export's manifest: the fake backend loads no weights."""
    folder = tmp_path / "export"
    folder.mkdir()
    Manifest(base_model=str(folder), variant="sid_text", levels=M, codebook_size=K, quantizer_version="q",
             catalog_version="c", merged=True).write(folder)
    return folder


@pytest.fixture
def fake_command(tmp_path) -> list[str]:
    script = tmp_path / "fake_server.py"
    script.write_text(FAKE_SERVER)
    return [sys.executable, str(script)]


def _trie() -> SidTrie:
    return SidTrie(np.array([[0, 0, 0], [0, 0, 1], [1, 2, 3]]), K)


def _backend(export: Path, command: list[str], env: dict[str, str] | None = None, **kw) -> VLLMProcessBackend:
    return VLLMProcessBackend(export, _trie(), num_beams=4, command=command, env={**os.environ, **(env or {})}, **kw)


def _wait_gone(pid: int, timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def test_requests_round_trip_and_the_grown_trie_reaches_the_server(export, fake_command):
    with _backend(export, fake_command) as backend:
        out = backend.generate([RecRequest(user_id="a"), RecRequest(user_id="b")])
        assert out == [[((0, 0, 0), 3.0)], [((0, 0, 1), 3.0)]]
        assert backend.last_run == {"path": "fake", "requests": 2}
        backend.trie.add((1, 1, 1))  # live cold start in the worker
        assert backend.generate([RecRequest(user_id="a")]) == [[((0, 0, 0), 4.0)]]
        assert backend.generate([]) == []
        pid = backend.pid
    assert backend.pid is None and _wait_gone(pid), "close() left the server running"


def test_a_dying_server_fails_the_batch_and_a_fresh_one_serves_the_next(export, fake_command):
    with _backend(export, fake_command) as backend:
        first = backend.pid
        with pytest.raises(VLLMProcessError, match=r"exited with 3(.|\n)*segfault in the engine"):
            backend.generate([RecRequest(user_id="die")])
        assert backend.generate([RecRequest(user_id="a")]) == [[((0, 0, 0), 3.0)]]
        assert backend.pid != first and backend.starts == 2


def test_a_server_killed_from_outside_is_restarted(export, fake_command):
    with _backend(export, fake_command) as backend:
        first = backend.pid
        os.kill(first, signal.SIGKILL)
        # Until the backend itself can see the death (Popen.poll, what it checks before sending): on a
        # loaded machine a SIGKILLed process can take a while to be reaped.
        deadline = time.monotonic() + 60
        while backend.pid is not None:
            assert time.monotonic() < deadline, "the SIGKILLed server never exited"
            time.sleep(0.1)
        # The next request finds it dead and starts another before sending.
        assert backend.generate([RecRequest(user_id="a")]) == [[((0, 0, 0), 3.0)]]
        assert backend.pid != first


def test_a_hanging_server_is_killed_at_the_timeout(export, fake_command):
    with _backend(export, fake_command, request_timeout_s=1.5) as backend:
        hung = backend.pid
        t0 = time.monotonic()
        with pytest.raises(VLLMProcessError, match="no reply from the vLLM server within 2 s"):
            backend.generate([RecRequest(user_id="hang")])
        assert time.monotonic() - t0 < 10
        assert _wait_gone(hung)
        assert backend.generate([RecRequest(user_id="a")]) == [[((0, 0, 0), 3.0)]]


def test_a_refused_request_keeps_the_server_and_an_engine_failure_replaces_it(export, fake_command):
    with _backend(export, fake_command) as backend:
        pid = backend.pid
        with pytest.raises(VLLMServerError, match="ValueError: a soft-prompt prompt"):
            backend.generate([RecRequest(user_id="bad")])
        assert backend.pid == pid  # the same server serves on
        with pytest.raises(VLLMProcessError, match="EngineDeadError.*the vLLM server stopped"):
            backend.generate([RecRequest(user_id="engine-dead")])
        assert _wait_gone(pid)
        assert backend.generate([RecRequest(user_id="a")]) == [[((0, 0, 0), 3.0)]]
        assert backend.pid != pid


def test_a_failing_start_names_the_reason_and_backs_off(export, fake_command):
    with pytest.raises(VLLMProcessError, match="failed to start: ValueError: head_dim 16"):
        _backend(export, fake_command, env={"FAKE_START": "refuse"})
    with pytest.raises(VLLMProcessError, match=r"exited with 7(.|\n)*engine core died at start") as info:
        _backend(export, fake_command, env={"FAKE_START": "crash"})
    assert "engine core died at start" in info.value.summary() and "\n" not in info.value.summary()

    backend = _backend(export, fake_command, restart_backoff_s=60)
    try:
        backend._env = {**backend._env, "FAKE_START": "crash"}  # every later start fails
        with pytest.raises(VLLMProcessError, match="exited with 3"):
            backend.generate([RecRequest(user_id="die")])
        with pytest.raises(VLLMProcessError, match="failed to start"):
            backend.generate([RecRequest(user_id="a")])
        t0 = time.monotonic()
        with pytest.raises(VLLMProcessError, match=r"next try in \d+ s"):  # at once, no start
            backend.generate([RecRequest(user_id="a")])
        assert time.monotonic() - t0 < 1 and backend.starts == 2
    finally:
        backend.close()


def test_the_server_exits_when_the_worker_is_killed(export, fake_command, tmp_path):
    """No orphan: a SIGKILLed worker closes its socket end, and the server stops by itself."""
    worker = textwrap.dedent(f"""
        import os, sys, time
        from glide_model.llm.vllm_process import VLLMProcessBackend
        from glide_model.sids.trie import SidTrie
        import numpy as np
        b = VLLMProcessBackend({str(export)!r}, SidTrie(np.array([[0, 0, 0]]), {K}), num_beams=4,
                               command={fake_command!r})
        print(b.pid, flush=True)
        time.sleep(3600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", worker], stdout=subprocess.PIPE, text=True)
    try:
        server = int(proc.stdout.readline())
        assert psutil.pid_exists(server)
        proc.kill()
        proc.wait()
        assert _wait_gone(server), "the vLLM server outlived its killed worker"
    finally:
        proc.kill()


def test_a_missing_vllm_venv_is_a_config_error_naming_the_fix(export, monkeypatch, tmp_path):
    monkeypatch.setenv("GLIDE_VLLM_PYTHON", str(tmp_path / "no-venv" / "bin" / "python"))
    with pytest.raises(ConfigError, match="make vllm-env.*infra/vllm/setup.sh"):
        VLLMProcessBackend(export, _trie(), num_beams=4)


def test_a_training_checkpoint_is_refused_before_any_start(tmp_path, fake_command):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    Manifest(base_model="base", variant="sid_text", levels=M, codebook_size=K, quantizer_version="q",
             catalog_version="c").write(folder)
    with pytest.raises(Exception, match="training checkpoint; vLLM serves merged exports"):
        VLLMProcessBackend(folder, _trie(), num_beams=4, command=fake_command)


# --- the real thing: a vLLM server against HFBackend ----------------------------------------------

needs_venv = pytest.mark.skipif(not DEFAULT_VLLM_PYTHON.exists(),
                                reason="no vLLM venv at infra/vllm/.venv (build it with `make vllm-env`)")


def assert_same_candidates(got, want, tol: float = 1e-3) -> None:
    """Same SIDs in every top-k as HF (k = 10 and all), scores within ``tol``; a SID may differ at a
    top-k boundary only where its score ties the boundary's within ``tol``."""
    assert len(got) == len(want)
    for k in (10, len(want)):
        g, w = dict(got[:k]), dict(want[:k])
        edges = (min(g.values()), min(w.values()))
        for sid in set(g) ^ set(w):
            score = g.get(sid, w.get(sid))
            assert any(abs(score - edge) <= tol for edge in edges), f"top-{k}: {sid} ({score}) not a tie"
    ref = dict(want)
    for sid, score in got:
        if sid in ref:
            assert score == pytest.approx(ref[sid], abs=tol), sid


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One vLLM server on a tiny soft-prompt export (the worker's variant), HF on the same requests:
    first on the catalog trie, then after a SID was added to it (live cold start)."""
    from glide_model.llm.checkpoint import load_checkpoint
    from glide_model.llm.decoding import HFBackend
    from tests.infra.test_vllm_backend import BEAMS, _export, _rec, _requests
    from tests.infra.test_vllm_backend import K as VK

    root = tmp_path_factory.mktemp("vllm-process")
    codes = np.unique(np.random.default_rng(0).integers(0, VK, size=(200, 3)), axis=0)
    requests = [_rec(r) for r in _requests(codes)]
    export = _export(root / "glide", "glide")
    hf = HFBackend(load_checkpoint(export)[0], SidTrie(codes, VK), num_beams=BEAMS)
    want = hf.generate(requests)
    top = want[0][0][0]
    new = next(top[:-1] + (c,) for c in range(VK) if top[:-1] + (c,) not in hf.trie)
    hf.trie.add(new)
    want_added = hf.generate(requests)

    trie = SidTrie(codes, VK)
    t0 = time.perf_counter()
    backend = VLLMProcessBackend(export, trie, num_beams=BEAMS, dtype="float32")
    start_s = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        got = backend.generate(requests)
        generate_s = time.perf_counter() - t0
        trie.add(new)  # the worker's SidIndex does this on a catalog update
        got_added = backend.generate(requests)
        yield {"backend": backend, "requests": requests, "trie": trie, "new": new, "got": got, "want": want,
               "got_added": got_added, "want_added": want_added}
    finally:
        backend.close()
    print(f"vLLM server start {start_s:.1f} s, {len(requests)} requests {generate_s:.2f} s")


@pytest.mark.vllm
@needs_venv
def test_the_vllm_server_returns_hf_candidates(served):
    for got, want, request in zip(served["got"], served["want"], served["requests"]):
        assert len(got) == len(want) == 30, request.user_id
        assert_same_candidates(got, want)
        if request.allowed is not None:  # eligibility-aware decoding reaches the server
            assert all(sid in request.allowed for sid, _ in got)


@pytest.mark.vllm
@needs_venv
def test_a_sid_added_after_the_start_is_served(served):
    for got, want in zip(served["got_added"], served["want_added"]):
        assert_same_candidates(got, want)
    assert any(served["new"] in {sid for sid, _ in cands} for cands in served["got_added"])


@pytest.mark.vllm
@pytest.mark.slow
@needs_venv
def test_a_dead_engine_fails_the_batch_and_the_next_batch_is_served_again(served):
    """The engine core (a process of the server's own) is killed: the batch fails, the next restarts."""
    backend, requests = served["backend"], served["requests"]
    server = psutil.Process(backend.pid)
    for child in server.children(recursive=True):
        child.kill()
    with pytest.raises((VLLMProcessError, VLLMServerError)):
        backend.generate(requests[:1])
    assert_same_candidates(backend.generate(requests[:1])[0], served["got_added"][0])
    assert backend.starts == 2
