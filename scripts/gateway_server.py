#!/usr/bin/env python3
"""Run the open-source Portkey gateway, renamed to the Obiguard prefix, on 127.0.0.1.

Obiguard's gateway is a fork of the open-source Portkey gateway (npm ``@portkey-ai/gateway``)
with the header prefix ``x-portkey-`` renamed ``x-obiguard-``. This script installs version
1.15.2 with npm, makes the same rename in a copy of its entry point, binds it to the loopback
interface, and starts it in front of the local llama.cpp server (``scripts/model_server.py``)
for the gateway test tier (``tests/gateway``). Standard library only, like ``model_server.py``;
both a command-line tool and an importable module (``tests/gateway/conftest.py`` imports it).

Usage::

    python scripts/gateway_server.py ensure           # npm ci the pinned gateway into .cache/
    python scripts/gateway_server.py start [--port N] # start detached; prints http://127.0.0.1:N/v1
    python scripts/gateway_server.py url              # URL of the running gateway, or exit 1
    python scripts/gateway_server.py stop             # stop the detached gateway

``start`` also starts the llama.cpp model server when none is running (its URL is written to
``.cache/gateway_server.upstream``). The gateway itself has no upstream setting: each request
names it, ``x-obiguard-provider: openai`` plus ``x-obiguard-custom-host: <llama.cpp URL>`` (see
:func:`route_headers`).

The install is pinned twice: ``scripts/gateway/package.json`` pins the gateway and overrides
``@hono/node-server``/``@hono/node-ws``/``hono`` to the versions of the upstream repository's
lock file (with ``@hono/node-server`` 1.19.x every ``stream: true`` request answers 500), and
``scripts/gateway/package-lock.json`` pins every other package; ``npm ci`` installs exactly
that. All state lives in ``<repo>/.cache/`` (git-ignored): ``gateway/`` (node_modules and the
renamed entry point), the npm and gateway logs, and the pid, url and upstream files. Progress
goes to stderr; stdout only carries the URL.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SCRIPTS_DIR = Path(__file__).resolve().parent
if str(SCRIPTS_DIR) not in sys.path:  # imported by path (tests, other scripts): find siblings
    sys.path.append(str(SCRIPTS_DIR))

import _local_server as _ls  # noqa: E402
import model_server  # noqa: E402
from _local_server import HOST, ServerHandle, free_port  # noqa: E402

REPO_ROOT = SCRIPTS_DIR.parent
CACHE_DIR = REPO_ROOT / ".cache"
SPEC_DIR = SCRIPTS_DIR / "gateway"
"""The committed ``package.json`` and ``package-lock.json`` of the install."""
INSTALL_DIR = CACHE_DIR / "gateway"
STAMP = INSTALL_DIR / ".obiguard-installed"
PIDFILE = CACHE_DIR / "gateway_server.pid"
URLFILE = CACHE_DIR / "gateway_server.url"
UPSTREAMFILE = CACHE_DIR / "gateway_server.upstream"
SERVER_LOG = CACHE_DIR / "gateway_server.log"
INSTALL_LOG = CACHE_DIR / "gateway_install.log"

GATEWAY_PACKAGE = "@portkey-ai/gateway"
GATEWAY_VERSION = "1.15.2"
PACKAGE_DIR = INSTALL_DIR / "node_modules" / "@portkey-ai" / "gateway"
ENTRY_POINT = PACKAGE_DIR / "build" / "start-server.js"
RENAMED_ENTRY_POINT = ENTRY_POINT.with_name("start-server.obiguard.js")
"""The patched copy that is run; it sits beside the original so its imports resolve alike."""

STARTUP_TIMEOUT = 60.0
INSTALL_TIMEOUT = 600.0
READY_TEXT = "AI Gateway says hey!"
"""What ``GET /`` answers once the gateway listens."""

NPM_CI = ("ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error")


@dataclass(frozen=True)
class Substitution:
    """One literal replacement in the gateway's bundled entry point (``sed -e 's/old/new/'``)."""

    what: str
    """What it does, for messages."""
    old: str
    new: str
    exactly_once: bool
    """True: the text must occur exactly once; False: at least once (every occurrence)."""


