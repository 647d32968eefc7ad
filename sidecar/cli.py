"""The `metabrain` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from sidecar.limits import Limits
from sidecar.operations.logs import configure_logging
from sidecar.policies.params import POLICY_NAMES

Command = Callable[[argparse.Namespace], int]
_COMMANDS: dict[str, Command] = {}


def _port(text: str) -> int | None:
    if text.lower() in ("off", "none", "-1"):
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a port: give a number in 0..65535 (0 picks a free port) or 'off'"
        ) from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} is outside 0..65535 (0 picks a free port, 'off' disables)")
    return value


class HelpWithDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """--help shows each option's default, except where there is none to show (None, False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "%(default)" in text or "default:" in text:
            return text
        return super()._get_help_string(action) or text


def add_serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1: this machine only)")
    p.add_argument("--grpc-port", type=_port, default=50051, help="gRPC port; 0 picks a free one; 'off' disables")
    p.add_argument("--ws-port", type=_port, default=50052, help="WebSocket port; 0 picks a free one; 'off' disables")
    p.add_argument("--ports-file", help="write the ports chosen to this file (with port 0)")
    p.add_argument("--checkpoint", help="model checkpoint (default: the bundled trained model)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, or auto (cuda when available)")
    p.add_argument("--policy", default="portfolio", choices=POLICY_NAMES, help="director for hellos that name none")
    p.add_argument(
        "--model-every-frame",
        action="store_true",
        help="step the model on every frame, whatever its rate (default: at the rate the model was trained at, "
        "folding the frames between steps and answering them from the latest prediction)",
    )
    p.add_argument(
        "--wait-for-steps",
        action="store_true",
        help="answer a frame that takes a model step after its step, at any send rate (default: at once from the "
        "latest prediction when the game sends faster than the model rate; its step answers the frames after it)",
    )
    p.add_argument(
        "--pure-python",
        "--python-frame-reader",
        dest="pure_python",
        action="store_true",
        help="run the per-frame path in Python: every frame read, the frames between model steps folded and "
        "their knobs eased, each tick's frames featurized and its model stepped (small ticks), without the "
        "compiled code (default: with it where it was built; the same checks and numbers, for comparison and "
        "debugging)",
    )
    p.add_argument("--max-batch", type=int, default=8192, help="most players stepped in one tick")
    p.add_argument("--max-wait-ms", type=float, default=0.0, help="wait this long for a batch to fill (0: greedy)")
    p.add_argument("--max-sessions", type=int, default=Limits.max_sessions, help="sessions held at once")
    p.add_argument(
        "--max-games",
        type=int,
        default=Limits.max_games,
        help="games (hello.game_id) a learning director (portfolio, contextual) keeps evidence for",
    )
    p.add_argument("--max-npcs", type=int, default=Limits.max_npcs_per_frame, help="NPCs in one frame")
    p.add_argument("--max-message-bytes", type=int, default=Limits.max_message_bytes, help="largest message, in bytes")
    p.add_argument("--max-fps", type=float, default=Limits.max_frames_per_second, help="frames a second per session")
    p.add_argument(
        "--resume-window", type=float, default=Limits.resume_window_s, help="seconds a dropped session waits"
    )
    p.add_argument(
        "--idle-timeout", type=float, default=Limits.idle_timeout_s, help="seconds without a frame before a close"
    )
    p.add_argument(
        "--max-pause",
        type=float,
        default=Limits.max_pause_s,
        help="seconds without a frame before a close, for a game that sent EVENT_TYPE_PAUSE (a pause menu)",
    )
    p.add_argument("--token-file", help="file of accepted tokens, one per line (also $METABRAIN_TOKEN)")
    p.add_argument("--tls-cert", help="server certificate (PEM) to serve TLS on both transports")
    p.add_argument("--tls-key", help="server private key (PEM)")
    p.add_argument(
        "--state-dir", help="keeps the resume secret (clients resume after a restart) and what the portfolio learned"
    )
    p.add_argument("--record-dir", help="record consenting sessions here (msgpack)")
    p.add_argument("--record-key-file", help="key for pseudonymising player ids in recordings (created if absent)")
    p.add_argument("--retention-days", type=float, default=30.0, help="delete recordings older than this")
    p.add_argument("--max-connections", type=int, default=Limits.max_connections, help="open streams at most")
    p.add_argument(
        "--max-connections-per-client",
        type=int,
        default=Limits.max_connections_per_client,
        help="open streams one client address may hold",
    )
    p.add_argument(
        "--hello-timeout",
        type=float,
        default=Limits.hello_timeout_s,
        help="seconds a new stream may take to send its hello (and a WebSocket its handshake)",
    )
    p.add_argument(
        "--allowed-origin",
        action="append",
        metavar="ORIGIN",
        help="browser origin allowed to open WebSocket sessions, e.g. https://game.example (repeatable; default: any)",
    )
    p.add_argument(
        "--max-conn-rate",
        type=float,
        default=Limits.max_messages_per_second_per_connection,
        help="messages a second per connection, valid or not",
    )
    p.add_argument("--metrics-port", type=_port, help="Prometheus /metrics port (0: a free port; default: off)")
    p.add_argument("--metrics-host", help="address for /metrics (default: --host); 0.0.0.0 lets scrapers in")
    p.add_argument("--dashboard-port", type=_port, help="live dashboard port (0: a free port; default: off)")
    p.add_argument(
        "--dashboard-host",
        default="127.0.0.1",
        help="address for the dashboard, which shows every session (the token is required when auth is on)",
    )
    p.add_argument(
        "--front-ends",
        type=int,
        default=1,
        help="front-end processes sharing the ports (SO_REUSEPORT) and one model runner process (many-core boxes)",
    )
    p.add_argument(
        "--fault-injection", action="store_true", help="SIGUSR1 makes the next model step fail (drills and tests)"
    )
    p.add_argument(
        "--experiment",
        action="append",
        metavar="NAME:ARM=WEIGHT,...",
        help="split players between directors, e.g. retention:static:0.4=50,learned=50 (sticky per player; "
        "repeatable, the first for all games applies)",
    )
    p.add_argument("--experiments", metavar="FILE", help="experiments from a TOML or YAML file (per game)")
    p.add_argument(
        "--experiment-override", action="store_true", help="let a hello choose its arm (Hello.experiment_arm)"
    )
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    p.add_argument("--log-format", choices=["text", "json"], default="text", help="json: one JSON object per line")


