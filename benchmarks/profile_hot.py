"""Where a client's time goes: cProfile of one scenario against the canned server.

    benchmarks/.work/venv/bin/python benchmarks/profile_hot.py CLIENT SCENARIO [N] [--only TEXT]

SCENARIO is one of sync, async, stream, astream, batch, concurrent. `--only obiguard`
lists just the functions whose file path contains "obiguard" (by cumulative time). Prints the top
functions by own and by cumulative time, in µs per operation. Waiting for the server
shows up only in the socket `recv`/`select` entries; cProfile inflates the rest by a
similar factor, so read them as shares and compare with the floor client (`lc_floor`,
`li_floor`) profiled the same way.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import pstats
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from clients import BY_NAME  # noqa: E402
from server import CannedServer  # noqa: E402
from worker import Runner  # noqa: E402

DEFAULT_N = {"sync": 2000, "async": 2000, "stream": 200, "astream": 200, "batch": 100}
DEFAULT_N["concurrent"] = 3


def top(profile: cProfile.Profile, ops: int, sort: str, limit: int = 25, only: str = "") -> str:
    stats = pstats.Stats(profile)
    rows = []
    for (file, line, func), (_cc, calls, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if only not in file:
            continue
        where = f"{Path(file).parent.name}/{Path(file).name}:{line}" if line else file
        rows.append((tt if sort == "tottime" else ct, calls / ops, where, func))
    rows.sort(reverse=True)
    out = io.StringIO()
    out.write(f"{'µs/op':>9} {'calls/op':>9}  function ({sort})\n")
    for seconds, per_op, where, func in rows[:limit]:
        out.write(f"{seconds / ops * 1e6:9.2f} {per_op:9.2f}  {func}  {where}\n")
    return out.getvalue()


def main(argv: list[str]) -> None:
    only = ""
    if "--only" in argv:
        at = argv.index("--only")
        only = argv[at + 1]
        del argv[at : at + 2]
    name, scenario = argv[0], argv[1]
    n = int(argv[2]) if len(argv) > 2 else DEFAULT_N[scenario]
    server = CannedServer(HERE / ".work" / "profile-server")
    server.start()
    try:
        bench = BY_NAME[name].make(lambda mode: f"{server.root}/c/{name}/{mode}/v1")
        runner = Runner(bench, plan=None, noop=BY_NAME[name].role == "noop")  # type: ignore[arg-type]
        runner.check()
        prompts = runner.prompts()

        sync_ops = {
            "sync": lambda: bench.call("Say hi"),
            "stream": lambda: bench.drain("Say hi"),
            "batch": lambda: bench.batch(prompts),
        }
        async_ops = {
            "async": lambda: bench.acall("Say hi"),
            "astream": lambda: bench.adrain("Say hi"),
            "concurrent": lambda: runner._concurrent(1000, 50),
        }
        # wall-clock timer: a CPU-time timer is a system call and would swamp small functions;
        # waiting for the server shows up only in the socket recv/select entries
        profile = cProfile.Profile()
        if scenario in sync_ops:
            op = sync_ops[scenario]
            for _ in range(max(5, n // 10)):
                op()
            profile.enable()
            for _ in range(n):
                op()
            profile.disable()
        else:
            aop = async_ops[scenario]

            async def run() -> None:
                for _ in range(max(2, n // 10)):
                    await aop()
                profile.enable()
                for _ in range(n):
                    await aop()
                profile.disable()

            asyncio.run(run())
    finally:
        server.stop()
    ops = n * 1000 if scenario == "concurrent" else n
    if scenario in ("stream", "astream"):
        print(f"# {name} {scenario}: per STREAM of 64 chunks (divide by 64 for per chunk)")
    print(f"# {name} {scenario}, {ops} operations\n")
    if only:
        print(top(profile, ops, "cumtime", 60, only))
        return
    print(top(profile, ops, "tottime"))
    print(top(profile, ops, "cumtime", 40))


if __name__ == "__main__":
    main(sys.argv[1:])
