"""GenerationBackend on vLLM for the worker in the main venv: a vLLM process does the decoding.

vLLM needs its own venv (infra/vllm/README.md) and the worker needs Feast, Kafka clients and
orjson, which that venv lacks. So :class:`VLLMProcessBackend` starts
``infra/vllm/.venv/bin/python -m glide_model.llm.vllm_server`` (glide_model/llm/vllm_server.py, which
runs :class:`~glide_model.llm.vllm_backend.VLLMBackend`) and talks to it over a socketpair; the
candidates are the same as VLLMBackend's in that venv.

Failures are exceptions of ``generate``, so the worker dead-letters the batch (``inference_error``):

- the server dies, or answers nothing within ``request_timeout_s`` (it is then killed): a
  :class:`VLLMProcessError`; the next ``generate`` starts a fresh server (tens of seconds). A start
  that fails is retried no sooner than ``restart_backoff_s`` later (doubling per failure, at most
  RESTART_BACKOFF_MAX_S), so a broken model fails each batch at once instead of after a start;
- the server refuses a request (its error, e.g. a malformed prompt): a :class:`VLLMServerError`, the
  server lives on.

The server stops on ``close()``, at interpreter exit, and by itself when the worker's end of the
socket closes (a killed worker). It runs in a session of its own: a Ctrl-C at the worker's terminal
reaches the worker, which stops it, rather than interrupting a decode.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import glide_model
from glide.config import ConfigError
from glide_model.serving.contract import Candidate, RecRequest
from glide_model.sids.trie import SidTrie

log = logging.getLogger("glide.vllm")

REPO_ROOT = Path(glide_model.__file__).resolve().parents[1]
DEFAULT_VLLM_PYTHON = REPO_ROOT / "infra" / "vllm" / ".venv" / "bin" / "python"
VLLM_PYTHON_ENV = "GLIDE_VLLM_PYTHON"  # the vLLM venv's interpreter elsewhere (a container image)
SERVER_MODULE = "glide_model.llm.vllm_server"
RESTART_BACKOFF_MAX_S = 300.0
OUTPUT_TAIL_LINES = 40  # of the server's output, quoted when it fails
POLL_SLICE_S = 0.5  # how often a wait for a reply checks that the server is still alive


class VLLMProcessError(RuntimeError):
    """The vLLM server could not start, died, or did not answer in time."""

    def summary(self) -> str:
        """One line: the reason, and the server's last output lines when it crashed."""
        lines = [line.strip() for line in str(self).splitlines() if line.strip()]
        return lines[0] + (f"; last output: {' | '.join(lines[-3:])}" if len(lines) > 1 else "") if lines else ""


class VLLMServerError(RuntimeError):
    """The vLLM server answered a request with an error."""


def vllm_python() -> Path:
    """The vLLM venv's interpreter (GLIDE_VLLM_PYTHON, else infra/vllm/.venv of this checkout);
    ConfigError naming the fix when it is absent."""
    path = Path(os.environ.get(VLLM_PYTHON_ENV) or DEFAULT_VLLM_PYTHON)
    if not path.is_file():
        raise ConfigError(f"--backend vllm needs the vLLM venv, and {path} does not exist: build it with "
                          "`make vllm-env` (or `bash infra/vllm/setup.sh`), or set GLIDE_VLLM_PYTHON")
    return path