SUBSTITUTIONS: tuple[Substitution, ...] = (
    Substitution(
        "bind to the loopback interface (upstream listens on every interface)",
        "e({fetch:Lu.fetch,port:Ku})",
        'e({fetch:Lu.fetch,port:Ku,hostname:"127.0.0.1"})',
        exactly_once=True,
    ),
    Substitution(
        "the header prefix constant (x-${POWERED_BY}-...)",
        'const b="portkey"',
        'const b="obiguard"',
        exactly_once=True,
    ),
    Substitution("the literal header names", "x-portkey-", "x-obiguard-", exactly_once=False),
)
"""The prefix rename (two substitutions) and the loopback bind, as in the gateway README."""


def _say(message: str) -> None:
    """Print a progress line to stderr (stdout is reserved for the URL)."""
    _ls.say("gateway_server", message)


# --------------------------------------------------------------------------- install


class ToolMissingError(RuntimeError):
    """``node`` or ``npm`` is not on PATH."""


def node_tools() -> tuple[str, str]:
    """The paths of ``node`` and ``npm``.

    Raises:
        ToolMissingError: naming the missing tool(s) and how to install them.
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    missing = [name for name, path in (("node", node), ("npm", npm)) if path is None]
    if missing:
        raise ToolMissingError(
            f"{' and '.join(missing)} not found on PATH: the local gateway "
            f"({GATEWAY_PACKAGE}@{GATEWAY_VERSION}) needs Node.js >= 18 with npm, e.g. "
            "`apt-get install nodejs npm` or https://nodejs.org/"
        )
    assert node is not None and npm is not None
    return node, npm


def _install_key() -> str:
    """A digest of what the install is made from: the pinned files and the substitutions."""
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((SPEC_DIR / name).read_bytes())
    for sub in SUBSTITUTIONS:
        digest.update(f"{sub.old}\0{sub.new}\0{sub.exactly_once}\0".encode())
    return digest.hexdigest()


def is_installed() -> bool:
    """Whether ``.cache/gateway`` holds the pinned install with the renamed entry point."""
    try:
        return STAMP.read_text(encoding="utf-8").strip() == _install_key() and (
            RENAMED_ENTRY_POINT.is_file()
        )
    except OSError:
        return False


def rename_prefix(source: str) -> str:
    """``source`` (the gateway's ``build/start-server.js``) with every `SUBSTITUTIONS` applied.

    Raises:
        RuntimeError: a substitution did not match as expected (the bundle changed), or an
            ``x-portkey-`` name is left over.
    """
    for sub in SUBSTITUTIONS:
        count = source.count(sub.old)
        if count == 0 or (sub.exactly_once and count != 1):
            expected = "exactly once" if sub.exactly_once else "at least once"
            raise RuntimeError(
                f"patching {ENTRY_POINT.name} failed: {sub.what}: {sub.old!r} was found "
                f"{count} time(s), expected {expected}; is the installed gateway "
                f"{GATEWAY_VERSION}?"
            )
        source = source.replace(sub.old, sub.new)
    if "x-portkey-" in source or '"portkey"' in source:
        raise RuntimeError(f"patching {ENTRY_POINT.name} left a portkey header name behind")
    return source


def ensure_installed() -> Path:
    """Install the pinned gateway into ``.cache/gateway`` once; return the entry point to run.

    ``npm ci`` into a fresh directory (about 10 s with a warm npm cache), then the renamed copy
    of the entry point is written and a stamp records what it was made from; a change to the
    pinned files or the substitutions reinstalls. Raises ``ToolMissingError`` without node/npm,
    ``RuntimeError`` with the npm log tail when the install fails.
    """
    _node, npm = node_tools()
    if is_installed():
        return RENAMED_ENTRY_POINT
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(INSTALL_DIR, ignore_errors=True)
    INSTALL_DIR.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(SPEC_DIR / name, INSTALL_DIR / name)
    cmd = [npm, *NPM_CI]
    _say(f"installing {GATEWAY_PACKAGE}@{GATEWAY_VERSION} into {INSTALL_DIR} (log: {INSTALL_LOG})")
    started = time.monotonic()
    with INSTALL_LOG.open("w", encoding="utf-8") as log:
        log.write(f"$ (cd {INSTALL_DIR} && {' '.join(cmd)})\n")
        log.flush()
        try:
            result = subprocess.run(
                cmd,
                cwd=INSTALL_DIR,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=INSTALL_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(
                f"npm ci did not finish within {INSTALL_TIMEOUT:.0f}s; tail of {INSTALL_LOG}:\n"
                f"{_ls.tail(INSTALL_LOG)}"
            ) from exc
    if result.returncode != 0 or not ENTRY_POINT.is_file():
        raise RuntimeError(
            f"npm ci of {GATEWAY_PACKAGE}@{GATEWAY_VERSION} failed (exit {result.returncode}); "
            f"tail of {INSTALL_LOG}:\n{_ls.tail(INSTALL_LOG)}"
        )
    installed = json.loads((PACKAGE_DIR / "package.json").read_text(encoding="utf-8"))
    if installed.get("version") != GATEWAY_VERSION:
        raise RuntimeError(
            f"npm installed {GATEWAY_PACKAGE} {installed.get('version')}, not {GATEWAY_VERSION}"
        )
    renamed = rename_prefix(ENTRY_POINT.read_text(encoding="utf-8"))
    partial = RENAMED_ENTRY_POINT.with_suffix(".part")
    partial.write_text(renamed, encoding="utf-8")
    os.replace(partial, RENAMED_ENTRY_POINT)
    STAMP.write_text(_install_key() + "\n", encoding="utf-8")
    _say(f"gateway installed and renamed in {time.monotonic() - started:.0f}s")
    return RENAMED_ENTRY_POINT


# --------------------------------------------------------------------------- server


def route_headers(upstream_url: str) -> dict[str, str]:
    """The request headers that route through the gateway to the llama.cpp server at
    ``upstream_url`` (``http://127.0.0.1:N/v1``) as an OpenAI-compatible provider."""
    return {
        "x-obiguard-provider": "openai",
        "x-obiguard-custom-host": upstream_url,
        "authorization": "Bearer unused-by-llama.cpp",
    }


def is_alive(base_url: str, timeout: float = 2.0) -> bool:
    """Whether the gateway's ``GET /`` answers its greeting (``base_url`` ends in ``/v1``)."""
    root = base_url.rstrip("/").removesuffix("/v1")
    try:
        with urllib.request.urlopen(f"{root}/", timeout=timeout) as resp:
            return int(resp.status) == 200 and READY_TEXT in resp.read(200).decode(
                "utf-8", "replace"
            )
    except (urllib.error.URLError, OSError, ValueError):
        return False


SERVER = _ls.LocalServer(
    name="the gateway",
    tag="gateway_server",
    cmdline_marker=RENAMED_ENTRY_POINT.name.encode(),
    is_alive=is_alive,
)
"""How the gateway is named, recognised (the renamed entry point it runs) and probed."""


def gateway_command(port: int, node: str | None = None) -> list[str]:
    """The ``node .../start-server.obiguard.js --port=N --headless`` command line."""
    return [node or node_tools()[0], str(RENAMED_ENTRY_POINT), f"--port={port}", "--headless"]


def start_gateway(
    port: int | None = None,
    *,
    timeout: float = STARTUP_TIMEOUT,
    log_path: Path = SERVER_LOG,
    pidfile: Path | None = PIDFILE,
    urlfile: Path | None = URLFILE,
) -> ServerHandle:
    """Install if needed, start the gateway on ``127.0.0.1`` and wait until ``GET /`` answers.

    A free port is chosen when ``port`` is None. The gateway runs in its own session (it
    outlives the caller unless stopped) with ``NODE_ENV=production`` and ``--headless`` (no
    log console), logging to ``log_path``. ``pidfile``/``urlfile`` are written once it is
    ready (None: skip). Raises ``ToolMissingError`` without node/npm, ``RuntimeError`` with
    the log tail if it exits or does not answer in time.
    """
    node, _npm = node_tools()
    ensure_installed()
    port = free_port() if port is None else port
    base_url = f"http://{HOST}:{port}/v1"
    handle = SERVER.start(
        gateway_command(port, node),
        base_url,
        probe=f"GET / on port {port}",
        timeout=timeout,
        log_path=log_path,
        pidfile=pidfile,
        urlfile=urlfile,
        cwd=INSTALL_DIR,
        env={**os.environ, "NODE_ENV": "production"},
    )
    _say(f"gateway ready (pid {handle.pid}): {base_url}")
    return handle


def running_url(urlfile: Path = URLFILE, pidfile: Path = PIDFILE) -> str | None:
    """The base URL of the gateway started by ``start``, if it is still up and answering."""
    return SERVER.running_url(urlfile, pidfile)


def stop_gateway(pidfile: Path = PIDFILE, urlfile: Path | None = URLFILE) -> bool:
    """Stop the gateway whose PID is in ``pidfile``; remove the pid/url/upstream files.

    Returns True if a gateway process was signalled, False if none was running.
    """
    stopped = SERVER.stop(pidfile, urlfile)
    UPSTREAMFILE.unlink(missing_ok=True)
    return stopped


def _ensure_upstream() -> str:
    """The URL of the running llama.cpp server, started detached (as its ``start``) if none."""
    url = model_server.running_url()
    if url is None:
        model_server.ensure_installed()
        handle = model_server.start_server(model_server.ensure_model())
        url = str(handle.base_url)
    return url


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    ensure = sub.add_parser(
        "ensure", help="npm ci the pinned gateway and write the renamed entry point"
    )
    ensure.add_argument(
        "--allow-missing-node",
        action="store_true",
        help="without node/npm, warn and exit 0 (the gateway tests then skip) instead of failing",
    )
    start = sub.add_parser(
        "start", help="start the gateway (and the model server if needed) detached; print its URL"
    )
    start.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    start.add_argument(
        "--no-upstream", action="store_true", help="do not start the llama.cpp model server"
    )
    sub.add_parser("stop", help="stop the detached gateway (not the model server)")
    sub.add_parser("url", help="print the running gateway's base URL, or exit 1")
    args = parser.parse_args(argv)

    try:
        if args.command == "ensure":
            started = time.monotonic()
            try:
                ensure_installed()
            except ToolMissingError as exc:
                if not args.allow_missing_node:
                    raise
                _say(f"warning: {exc}; the gateway tests (tests/gateway) will be skipped")
                return 0
            _say(f"gateway install ready ({time.monotonic() - started:.1f}s)")
            return 0
        if args.command == "url":
            return SERVER.print_url(running_url(), missing="no gateway running")
        if args.command == "stop":
            _say("gateway stopped" if stop_gateway() else "no gateway was running")
            return 0
        # start
        if not args.no_upstream:
            upstream = _ensure_upstream()
            UPSTREAMFILE.parent.mkdir(parents=True, exist_ok=True)
            UPSTREAMFILE.write_text(upstream + "\n", encoding="utf-8")
            _say(f"upstream (x-obiguard-custom-host): {upstream}")
        url = running_url()
        if url is not None:
            _say("gateway already running")
        else:
            url = start_gateway(args.port).base_url
        print(url, flush=True)
        return 0
    except RuntimeError as exc:  # ToolMissingError included
        _say(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