def resolve_device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def serve_config(a: argparse.Namespace) -> object:
    from sidecar.engine.engine import EngineConfig
    from sidecar.policies.experiments import load_experiments, parse_experiment
    from sidecar.serving.server import ServeConfig

    experiments = tuple(parse_experiment(e) for e in a.experiment or ())
    if a.experiments:
        experiments += load_experiments(a.experiments)

    limits = Limits(
        max_sessions=a.max_sessions,
        max_games=a.max_games,
        max_npcs_per_frame=a.max_npcs,
        max_message_bytes=a.max_message_bytes,
        max_frames_per_second=a.max_fps,
        resume_window_s=a.resume_window,
        idle_timeout_s=a.idle_timeout,
        max_pause_s=a.max_pause,
        max_connections=a.max_connections,
        max_messages_per_second_per_connection=a.max_conn_rate,
        max_connections_per_client=a.max_connections_per_client,
        hello_timeout_s=a.hello_timeout,
    )
    engine = EngineConfig(
        device=resolve_device(a.device),
        max_batch=a.max_batch,
        max_wait_s=a.max_wait_ms / 1000,
        default_policy=a.policy,
        model_rate_hz=0.0 if a.model_every_frame else None,
        compiled=not a.pure_python,
        answer_steps_at_once=not a.wait_for_steps,
    )
    return ServeConfig(
        host=a.host,
        grpc_port=a.grpc_port,
        ws_port=a.ws_port,
        checkpoint=a.checkpoint,
        engine=engine,
        limits=limits,
        token_file=a.token_file,
        tls_cert=a.tls_cert,
        tls_key=a.tls_key,
        state_dir=a.state_dir,
        record_dir=a.record_dir,
        record_key_file=a.record_key_file,
        record_retention_days=a.retention_days,
        metrics_port=a.metrics_port,
        metrics_host=a.metrics_host,
        dashboard_port=a.dashboard_port,
        dashboard_host=a.dashboard_host,
        allowed_origins=tuple(a.allowed_origin or ()),
        experiments=experiments,
        experiment_override=a.experiment_override,
        fault_injection=a.fault_injection,
        compiled_frame_reader=not a.pure_python,
    )