class _Server:
    """One running server process: its socket, and a thread logging its output (last lines kept)."""

    def __init__(self, command: Sequence[str], env: dict[str, str] | None):
        ours, theirs = socket.socketpair()
        env = dict(os.environ if env is None else env)
        env.pop("PYTHONPATH", None)  # the vLLM venv has the project installed; nothing of this venv
        try:
            self.proc = subprocess.Popen(
                # cwd: `python -m` puts it first on sys.path; a neutral folder, so the vLLM venv
                # imports its own packages only (never this venv's site-packages).
                [*command, "--fd", str(theirs.fileno())], pass_fds=(theirs.fileno(),), env=env,
                cwd=tempfile.gettempdir(),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            )
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        self.tail: collections.deque[str] = collections.deque(maxlen=OUTPUT_TAIL_LINES)
        self._output = threading.Thread(target=self._pump, name=f"vllm-server-{self.proc.pid}-output", daemon=True)
        self._output.start()
        atexit.register(self.stop)

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.tail.append(line)
            log.info("%s", line, extra={"vllm_pid": self.proc.pid})

    def describe_exit(self) -> str:
        code = self.proc.poll()
        if code is not None:
            self._output.join(timeout=2)  # its last lines, often the reason
        status = "is still running" if code is None else f"exited with {code}"
        return f"the vLLM server (pid {self.proc.pid}) {status}; its last output:\n" + "\n".join(self.tail)

    def call(self, msg: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send ``msg`` and wait for the reply; VLLMProcessError (server stopped) if it dies or is late."""
        try:
            self.conn.send(msg)
            deadline = time.monotonic() + timeout_s
            while not self.conn.poll(min(POLL_SLICE_S, max(0.0, deadline - time.monotonic()))):
                if self.proc.poll() is not None:
                    raise EOFError
                if time.monotonic() >= deadline:
                    self.stop(grace_s=0)
                    raise VLLMProcessError(f"no reply from the vLLM server within {timeout_s:.0f} s: killed it "
                                           "(it restarts on the next request)")
            return self.conn.recv()
        except (EOFError, OSError):
            try:  # it is gone or going: let its own exit status and last output arrive
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            reason = self.describe_exit()
            self.stop(grace_s=0)
            raise VLLMProcessError(reason) from None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace_s: float = 30.0) -> None:
        """Ask the server to close (engine shutdown), then kill its process group; idempotent."""
        atexit.unregister(self.stop)
        if self.proc.poll() is None and grace_s > 0:
            try:
                self.conn.send({"op": "close"})
                self.proc.wait(timeout=grace_s)
            except (OSError, subprocess.TimeoutExpired):
                pass
        try:  # the rest, and any engine process left behind: they share the server's group (its session)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        self.conn.close()


class VLLMProcessBackend:
    """GenerationBackend of the worker on a vLLM server process (module docstring); ``close()`` it.

    The server starts here (so a broken model fails at worker start, not at the first session) and
    again after it died. ``command``: the server's command line without ``--fd`` (default: the vLLM
    venv's python running glide_model.llm.vllm_server); ``env``: its environment (default: ours).
    """

    def __init__(
        self,
        export_dir: str | Path,
        trie: SidTrie,
        num_beams: int = 30,
        *,
        num_return: int | None = None,
        method: str = "auto",
        dtype: str = "auto",
        start_timeout_s: float = 600.0,
        request_timeout_s: float = 240.0,
        restart_backoff_s: float = 10.0,
        command: Sequence[str] | None = None,
        env: dict[str, str] | None = None,
    ):
        from glide_model.llm.vllm_backend import servable_manifest

        self.export_dir = Path(export_dir)
        self.trie = trie  # shared with the worker's SidIndex: grows with live cold starts
        self.num_beams = num_beams
        self.num_return = num_return or num_beams
        self.method, self.dtype = method, dtype
        # Checked here too: an unservable export fails now, not after a vLLM start.
        self.manifest = servable_manifest(self.export_dir, trie, None, None, False)
        self.start_timeout_s, self.request_timeout_s = start_timeout_s, request_timeout_s
        self.restart_backoff_s = restart_backoff_s
        self._command = list(command) if command else [str(vllm_python()), "-m", SERVER_MODULE]
        self._env = env
        self._lock = threading.Lock()  # one request at a time on the socket
        self._server: _Server | None = None
        self._sent_size = 0  # len(trie) when the server last received it
        self._failures, self._retry_at, self._last_error = 0, 0.0, ""
        self.starts = 0
        self.last_run: dict[str, Any] = {}
        with self._lock:
            self._start()

    @property
    def pid(self) -> int | None:
        """The running server's process id (None when none runs)."""
        return self._server.proc.pid if self._server is not None and self._server.alive() else None

    def generate(self, requests: Sequence[RecRequest]) -> list[list[Candidate]]:
        if not requests:
            return []
        with self._lock:
            server = self._running()
            size = len(self.trie)
            reply = self._reply(server, {"op": "generate", "requests": list(requests),
                                         "trie": self.trie if size != self._sent_size else None},
                                self.request_timeout_s)
            self._sent_size = size
            self.last_run = reply.get("run", {})
            return [[(tuple(int(c) for c in codes), float(score)) for codes, score in cands]
                    for cands in reply["results"]]

    def close(self) -> None:
        with self._lock:
            server, self._server = self._server, None
            if server is not None:
                server.stop()

    def __enter__(self) -> VLLMProcessBackend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- the server's lifecycle ------------------------------------------------------------------

    def _running(self) -> _Server:
        if self._server is not None and self._server.alive():
            return self._server
        if self._server is not None:
            log.warning("vLLM server died: %s", self._server.describe_exit())
            self._server.stop(grace_s=0)
            self._server = None
        wait = self._retry_at - time.monotonic()
        if wait > 0:
            reason = (self._last_error.splitlines() or ["?"])[0]
            raise VLLMProcessError(f"the vLLM server failed to start ({reason}); next try in {wait:.0f} s")
        return self._start()

    def _start(self) -> _Server:
        t0 = time.monotonic()
        server = _Server(self._command, self._env)
        self.starts += 1
        try:
            reply = self._reply(server, {"op": "start", "export": str(self.export_dir.resolve()), "trie": self.trie,
                                         "num_beams": self.num_beams, "num_return": self.num_return,
                                         "method": self.method, "dtype": self.dtype}, self.start_timeout_s)
        except (VLLMProcessError, VLLMServerError) as exc:
            server.stop(grace_s=0)
            self._failures += 1
            self._last_error = f"{exc}"
            self._retry_at = time.monotonic() + min(RESTART_BACKOFF_MAX_S,
                                                    self.restart_backoff_s * 2 ** (self._failures - 1))
            raise VLLMProcessError(f"the vLLM server failed to start: {exc}") from None
        self._failures, self._server, self._sent_size = 0, server, len(self.trie)
        info = reply["info"]
        if Path(info["glide_model"]).resolve() != Path(glide_model.__file__).resolve():
            log.warning("the vLLM venv imports glide_model from %s, this worker from %s: keep them the same "
                        "checkout (infra/vllm/setup.sh installs it)", info["glide_model"], glide_model.__file__)
        log.info("vLLM server ready", extra={"vllm_pid": info["pid"], "start_s": round(time.monotonic() - t0, 1)})
        return server

    def _reply(self, server: _Server, msg: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """The server's answer to ``msg``; its errors raised (a fatal one also ends the server)."""
        reply = server.call(msg, timeout_s)
        if reply.get("ok"):
            return reply
        error = str(reply.get("error"))
        if reply.get("fatal"):
            server.stop(grace_s=10)
            raise VLLMProcessError(f"{error} (the vLLM server stopped)")
        raise VLLMServerError(error)
