"""The benchmark subcommands' arguments (`metabrain bench`, `metabrain bench-model`). Their work is
imported when they run, so that `metabrain --help` and `metabrain health` stay light (no torch)."""

from __future__ import annotations

import argparse

from sim.bench import SERVERS, TRANSPORTS


def _bench_model(a: argparse.Namespace) -> int:
    from sim.bench.model import cmd

    return cmd(a)


def _bench(a: argparse.Namespace) -> int:
    from sim.bench.run import cmd_bench

    return cmd_bench(a)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bench-model", help="model-step time per tick for batch sizes 1..8192 (eager vs CUDA graphs)")
    p.add_argument("--device", default="auto")
    p.add_argument("--batches", default="1,64,1024,8192")
    p.add_argument("--config", choices=["default", "large"], default="default")
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--bf16", action="store_true", help="run the model in bfloat16")
    p.add_argument(
        "--whole-tick",
        action="store_true",
        help="time the engine's whole tick (plan, model, directors, guidance) for --batches sessions",
    )
    p.add_argument("--json")
    p.set_defaults(func=_bench_model)
    p = sub.add_parser("bench", help="sidecar vs echo (transport ceiling) vs naive server, under the same load")
    p.add_argument("--servers", nargs="+", default=list(SERVERS), choices=SERVERS)
    p.add_argument("--transports", nargs="+", default=list(TRANSPORTS), choices=TRANSPORTS)
    p.add_argument("--seconds", type=float, default=3.0, help="measured seconds per point (after 1 s warm-up)")
    p.add_argument("--server-cores", type=int, nargs="+", help="cores the servers are pinned to (default: half)")
    p.add_argument("--load-processes", type=int, help="load-generator processes (default: one per load core)")
    p.add_argument("--sidecar-arg", action="append", help="extra `metabrain serve` argument (repeatable)")
    p.add_argument("--sweep", help="sessions at 60 Hz to try, comma-separated (default: 1,2,5,...,1200)")
    p.add_argument(
        "--refine",
        type=float,
        default=0.1,
        help="after the sweep's first failure, try loads between it and the last held one until the gap is at "
        "most this share of the held load (0: the sweep's points only)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="rounds in which every server's peak and one 60 Hz session are measured in turn (0: each server's "
        "peak before its sweep, and the sweep's one-session point)",
    )
    p.add_argument("--light-seconds", type=float, default=6.0, help="measured seconds of each such session")
    p.add_argument("--quick", action="store_true", help="a tiny run that checks everything works")
    p.add_argument("--soak", type=float, metavar="SECONDS", help="instead: steady load this long, memory sampled")
    p.add_argument("--soak-sessions", type=int, default=25, help="sessions at 60 Hz for --soak")
    p.add_argument(
        "--frame-form", choices=("tables", "rows"), default="tables", help="frames as the plugins send them, or rows"
    )
    p.add_argument("--out", default="bench-out")
    p.set_defaults(func=_bench)
