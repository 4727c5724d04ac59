"""Start, find and stop a detached server on 127.0.0.1: what ``model_server.py`` and
``gateway_server.py`` share.

Private to ``scripts/`` and standard library only, like the two scripts. A script describes
its server once with a :class:`LocalServer` (what messages call it, how its process is
recognised, how its readiness is probed) and gets from it:

- :meth:`LocalServer.start`: spawn a command in its own session, wait until the server
  answers, write the pid/url files, return a :class:`ServerHandle`;
- :meth:`LocalServer.running_url`: the URL a detached ``start`` left running, if it answers;
- :meth:`LocalServer.stop`: stop that server and remove its files;
- :meth:`LocalServer.print_url`: the ``url`` subcommand.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

HOST = "127.0.0.1"
STOP_GRACE = 5.0


def say(tag: str, message: str) -> None:
    """Print a progress line ``[tag] message`` to stderr (stdout is reserved for the URL)."""
    print(f"[{tag}] {message}", file=sys.stderr, flush=True)


def tail(path: Path, lines: int = 40) -> str:
    """Return the last ``lines`` lines of a text file, or a note if it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def free_port(host: str = HOST) -> int:
    """Ask the OS for a currently unused TCP port on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def pid_running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def terminate(pid: int, grace: float = STOP_GRACE) -> None:
    """SIGTERM ``pid`` (its process group if it leads one), then SIGKILL after ``grace`` s."""

    def send(sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            if os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)

    with contextlib.suppress(ProcessLookupError):
        send(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:  # reap if it is our child
                    return
            if not pid_running(pid):
                return
            time.sleep(0.1)
        send(signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def read_pid(pidfile: Path) -> int | None:
    """The PID written in ``pidfile``, or None if there is none."""
    try:
        return int(pidfile.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class LocalServer:
    """One kind of local server: how it is named, recognised, probed and recorded."""

    name: str
    """How messages name it: ``llama.cpp server``, ``the gateway``."""
    tag: str
    """The prefix of its progress lines: the script's name."""
    cmdline_marker: bytes
    """What its process's command line contains (guards against a reused pid)."""
    is_alive: Callable[[str, float], bool]
    """``is_alive(base_url, timeout)``: whether the server at ``base_url`` answers."""
    poll_interval: float = 0.1
    """Seconds between readiness probes during startup."""

    def say(self, message: str) -> None:
        """Print a progress line to stderr (stdout is reserved for the URL)."""
        say(self.tag, message)

    def is_ours(self, pid: int) -> bool:
        """Best-effort check that ``pid`` runs this server (guards against pid reuse)."""
        cmdline = Path(f"/proc/{pid}/cmdline")
        if not cmdline.exists():  # not Linux (or already gone): trust the pidfile
            return pid_running(pid)
        try:
            return self.cmdline_marker in cmdline.read_bytes()
        except OSError:
            return False

    def start(
        self,
        cmd: Sequence[str],
        base_url: str,
        *,
        probe: str,
        timeout: float,
        log_path: Path,
        pidfile: Path | None,
        urlfile: Path | None,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ServerHandle:
        """Run ``cmd`` in its own session, logging to ``log_path``, and wait until it answers.

        The process outlives the caller unless stopped, and Ctrl-C in the caller's terminal
        does not reach it. ``pidfile``/``urlfile`` are written once it is ready (None: skip).
        Raises ``RuntimeError`` with the log tail if it exits or does not answer in time;
        ``probe`` names what it did not answer (``GET /``).
        """
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.say(f"starting {self.name} on {base_url} (log: {log_path})")
        with log_path.open("w", encoding="utf-8") as log:
            log.write("$ " + " ".join(cmd) + "\n")
            log.flush()
            proc = subprocess.Popen(
                list(cmd),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=None if env is None else dict(env),
                start_new_session=True,
            )
        handle = ServerHandle(self, base_url, proc.pid, proc, log_path=log_path)
        deadline = time.monotonic() + timeout
        while True:
            code = proc.poll()
            if code is not None:
                raise RuntimeError(
                    f"{self.name} exited with code {code} during startup; "
                    f"tail of {log_path}:\n{tail(log_path)}"
                )
            if self.is_alive(base_url, 1.0):
                break
            if time.monotonic() > deadline:
                handle.stop()
                raise RuntimeError(
                    f"{self.name} did not answer {probe} within {timeout:.0f}s; "
                    f"tail of {log_path}:\n{tail(log_path)}"
                )
            time.sleep(self.poll_interval)
        for path, text in ((pidfile, str(proc.pid)), (urlfile, base_url)):
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text + "\n", encoding="utf-8")
        handle.pidfile, handle.urlfile = pidfile, urlfile
        return handle

    def running_url(self, urlfile: Path, pidfile: Path) -> str | None:
        """The base URL in ``urlfile`` if the server whose PID is in ``pidfile`` is still up
        and answering (what a detached ``start`` left running), else None."""
        pid = read_pid(pidfile)
        try:
            url = urlfile.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        if pid is None or not self.is_ours(pid) or not self.is_alive(url, 2.0):
            return None
        return url

    def stop(self, pidfile: Path, urlfile: Path | None) -> bool:
        """Stop the server whose PID is in ``pidfile``; remove the pid and url files.

        Returns True if a server process was signalled, False if none was running.
        """
        pid = read_pid(pidfile)
        stopped = False
        if pid is not None and self.is_ours(pid):
            terminate(pid)
            stopped = True
        pidfile.unlink(missing_ok=True)
        if urlfile is not None:
            urlfile.unlink(missing_ok=True)
        return stopped

    def print_url(self, url: str | None, missing: str) -> int:
        """The ``url`` subcommand: print ``url`` and return 0, or say ``missing`` and return 1."""
        if url is None:
            self.say(missing)
            return 1
        print(url)
        return 0


class ServerHandle:
    """A running server: ``base_url`` (``http://127.0.0.1:N/v1``), ``pid``, ``stop()``.

    Usable as a context manager that stops the server on exit.
    """

    def __init__(
        self,
        server: LocalServer,
        base_url: str,
        pid: int,
        process: subprocess.Popen[bytes] | None = None,
        pidfile: Path | None = None,
        urlfile: Path | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.server = server
        self.base_url = base_url
        self.pid = pid
        self.process = process
        self.pidfile = pidfile
        self.urlfile = urlfile
        self.log_path = log_path

    def __repr__(self) -> str:
        return f"ServerHandle({self.server.name!r}, base_url={self.base_url!r}, pid={self.pid})"

    def stop(self) -> None:
        """Stop the server (SIGTERM, SIGKILL after 5 s) and remove its pid/url files."""
        if self.process is not None:
            if self.process.poll() is None:
                terminate(self.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=1.0)
        elif self.server.is_ours(self.pid):
            terminate(self.pid)
        for path in (self.pidfile, self.urlfile):
            if path is not None:
                path.unlink(missing_ok=True)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
