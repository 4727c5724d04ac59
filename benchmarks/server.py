"""The canned completions server every benchmarked client talks to (stdlib only).

nginx (one worker) serves fixed bodies written here; if nginx cannot be had, a small
asyncio server with the same routes stands in (`python3 server.py PORT WORKDIR`), and
the results say so. Clients reach `http://127.0.0.1:PORT/c/<client>/<mode>/v1`, so the
access log tells how many HTTP requests each client made in each mode.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
STREAM_CHUNKS = 64
BATCH_CHOICES = 20
MODES = ("json", "stream64", "batch20", "count20")

_HEAD = {"id": "cmpl-bench", "object": "text_completion", "created": 1700000000}
_MODEL = "bench-model"


def _completion(choices: list[dict[str, object]], usage: dict[str, int] | None) -> bytes:
    body: dict[str, object] = {**_HEAD, "model": _MODEL, "choices": choices}
    if usage is not None:
        body["usage"] = usage
    return json.dumps(body, separators=(",", ":")).encode()


def _choice(text: str, index: int = 0, finish: str | None = "length") -> dict[str, object]:
    return {"text": text, "index": index, "logprobs": None, "finish_reason": finish}


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def canned_bodies() -> dict[str, bytes]:
    """Mode -> response body. Texts are what clients must return (checked by workers)."""
    json_body = _completion([_choice(expected_text())], _usage(5, 16))
    events = [
        _completion([_choice(tok, finish="length" if i == STREAM_CHUNKS - 1 else None)], None)
        for i, tok in enumerate(expected_tokens())
    ]
    events.append(_completion([], _usage(5, STREAM_CHUNKS)))
    stream = b"".join(b"data: " + e + b"\n\n" for e in events) + b"data: [DONE]\n\n"
    batch = _completion(
        [_choice(f" answer {i}", index=i) for i in range(BATCH_CHOICES)],
        _usage(5 * BATCH_CHOICES, 16 * BATCH_CHOICES),
    )
    return {"json": json_body, "stream64": stream, "batch20": batch, "count20": batch}


def expected_text() -> str:
    """The text of the one-choice answer."""
    return " The quick brown fox jumps over the lazy dog."


def expected_tokens() -> list[str]:
    """The 64 streamed token texts, in order."""
    return [f" t{i}" for i in range(STREAM_CHUNKS)]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    """Block until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def ensure_nginx() -> str | None:
    """Path of an nginx binary, installing Debian's nginx-light as root if needed."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for package in ("nginx-light", "nginx"):
        print(f"==> installing {package} (apt-get)", flush=True)
        done = subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", package],
            env=env,
            capture_output=True,
        )
        if done.returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, capture_output=True)
            done = subprocess.run(
                ["apt-get", "install", "-y", "--no-install-recommends", package],
                env=env,
                capture_output=True,
            )
        # the package's own service may have been started on port 80: we use our own
        subprocess.run(["service", "nginx", "stop"], capture_output=True)
        if done.returncode == 0 and os.access("/usr/sbin/nginx", os.X_OK):
            return "/usr/sbin/nginx"
    return None


class CannedServer:
    """Starts nginx (or the asyncio stand-in) on a free port; `stop()` ends it."""

    def __init__(self, work: Path, *, use_nginx: bool = True) -> None:
        self.work = work
        self.use_nginx = use_nginx
        self.port = free_port()
        self.kind = ""
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def root(self) -> str:
        """Base of every client URL: append `/c/<client>/<mode>/v1`."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Write the bodies, then start nginx, falling back to the asyncio server."""
        bodies_dir = self.work / "bodies"
        bodies_dir.mkdir(parents=True, exist_ok=True)
        for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.work / "tmp" / name).mkdir(parents=True, exist_ok=True)
        for mode, body in canned_bodies().items():
            (bodies_dir / mode).write_bytes(body)
        log = self.work / "requests.log"
        log.unlink(missing_ok=True)
        nginx = ensure_nginx() if self.use_nginx else None
        if nginx is not None:
            try:
                self._start_nginx(nginx)
                return
            except (OSError, subprocess.SubprocessError) as exc:
                print(f"!! nginx did not start ({exc}); using the asyncio stand-in", flush=True)
                self.stop()
        self._start_fallback()

    def _start_nginx(self, nginx: str) -> None:
        user = ""
        if os.geteuid() == 0:  # workers would drop to `nobody`, who may not read .work
            user = f"user {pwd.getpwuid(0).pw_name};"
        conf = (
            (HERE / "nginx.conf")
            .read_text()
            .replace("@USER@", user)
            .replace("@WORK@", str(self.work))
            .replace("@PORT@", str(self.port))
        )
        conf_path = self.work / "nginx.conf"
        conf_path.write_text(conf)
        errors = self.work / "nginx-stderr.log"
        with errors.open("wb") as err:
            self._proc = subprocess.Popen(
                [nginx, "-p", str(self.work), "-c", str(conf_path), "-e", str(errors)],
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        try:
            wait_for_port(self.port)
        except OSError as exc:
            raise OSError(errors.read_text(errors="replace").strip() or str(exc)) from exc
        version = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr
        self.kind = version.strip().replace("nginx version: ", "") + " (1 worker)"

    def _start_fallback(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), str(self.port), str(self.work)]
        )
        wait_for_port(self.port)
        self.kind = "asyncio stand-in (nginx unavailable)"

    def stop(self) -> None:
        """Stop the server (nginx flushes its buffered access log on the way out)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            # nginx: graceful stop (flushes the access log); the stand-in: SIGTERM
            self._proc.send_signal(
                signal.SIGTERM if self.kind.startswith("asyncio") else signal.SIGQUIT
            )
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def request_counts(self) -> Counter[str]:
        """`<client>/<mode>` -> requests served (read after `stop()`)."""
        log = self.work / "requests.log"
        counts: Counter[str] = Counter()
        if log.exists():
            for line in log.read_text().splitlines():
                parts = line.strip().split("/")
                if len(parts) >= 4 and parts[1] == "c":
                    counts[f"{parts[2]}/{parts[3]}"] += 1
        return counts


# -- the asyncio stand-in -------------------------------------------------------------


class _Handler(asyncio.Protocol):
    """HTTP/1.1 keep-alive, Content-Length request bodies, canned answers."""

    def __init__(self, answers: dict[str, bytes], log: list[str]) -> None:
        self.answers = answers
        self.log = log
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            path = head[0].split(" ")[1]
            self.log.append(path)
            parts = path.split("/")
            mode = parts[3] if len(parts) > 3 else ""
            answer = self.answers.get(mode, self.answers["404"])
            assert self.transport is not None
            self.transport.write(answer)


def _serve(port: int, work: Path) -> None:
    answers = {}
    for mode, body in canned_bodies().items():
        kind = "text/event-stream" if mode == "stream64" else "application/json"
        answers[mode] = (
            f"HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\ncontent-length: {len(body)}\r\n\r\n"
        ).encode() + body
    answers["404"] = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
    log: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
        server = await loop.create_server(
            lambda: _Handler(answers, log), "127.0.0.1", port, backlog=1024
        )
        async with server:
            await stop
        (work / "requests.log").write_text("".join(p + "\n" for p in log))

    asyncio.run(main())


if __name__ == "__main__":
    _serve(int(sys.argv[1]), Path(sys.argv[2]))
