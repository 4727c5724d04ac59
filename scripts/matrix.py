#!/usr/bin/env python3
"""Compatibility matrix: the unit suite on every declared version boundary.

Each environment is a fresh venv under `.cache/matrix/<name>` made by `uv`, holding the
project (editable) with one framework extra and the `test` extra, plus the pins that
put it on a boundary (a floor, the newest of a minor line, ...). It runs the tests of
what it installed (the transport tests always; tests/langchain or tests/llama_index for a
framework; the cassette replays where both frameworks are present) and never the
e2e (llama.cpp server), live or gateway tiers. At the end a table shows, per
environment, the versions it resolved and passed/skipped/failed.

    python3 scripts/matrix.py            # every environment (make matrix)
    python3 scripts/matrix.py --ci       # the CI subset: lowest and newest of each framework,
                                         # the transport floors and the lowest-direct run
    python3 scripts/matrix.py --list     # the environments and their pins
    python3 scripts/matrix.py lc-floor li-newest   # chosen environments

The floors in `pyproject.toml` are read from the file: the `*-floor` environments pin
exactly the `>=` lower bound declared there, so the matrix tests what is promised.
`uv` comes from PATH, or is installed once into `.cache/matrix-tools` with pip. Python
interpreters come from the machine (pyenv or /usr/bin), never downloaded; an
environment whose Python is absent runs on this interpreter's version instead and says
so in the table.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "matrix"
TOOLS = ROOT / ".cache" / "matrix-tools"

# Framework-free: the transport, the adapter core, the fault server.
TRANSPORT = ("tests/transport", "tests/core", "tests/test_fault_server.py")
LANGCHAIN = (*TRANSPORT, "tests/langchain")
LLAMA_INDEX = (*TRANSPORT, "tests/llama_index")
# Both frameworks: both adapters side by side, the cassette replays.
BOTH = (*TRANSPORT, "tests/langchain", "tests/llama_index", "tests/adapters", "tests/cassettes")
# Never in the matrix: tests/e2e (needs the llama.cpp server), tests/live (a real
# gateway), and any gateway tier; the marker expression is a second fence.
MARKERS = "not live and not e2e and not gateway"

SHOWN = ("langchain-core", "llama-index-core", "pydantic", "httpx", "langsmith")


def _read_floors() -> dict[str, dict[str, str]]:
    """The `>=` lower bound of each requirement: {"": base dependencies, extra: extra}."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    sections = {"": project.get("dependencies", []), **project.get("optional-dependencies", {})}
    floors: dict[str, dict[str, str]] = {}
    for section, requirements in sections.items():
        for requirement in requirements:
            match = re.match(r"\s*([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*([^;]*)", requirement)
            low = re.search(r">=\s*([0-9][^,\s]*)", match.group(2)) if match else None
            if match and low:
                name = match.group(1).lower().replace("_", "-")
                floors.setdefault(section, {})[name] = low.group(1)
    return floors


FLOORS = _read_floors()


def floor(name: str, extra: str = "") -> str:
    """`name==X` where `name>=X` is the lower bound that pyproject.toml declares for it in
    `extra` (the base dependencies when the extra does not name it)."""
    version = FLOORS.get(extra, {}).get(name) or FLOORS[""][name]
    return f"{name}=={version}"


# The lowest langchain-core of the 1.x line that the [langchain] extra allows (it excludes
# 1.0.0-1.3.2): keep in step with pyproject.toml.
LANGCHAIN_1X_FLOOR = "1.3.3"


@dataclass(frozen=True)
class Env:
    name: str
    extras: tuple[str, ...]
    pins: tuple[str, ...]
    tests: tuple[str, ...]
    python: str
    resolution: str = "highest"
    ci: bool = False
    note: str = ""


