"""`metabrain replay`: re-send recorded frames to a sidecar and report how its guidance differs.

Frames are re-sent one at a time, each after the previous one's answer, so every frame gets guidance
and the comparison is frame by frame. The baseline is the guidance in the recording, or a second
sidecar (`--against`). A recording whose live session had superseded frames cannot match exactly:
those frames were folded into later ones live, and the report counts them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np

from sidecar.features import KnobNormalizer
from sidecar.recording import read_recording
from sidecar.schema import pb, pb_grpc


class LockstepClient:
    def __init__(self, target: str, token: str = "") -> None:
        self.channel = grpc.insecure_channel(target)
        grpc.channel_ready_future(self.channel).result(timeout=30)
        self._q: queue.Queue[pb.SessionRequest | None] = queue.Queue()
        md = (("authorization", f"Bearer {token}"),) if token else ()
        self._call = pb_grpc.BrainServiceStub(self.channel).Session(self._gen(), metadata=md)
        self._responses: Iterator[pb.SessionResponse] = iter(self._call)
        self._lock = threading.Lock()

    def _gen(self) -> Iterator[pb.SessionRequest]:
        while (item := self._q.get()) is not None:
            yield item

    def hello(self, h: pb.Hello) -> pb.Welcome:
        self._q.put(pb.SessionRequest(hello=h))
        resp = next(self._responses)
        if resp.WhichOneof("kind") != "welcome":
            raise RuntimeError(f"sidecar refused the replayed hello: {resp}")
        return resp.welcome

    def frame(self, f: pb.Frame) -> pb.SessionResponse:
        self._q.put(pb.SessionRequest(frame=f))
        for resp in self._responses:
            kind = resp.WhichOneof("kind")
            if kind == "guidance" and resp.guidance.sequence == f.sequence:
                return resp
            if kind in ("error", "superseded"):
                return resp
        raise RuntimeError("the sidecar closed the stream during replay")

    def close(self) -> None:
        self._q.put(None)
        self.channel.close()


@dataclass
class ReplayResult:
    file: str
    frames: int
    compared: int
    exact: int
    max_knob_diff: float
    mean_knob_diff: float
    max_p_fail_diff: float
    recorded_superseded: int
    baseline_difficulty: list[float] = field(default_factory=list)
    replay_difficulty: list[float] = field(default_factory=list)


def _difficulty(g: pb.Guidance, knobs: KnobNormalizer) -> float:
    by_name = {k.name: k.value for k in g.knobs}
    return knobs.to_difficulty(np.array([by_name.get(n, np.nan) for n in knobs.names], np.float32))


def replay_file(
    path: str | Path, target: str, against: str | None = None, policy: str | None = None, token: str = ""
) -> ReplayResult:
    rec = read_recording(path)
    requests = [r for _, r in rec.requests()]
    hello = next(r.hello for r in requests if r.WhichOneof("kind") == "hello")
    h = pb.Hello()
    h.CopyFrom(hello)
    h.resume_token = ""
    h.recording_consent = False
    if policy:
        h.policy = policy
    knobs = KnobNormalizer.from_specs(list(h.knobs))
    recorded = {r.guidance.sequence: r.guidance for _, r in rec.responses() if r.WhichOneof("kind") == "guidance"}
    superseded = sum(1 for _, r in rec.responses() if r.WhichOneof("kind") == "superseded")
    clients = [LockstepClient(target, token)] + ([LockstepClient(against, token)] if against else [])
    for c in clients:
        c.hello(h)
    res = ReplayResult(str(path), 0, 0, 0, 0.0, 0.0, 0.0, superseded)
    diffs: list[float] = []
    try:
        for r in requests:
            if r.WhichOneof("kind") != "frame":
                continue
            res.frames += 1
            answers = [c.frame(r.frame) for c in clients]
            new = answers[0].guidance if answers[0].WhichOneof("kind") == "guidance" else None
            base = (
                answers[1].guidance
                if len(answers) > 1 and answers[1].WhichOneof("kind") == "guidance"
                else recorded.get(r.frame.sequence)
                if not against
                else None
            )
            if new is None or base is None:
                continue
            res.compared += 1
            a = np.array([k.value for k in new.knobs])
            b = np.array([k.value for k in base.knobs])
            d = float(np.max(np.abs(a - b))) if a.shape == b.shape and a.size else float("inf")
            pf = abs(new.insights[0].p_fail - base.insights[0].p_fail) if new.insights and base.insights else 0.0
            diffs.append(d)
            res.max_p_fail_diff = max(res.max_p_fail_diff, pf)
            res.exact += d <= 1e-6 and pf <= 1e-6
            res.baseline_difficulty.append(_difficulty(base, knobs))
            res.replay_difficulty.append(_difficulty(new, knobs))
    finally:
        for c in clients:
            c.close()
    res.max_knob_diff = max(diffs) if diffs else 0.0
    res.mean_knob_diff = float(np.mean(diffs)) if diffs else 0.0
    return res


def report_table(results: list[ReplayResult]) -> str:
    lines = [
        f"{'recording':<40} {'frames':>6} {'compared':>8} {'exact':>6} {'max knob diff':>13} {'mean':>8} "
        f"{'max p_fail diff':>15} {'superseded live':>15}"
    ]
    for r in results:
        lines.append(
            f"{Path(r.file).name[:40]:<40} {r.frames:>6} {r.compared:>8} {r.exact:>6} {r.max_knob_diff:>13.6f} "
            f"{r.mean_knob_diff:>8.4f} {r.max_p_fail_diff:>15.6f} {r.recorded_superseded:>15}"
        )
    return "\n".join(lines)


def report_png(results: list[ReplayResult], path: str | Path, baseline: str, candidate: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = results[:6]
    fig, axes = plt.subplots(len(shown), 1, figsize=(10, 2.2 * len(shown) + 0.5), squeeze=False)
    for ax, r in zip(axes[:, 0], shown, strict=True):
        ax.plot(r.baseline_difficulty, label=baseline, lw=2, alpha=0.7)
        ax.plot(r.replay_difficulty, label=candidate, lw=1, ls="--")
        ax.set_ylabel("difficulty")
        ax.set_title(Path(r.file).name, fontsize=8)
        ax.set_ylim(-0.02, 1.02)
    axes[0, 0].legend(fontsize=8)
    axes[-1, 0].set_xlabel("frame")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