def cmd_serve(a: argparse.Namespace) -> int:
    from sidecar.model.checkpoint import CheckpointError
    from sidecar.serving.server import ServeConfig, serve_forever

    cfg = serve_config(a)
    assert isinstance(cfg, ServeConfig)
    if a.front_ends < 1:
        print(f"metabrain serve: --front-ends must be at least 1 (got {a.front_ends})", file=sys.stderr)
        return 2
    if a.front_ends > 1:
        from sidecar.serving.front_ends import serve_front_ends

        try:
            return serve_front_ends(cfg, a.front_ends, a.ports_file, (a.log_level, a.log_format))
        except (OSError, CheckpointError) as exc:
            print(f"metabrain serve: {exc}", file=sys.stderr)
            return 2
    from sidecar.serving import event_loop

    try:
        return event_loop.run(serve_forever(cfg, a.ports_file))
    except (OSError, CheckpointError) as exc:
        print(f"metabrain serve: {exc}", file=sys.stderr)
        return 2


def cmd_health(a: argparse.Namespace) -> int:
    """Exit 0 when the sidecar's gRPC health service says SERVING (a Kubernetes exec probe)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(a.target) as channel:
        try:
            resp = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=a.service), timeout=a.timeout
            )
        except grpc.RpcError as exc:
            print(f"metabrain health: {a.target}: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
    print(f"{a.target}: {status}")
    return 0 if resp.status == health_pb2.HealthCheckResponse.SERVING else 1


def cmd_proto(a: argparse.Namespace) -> int:
    """Where the installed schema is, for any language's protoc (`protoc -I "$(metabrain proto --include)" ...`)."""
    from pathlib import Path

    root = Path(__file__).resolve().parent / "gen" / "proto"
    schema = root / "metabrain" / "v1" / "metabrain.proto"
    if not schema.exists():
        raise FileNotFoundError(f"the schema is not installed at {schema}; run `python proto/generate.py`")
    print(root if a.include else schema)
    return 0


def cmd_experiment(a: argparse.Namespace) -> int:
    """`metabrain experiment report RECORDINGS...`"""
    from sidecar.operations.experiment_report import markdown, read_outcomes, report, write_report
    from sidecar.operations.recording import recording_files

    files = recording_files(a.recordings)
    outcomes = read_outcomes(files)
    if not outcomes:
        raise ValueError(f"no recording in {' '.join(a.recordings)} says which arm its session had")
    rep = report(outcomes, a.control, a.bootstrap, a.seed)
    paths = write_report(outcomes, rep, a.out)
    print(markdown(rep))
    print(f"wrote {paths['markdown']}, {paths['json']} and {paths['png']}")
    return 0


def cmd_portfolio(a: argparse.Namespace) -> int:
    """`metabrain portfolio show|import --state-dir DIR`: what the portfolio director learned, per game."""
    from sidecar.operations.portfolio_store import PortfolioStore, evidence_from_recordings
    from sidecar.operations.recording import recording_files
    from sidecar.policies.portfolio import at_a_start, start_range_of, start_within

    store = PortfolioStore(a.state_dir)
    if a.action == "import":
        files = recording_files(a.recordings)
        found = evidence_from_recordings(files)
        skipped = ", ".join(f"{n} of {arm}" for arm, n in found.skipped.most_common())
        if not found.games:
            raise ValueError(
                f"no recording in {' '.join(a.recordings)} is of a portfolio candidate"
                f" (a portfolio's draw, a fixed level on its ladder, or one of its directors); skipped: {skipped}"
            )
        for game_id, evidence in found.games.items():
            store.add(game_id, evidence, found.moves.get(game_id))
            n = sum(e.finished for label, e in evidence.items() if not at_a_start(label))  # not again at its start
            print(f"game {game_id!r}: added {n} sessions ({', '.join(sorted(evidence))})")
        if found.adaptive:
            print(
                f"{found.adaptive} of them drawn by a portfolio (or a contextual director's share): biased against"
                " a candidate it starved early;"
                " a log of fixed directors (an experiment, a mixture) is not"
            )
        if skipped:
            print(f"skipped (no candidate of the portfolio): {skipped}")
    games = store.stored()
    if not games:
        print(f"no portfolio state in {store.directory}")
    for game_id, (totals, starts) in sorted(games.items()):
        print(f"\ngame {game_id!r}")
        for label, start in sorted(starts.items()):
            held = start_within(start, start_range_of(label, totals))
            walled = (
                f" (its sessions' ends: {start:+.2f}; its sessions showed starts beyond worse)" if held != start else ""
            )
            print(f"{label} starts {held:+.2f} from the designer's level{walled}")
        print("| candidate | sessions ended | quits | hours played | mean life s |\n|---|---|---|---|---|")
        for label, e in totals.items():
            print(f"| {label} | {e.finished} | {e.quits} | {e.seconds / 3600:.1f} | {e.mean_life_s:.0f} |")
    return 0