def environments() -> list[Env]:
    lc, li = "langchain-core", "llama-index-core"
    base_floors = (floor("httpx"), floor("httpx-sse"), floor("pydantic"))
    return [
        Env(
            "transport-floor",
            (),
            base_floors,
            TRANSPORT,
            "3.10",
            ci=True,
            note="no framework; httpx, httpx-sse and pydantic at their floors",
        ),
        Env(
            "lc-floor",
            ("langchain",),
            (floor(lc, "langchain"),),
            LANGCHAIN,
            "3.10",
            ci=True,
            note="langchain-core floor (0.3 line)",
        ),
        Env(
            "lc-0.3-newest",
            ("langchain",),
            (f"{lc}<1",),
            LANGCHAIN,
            "3.11",
            note="newest langchain-core 0.3.x",
        ),
        Env(
            "lc-1.x-floor",
            ("langchain",),
            (f"{lc}=={LANGCHAIN_1X_FLOOR}",),
            LANGCHAIN,
            "3.11",
            note="lowest supported langchain-core 1.x",
        ),
        Env(
            "lc-newest",
            ("langchain",),
            ("langchain>=1", "langchain-classic"),
            LANGCHAIN,
            "3.13",
            ci=True,
            note="newest langchain-core, with langchain 1.x and langchain-classic (agent tests)",
        ),
        Env(
            "lc-pydantic-floor",
            ("langchain",),
            (floor("pydantic", "langchain"),),
            LANGCHAIN,
            "3.11",
            note="newest langchain-core on the [langchain] pydantic floor",
        ),
        Env(
            "li-floor",
            ("llama-index",),
            (floor(li, "llama-index"),),
            LLAMA_INDEX,
            "3.10",
            ci=True,
            note="llama-index-core floor",
        ),
        Env(
            "li-0.12-newest",
            ("llama-index",),
            (f"{li}<0.13",),
            LLAMA_INDEX,
            "3.11",
            note="newest llama-index-core 0.12.x",
        ),
        Env(
            "li-0.13-newest",
            ("llama-index",),
            (f"{li}>=0.13,<0.14",),
            LLAMA_INDEX,
            "3.11",
            note="newest llama-index-core 0.13.x",
        ),
        Env(
            "li-newest",
            ("llama-index",),
            (),
            LLAMA_INDEX,
            "3.13",
            ci=True,
            note="newest llama-index-core (0.14.x)",
        ),
        Env(
            "li-pydantic-floor",
            ("llama-index",),
            (floor("pydantic", "llama-index"),),
            LLAMA_INDEX,
            "3.11",
            note="newest llama-index-core on the [llama-index] pydantic floor",
        ),
        *(
            [
                Env(
                    "aiohttp-floor",
                    ("aiohttp",),
                    (floor("aiohttp", "aiohttp"),),
                    TRANSPORT,
                    "3.10",
                    note="the optional aiohttp async backend at its floor",
                )
            ]
            if "aiohttp" in FLOORS
            else []
        ),
        Env(
            "all-lowest-direct",
            ("all",),
            (),
            BOTH,
            "3.10",
            resolution="lowest-direct",
            ci=True,
            note="uv --resolution lowest-direct: every direct dependency at its floor",
        ),
    ]


# -- tools ----------------------------------------------------------------------------


