"""The vLLM side of :class:`~glide_model.llm.vllm_process.VLLMProcessBackend`: one process in
infra/vllm/.venv that serves a merged export with :class:`~glide_model.llm.vllm_backend.VLLMBackend`
and answers the worker's requests over a socket the worker hands it.

vLLM cannot live in the worker's environment (infra/vllm/README.md), so the worker starts
``infra/vllm/.venv/bin/python -m glide_model.llm.vllm_server --fd N``. This module imports only what
that venv has (vLLM, torch, numpy, pandas and the project installed there without dependencies):
nothing of glide/ or streams/, no orjson, no Feast.

Protocol: :mod:`multiprocessing.connection` frames over a socketpair private to the two processes,
each frame one pickled dict. Pickle because both ends run the same glide_model source and the
requests hold our own types (RecRequest with its CF vector and per-request sub-trie, SidTrie).

    -> {"op": "start", "export": str, "trie": SidTrie, "num_beams": int, "num_return": int,
        "method": str, "dtype": str}
    <- {"ok": True, "info": {"glide_model": path, "start_s": float, "pid": int}}
    -> {"op": "generate", "requests": [RecRequest], "trie": SidTrie | None}   (trie: it grew)
    <- {"ok": True, "results": [[(codes, score), ...] per request], "run": VLLMBackend.last_run}
    -> {"op": "close"}   (or end of file: the worker is gone)

Any failure is answered ``{"ok": False, "error": "Type: message", "fatal": bool}``. A request the
backend refuses (ValueError and kin) is not fatal; anything else may have left the engine broken, so
the server exits after answering and the worker starts a fresh one on its next request.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

# vLLM reads these at import; the worker may override any of them.
ENGINE_ENV_DEFAULTS = {
    "HF_HUB_OFFLINE": "1",
    "VLLM_TARGET_DEVICE": "cpu",
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "VLLM_HOST_IP": "127.0.0.1",
}
# Errors that say "this request is wrong", after which the engine is still sound.
REQUEST_ERRORS = (ValueError, TypeError, KeyError, IndexError)
ENGINE_CHECK_S = 1.0  # how often the engine core's liveness is checked


def error_reply(exc: BaseException, fatal: bool) -> dict[str, Any]:
    return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "fatal": fatal}


def start_backend(msg: dict[str, Any]):
    """The VLLMBackend a ``start`` message asks for (the engine start: tens of seconds)."""
    from glide_model.llm.vllm_backend import VLLMBackend

    return VLLMBackend(msg["export"], msg["trie"], num_beams=msg["num_beams"], num_return=msg["num_return"],
                       method=msg["method"], dtype=msg["dtype"])


def engine_dead(backend) -> bool:
    """vLLM's own verdict on its engine core process (its liveness monitor sets ``engine_dead``)."""
    core = getattr(getattr(getattr(backend, "llm", None), "llm_engine", None), "engine_core", None)
    return bool(getattr(getattr(core, "resources", None), "engine_dead", False))


def exit_when_the_engine_dies(backend, interval_s: float = ENGINE_CHECK_S) -> None:
    """Exit the process once the engine core is dead. vLLM 0.32's synchronous LLM marks it dead but a
    generate already waiting for outputs then waits forever; exiting turns that into a dead server,
    which the worker sees at once and replaces."""

    def watch() -> None:
        while not engine_dead(backend):
            time.sleep(interval_s)
        print("vLLM engine core died: the server exits (the worker starts a new one)", file=sys.stderr, flush=True)
        os._exit(3)

    threading.Thread(target=watch, name="engine-watch", daemon=True).start()


def generate(backend, msg: dict[str, Any]) -> dict[str, Any]:
    if msg.get("trie") is not None:
        # Live cold start in the worker: its trie grew. The engine's snapshot is now stale, which
        # VLLMBackend notices by size and answers with the beam loop over this live trie.
        backend.trie = msg["trie"]
    results = backend.generate(msg["requests"])
    return {"ok": True, "results": results, "run": dict(backend.last_run)}


def serve(conn: Connection) -> int:
    """Answer one worker until it says close or goes away; the exit status of the process."""
    try:
        msg = conn.recv()
    except EOFError:
        return 0
    if msg.get("op") != "start":
        conn.send({"ok": False, "error": f"expected a start message, got {msg.get('op')!r}", "fatal": True})
        return 2
    t0 = time.perf_counter()
    try:
        backend = start_backend(msg)
    except Exception as exc:  # noqa: BLE001 - the worker needs the reason, not a dead pipe
        traceback.print_exc()
        conn.send(error_reply(exc, fatal=True))
        return 1
    exit_when_the_engine_dies(backend)
    import glide_model

    conn.send({"ok": True, "info": {"glide_model": glide_model.__file__, "pid": os.getpid(),
                                    "start_s": time.perf_counter() - t0}})
    try:
        while True:
            try:
                msg = conn.recv()
            except EOFError:
                return 0
            op = msg.get("op")
            if op == "close":
                return 0
            if op != "generate":
                conn.send({"ok": False, "error": f"unknown op {op!r}", "fatal": False})
                continue
            try:
                reply = generate(backend, msg)
            except REQUEST_ERRORS as exc:
                conn.send(error_reply(exc, fatal=False))
                continue
            except Exception as exc:  # noqa: BLE001 - the engine may be dead: answer, then exit
                traceback.print_exc()
                conn.send(error_reply(exc, fatal=True))
                return 1
            conn.send(reply)
    finally:
        backend.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="vLLM generation server of VLLMProcessBackend (see module docstring)")
    ap.add_argument("--fd", type=int, required=True, help="file descriptor of the worker's socket")
    args = ap.parse_args(argv)
    for key, value in ENGINE_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    sock = socket.socket(fileno=args.fd)
    sock.set_inheritable(False)  # the engine's own processes must not hold the worker's socket open
    conn = Connection(sock.detach())
    try:
        return serve(conn)
    except (BrokenPipeError, ConnectionResetError):
        return 0  # the worker went away while we answered
    finally:
        conn.close()


if __name__ == "__main__":  # the vLLM engine spawns processes that re-import this module
    sys.exit(main())