def _whole_option_names(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Options by their whole names only, in every subcommand: argparse would take a prefix of one, and
    `metabrain serve --port 0` then served gRPC on the default port and wrote a ports file named `0`."""
    parser.allow_abbrev = False
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _whole_option_names(child)
    return parser


def build_parser(light: bool = False) -> argparse.ArgumentParser:
    """light: the probe commands alone (`health`), without the subcommands whose modules are heavy to
    import: a Kubernetes exec probe runs every few seconds with a short timeout."""
    parser = argparse.ArgumentParser(prog="metabrain", description="The AI brain for game and VR worlds.")
    sub = parser.add_subparsers(dest="command", required=True)
    health = sub.add_parser(
        "health", help="check a sidecar's gRPC health service (exit 0 when SERVING)", formatter_class=HelpWithDefaults
    )
    health.add_argument("--target", default="127.0.0.1:50051", help="host:port of the gRPC transport")
    health.add_argument("--service", default="metabrain.v1.BrainService", help="'' for the whole server")
    health.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the answer")
    health.set_defaults(func=cmd_health)
    if light:
        return _whole_option_names(parser)
    proto = sub.add_parser("proto", help="print the path of the installed metabrain.v1 schema (.proto)")
    proto.add_argument("--include", action="store_true", help="print the directory to give protoc as -I instead")
    proto.set_defaults(func=cmd_proto)
    ex = sub.add_parser("experiment", help="live experiments: `experiment report RECORDINGS...`")
    exs = ex.add_subparsers(dest="action", required=True)
    rep = exs.add_parser(
        "report", help="which arm keeps players longer, with intervals and tests", formatter_class=HelpWithDefaults
    )
    rep.add_argument("recordings", nargs="+", help=".mbrec files or directories (recorded by `serve --experiment`)")
    rep.add_argument("--control", help="the arm the others are compared with (default: a static arm, else the first)")
    rep.add_argument("--out", default="experiment-out", help="directory for experiment.md, .json and survival.png")
    rep.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples (over players)")
    rep.add_argument("--seed", type=int, default=0)
    rep.set_defaults(func=cmd_experiment)
    pf = sub.add_parser("portfolio", help="what the portfolio director learned, kept in --state-dir")
    pfs = pf.add_subparsers(dest="action", required=True)
    show = pfs.add_parser("show", help="each game's candidates: sessions, quits, play time, mean life")
    show.add_argument("--state-dir", required=True, help="the sidecar's --state-dir")
    show.set_defaults(func=cmd_portfolio)
    imp = pfs.add_parser(
        "import",
        help="add what recordings show about the portfolio's candidates: a portfolio's own sessions, or an "
        "experiment's or a mixture's fixed levels and directors (a playtest, another sidecar)",
    )
    imp.add_argument("recordings", nargs="+", help=".mbrec files or directories")
    imp.add_argument("--state-dir", required=True, help="the sidecar's --state-dir")
    imp.set_defaults(func=cmd_portfolio)
    serve = sub.add_parser("serve", help="run the sidecar (gRPC + WebSocket)", formatter_class=HelpWithDefaults)
    add_serve_args(serve)
    serve.set_defaults(func=cmd_serve)
    for register in _extensions():
        register(sub)
    return _whole_option_names(parser)


def _extensions() -> list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]]:
    """Subcommands that live beside the code they drive (simulator, training, benchmarks)."""
    found = []
    for module in ("sidecar.training.commands", "sim.commands", "sim.bench.commands"):
        try:
            mod = __import__(module, fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                continue
            raise
        found.append(mod.register)
    return found


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(light=argv[:1] == ["health"])
    args = parser.parse_args(argv)
    configure_logging(getattr(args, "log_level", "INFO"), getattr(args, "log_format", "text"))
    try:
        result: int = args.func(args)
    except KeyboardInterrupt:
        print(f"metabrain {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError) as exc:
        # The errors a user's own input or setup causes (a population that does not exist, a file that
        # is not there, a sidecar that does not answer) carry a message that says what to fix: one line,
        # no traceback. METABRAIN_DEBUG=1 shows the traceback.
        if os.environ.get("METABRAIN_DEBUG"):
            raise
        print(f"metabrain {args.command}: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, ConnectionError) else 2
    return result


if __name__ == "__main__":
    raise SystemExit(main())