def find_uv() -> str:
    for candidate in (shutil.which("uv"), str(TOOLS / "bin" / "uv")):
        if candidate and Path(candidate).exists():
            return candidate
    print(f"==> installing uv into {TOOLS.relative_to(ROOT)}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(TOOLS)], check=True)
    subprocess.run(
        [
            str(TOOLS / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "uv>=0.5,<1",
        ],
        check=True,
    )
    return str(TOOLS / "bin" / "uv")


def find_python(version: str) -> tuple[str, str]:
    """An interpreter of `version` on this machine, else this one: (path, X.Y actually used)."""
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates = sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"))
    candidates += [f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    for candidate in candidates:
        if Path(candidate).exists():
            probe = subprocess.run([candidate, "-c", "import sys, venv"], capture_output=True)
            if probe.returncode == 0:
                return candidate, version
    return sys.executable, f"{sys.version_info.major}.{sys.version_info.minor}"


# -- one environment ------------------------------------------------------------------


@dataclass
class Result:
    env: Env
    python: str = "?"
    versions: dict[str, str] = field(default_factory=dict)
    passed: int = 0
    skipped: int = 0
    failed: int = 0
    rerun: int = 0
    """Tests that failed, then passed when run once more."""
    status: str = "ok"
    seconds: float = 0.0
    setup_seconds: float = 0.0
    log: Path | None = None

    @property
    def good(self) -> bool:
        return self.status == "ok" and self.failed == 0 and self.passed > 0


def run_env(env: Env, uv: str) -> Result:
    started = time.monotonic()
    result = Result(env)
    home = CACHE / env.name
    venv = home / "venv"
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "log.txt"
    result.log = log_path
    junit = home / "junit.xml"
    junit.unlink(missing_ok=True)
    interpreter, result.python = find_python(env.python)
    uv_env = {
        **os.environ,
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR", str(CACHE / "uv-cache")),
        "VIRTUAL_ENV": str(venv),
    }
    uv_env.pop("PYTHONPATH", None)
    extras = ",".join((*env.extras, "test"))
    with log_path.open("w", encoding="utf-8") as log:

        def step(cmd: list[str], env_vars: dict[str, str] = uv_env) -> int:
            log.write("$ " + " ".join(cmd) + "\n")
            log.flush()
            return subprocess.run(
                cmd, cwd=ROOT, env=env_vars, stdout=log, stderr=subprocess.STDOUT
            ).returncode

        if step([uv, "venv", "--quiet", "--clear", "--python", interpreter, str(venv)]) != 0:
            result.status = "venv failed"
            return _done(result, started)
        install = [
            uv,
            "pip",
            "install",
            "--python",
            str(venv / "bin" / "python"),
            "--resolution",
            env.resolution,
            "-e",
            f".[{extras}]",
            *env.pins,
        ]
        if step(install) != 0:
            result.status = "install failed"
            return _done(result, started)
        result.setup_seconds = time.monotonic() - started
        listing = subprocess.run(
            [uv, "pip", "list", "--python", str(venv / "bin" / "python"), "--format", "json"],
            cwd=ROOT,
            env=uv_env,
            capture_output=True,
            text=True,
        )
        if listing.returncode == 0:
            for item in json.loads(listing.stdout):
                name = item["name"].lower().replace("_", "-")
                if name in SHOWN:
                    result.versions[name] = item["version"]
        test_env = {k: v for k, v in uv_env.items() if not k.startswith("OBIGUARD_")}
        test_env["PATH"] = f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
        pytest = [
            str(venv / "bin" / "python"),
            "-m",
            "pytest",
            "-q",
            "-o",
            f"cache_dir={home / 'pytest-cache'}",  # its own: --lf below, nothing shared
            "-m",
            MARKERS,
            *[path for path in env.tests if (ROOT / path).exists()],
        ]
        code = step([*pytest, f"--junitxml={junit}"], test_env)
        first = _read_junit(junit)
        if first is None or code not in (0, 1):
            result.status = f"pytest exit {code}"
            return _done(result, started)
        passed, skipped, failed = first
        if failed:
            # Timing-sensitive tests can lose on a loaded machine: the failures run once
            # more, alone; one that passes then is counted in `rerun`, not as a failure.
            rerun_junit = home / "junit-rerun.xml"
            log.write(f"\n==> {failed} failed: running them once more\n")
            step([*pytest, "--lf", f"--junitxml={rerun_junit}"], test_env)
            again = _read_junit(rerun_junit)
            if again is not None:
                result.rerun, _, failed = again
                passed += result.rerun
        result.passed, result.skipped, result.failed = passed, skipped, failed
    return _done(result, started)


def _read_junit(junit: Path) -> tuple[int, int, int] | None:
    """(passed, skipped, failed or errored) from a pytest JUnit XML report."""
    if not junit.exists():
        return None
    root = ET.parse(junit).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    passed = skipped = failed = 0
    for suite in suites:
        tests = int(suite.get("tests", 0))
        bad = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skips = int(suite.get("skipped", 0))
        passed += tests - bad - skips
        skipped += skips
        failed += bad
    return passed, skipped, failed


def _failure_excerpt(result: Result) -> str:
    """What went wrong, from the environment's log: the failed tests, else its tail."""
    assert result.log is not None
    lines = result.log.read_text(encoding="utf-8", errors="replace").splitlines()
    if result.status == "ok":
        rerun = "\n".join(lines).rsplit("running them once more", 1)[-1].splitlines()
        picked = [line for line in rerun if line.startswith(("FAILED ", "ERROR "))]
        if picked:
            return "\n".join(picked[:30])
    return "\n".join(lines[-25:])


def _done(result: Result, started: float) -> Result:
    result.seconds = time.monotonic() - started
    return result


# -- the table ------------------------------------------------------------------------


COLUMNS = ("environment", "python", *SHOWN, "passed", "skipped", "failed", "rerun", "time")


def rows(results: list[Result]) -> list[tuple[str, ...]]:
    out = []
    for r in results:
        failed = str(r.failed) if r.status == "ok" else r.status
        out.append(
            (
                r.env.name,
                r.python + ("" if r.python == r.env.python else f" (wanted {r.env.python})"),
                *(r.versions.get(name, "-") for name in SHOWN),
                str(r.passed),
                str(r.skipped),
                failed,
                str(r.rerun),
                f"{r.seconds:.0f}s",
            )
        )
    return out


def text_table(results: list[Result]) -> str:
    body = rows(results)
    widths = [max(len(c), *(len(row[i]) for row in body)) for i, c in enumerate(COLUMNS)]
    line = "  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True))
    lines = [line, "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in body]
    return "\n".join(lines)


def markdown_table(results: list[Result]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(results)]
    return "\n".join(lines)


# -- main -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="environments to run (default: all)")
    parser.add_argument("--ci", action="store_true", help="only the CI subset")
    parser.add_argument("--list", action="store_true", help="list the environments and exit")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="environments at once (2)")
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown here")
    args = parser.parse_args(argv)

    envs = environments()
    if args.list:
        for e in envs:
            pins = " ".join(e.pins) or "(newest)"
            flags = f" --resolution {e.resolution}" if e.resolution != "highest" else ""
            ci = " [ci]" if e.ci else ""
            print(f"{e.name:20} py{e.python} .[{','.join((*e.extras, 'test'))}] {pins}{flags}{ci}")
            print(f"{'':20} {e.note}")
        return 0
    if args.names:
        unknown = set(args.names) - {e.name for e in envs}
        if unknown:
            parser.error(f"unknown environment(s): {', '.join(sorted(unknown))}")
        envs = [e for e in envs if e.name in args.names]
    elif args.ci:
        envs = [e for e in envs if e.ci]

    uv = find_uv()
    CACHE.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print(
        f"==> matrix: {len(envs)} environments, {args.jobs} at a time, venvs in "
        f"{CACHE.relative_to(ROOT)}/",
        flush=True,
    )
    results: dict[str, Result] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {pool.submit(run_env, e, uv): e for e in envs}
        for future in concurrent.futures.as_completed(futures):
            r = future.result()
            results[r.env.name] = r
            verdict = "ok" if r.good else "FAILED"
            print(
                f"    {r.env.name:20} {verdict:6} {r.passed} passed, {r.skipped} skipped, "
                f"{r.failed} failed, {r.rerun} passed on rerun ({r.status}, {r.seconds:.0f}s; "
                f"log {r.log.relative_to(ROOT) if r.log else '-'})",
                flush=True,
            )
    ordered = [results[e.name] for e in envs]
    elapsed = time.monotonic() - started
    print()
    print(text_table(ordered))
    if args.markdown:
        args.markdown.write_text(markdown_table(ordered) + "\n", encoding="utf-8")
    for r in ordered:
        if not r.good and r.log and r.log.exists():
            print(f"\n--- {r.env.name}: {r.log.relative_to(ROOT)}")
            print(_failure_excerpt(r))
    bad = [r.env.name for r in ordered if not r.good]
    passed = sum(r.passed for r in ordered)
    skipped = sum(r.skipped for r in ordered)
    failed = sum(r.failed for r in ordered) + sum(1 for r in ordered if r.status != "ok")
    print(
        f"\n==> {len(ordered)} environments in {elapsed:.0f}s"
        + (f"; not green: {', '.join(bad)}" if bad else "; all green")
    )
    print(f"matrix: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
