"""Session recordings: msgpack streams, pseudonymised, opt-in.

A file is a header map followed by one record per message: [receive time (s, float), direction
("in" from the game, "out" from the sidecar), protobuf bytes], and a last record [time, "close", why
(UTF-8)] when the sidecar ended the session (a goodbye's reason, "resume window closed", "idle
timeout", "the sidecar stopped"). Any msgpack reader can read it. Every
response is written and flushed to the OS before it leaves the sidecar, so a frame the game has had an
answer to is on disk even if the process is killed the next instant (one write per answered frame);
read_recording() reads a file cut mid-record up to its last complete record.
Player ids are replaced by a keyed hash (HMAC-SHA256) before anything is written.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import logging
import secrets
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import msgpack

from sidecar.errors import RecordingFailed
from sidecar.operations.key_files import read_or_create_key
from sidecar.serving.service import SessionObserver
from sidecar.session import Session
from sidecar.wire.schema import pb

log = logging.getLogger("metabrain.recording")
FORMAT = "metabrain-recording"
FORMAT_VERSION = 1
SCHEMA_VERSION = "metabrain.v1"


class Pseudonymizer:
    def __init__(self, key: bytes) -> None:
        self.key = key
        self._cache: dict[str, str] = {}

    @classmethod
    def from_file(cls, path: str | None) -> Pseudonymizer:
        """The key in `path` (created once, atomically), or a key for this process alone."""
        return cls(read_or_create_key(path) if path else secrets.token_bytes(32))

    def __call__(self, player_id: str) -> str:
        if not player_id:
            return player_id
        out = self._cache.get(player_id)
        if out is None:
            out = "ph_" + hmac.new(self.key, player_id.encode(), hashlib.sha256).hexdigest()[:16]
            if len(self._cache) < 100_000:
                self._cache[player_id] = out
        return out

    def request(self, req: pb.SessionRequest) -> pb.SessionRequest:
        kind = req.WhichOneof("kind")
        if kind == "hello" and req.hello.player_id:
            out = pb.SessionRequest()
            out.CopyFrom(req)
            out.hello.player_id = self(out.hello.player_id)
            return out
        if kind != "frame":
            return req
        out = pb.SessionRequest()
        out.CopyFrom(req)
        f = out.frame
        for p in f.players:
            p.player_id = self(p.player_id)
        if f.HasField("player_table"):  # (touching the field would set it)
            ids = f.player_table.player_ids
            ids[:] = [self(pid) for pid in ids]
        for n in f.npcs:
            n.target_player_id = self(n.target_player_id)
        for e in f.events:
            e.player_id = self(e.player_id)
        return out

    def response(self, resp: pb.SessionResponse) -> pb.SessionResponse:
        if resp.WhichOneof("kind") != "guidance":
            return resp
        out = pb.SessionResponse()
        out.CopyFrom(resp)
        for h in out.guidance.npc_hints:
            h.target_player_id = self(h.target_player_id)
        for i in out.guidance.insights:
            i.player_id = self(i.player_id)
        return out


class RecordingWriter:
    def __init__(self, path: Path, header: dict[str, Any], flush_every: int = 64) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f: BinaryIO = open(path, "wb")  # noqa: SIM115 (closed in close())
        self._packer = msgpack.Packer()
        self.flush_every = flush_every
        self._unflushed = 0
        try:
            self._f.write(
                self._packer.pack(
                    {"format": FORMAT, "format_version": FORMAT_VERSION, "schema_version": SCHEMA_VERSION, **header}
                )
            )
            self._f.flush()
        except OSError:
            self.abandon()
            raise

    def write(self, t: float, direction: str, data: bytes) -> None:
        self._f.write(self._packer.pack([t, direction, data]))
        self._unflushed += 1
        if self._unflushed >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        self._f.flush()
        self._unflushed = 0

    def close(self) -> None:
        if not self._f.closed:
            self._f.flush()
            self._f.close()

    def abandon(self) -> Path:
        """After a failed write: close without caring whether the buffer reaches the disk, and rename the
        file to *.incomplete.mbrec (a rename needs no free space). Returns the new path."""
        with contextlib.suppress(OSError):
            self._f.close()
        target = self.path.with_name(self.path.name.removesuffix(".mbrec") + ".incomplete.mbrec")
        with contextlib.suppress(OSError):
            self.path.rename(target)
            self.path = target
        return self.path


@dataclass
class Recording:
    header: dict[str, Any]
    records: list[tuple[float, str, bytes]] = field(default_factory=list)
    truncated: bool = False

    def requests(self) -> Iterator[tuple[float, pb.SessionRequest]]:
        for t, d, data in self.records:
            if d == "in":
                yield t, pb.SessionRequest.FromString(data)

    def responses(self) -> Iterator[tuple[float, pb.SessionResponse]]:
        for t, d, data in self.records:
            if d == "out":
                yield t, pb.SessionResponse.FromString(data)

    @property
    def close_reason(self) -> str | None:
        """Why the sidecar ended the session (its "close" record), or None: still running when the file
        was read, or the process was killed."""
        for _, d, data in reversed(self.records):
            if d == "close":
                return data.decode("utf-8", "replace")
        return None


def recording_files(sources: Sequence[str | Path]) -> list[Path]:
    """The .mbrec files named, and those in the directories named (each directory's sorted by name);
    a source that does not exist is an error that names it."""
    files: list[Path] = []
    for src in sources:
        path = Path(src)
        if not path.exists():
            raise FileNotFoundError(f"{src}: no such file or directory")
        files += sorted(path.glob("*.mbrec")) if path.is_dir() else [path]
    return files


def read_recording(path: str | Path) -> Recording:
    """Read a recording; a truncated tail (a killed writer) is dropped with a warning."""
    data = Path(path).read_bytes()
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(data)
    header: dict[str, Any] | None = None
    rec = Recording({})
    consumed = 0
    try:
        for obj in unpacker:
            consumed = unpacker.tell()
            if header is None:
                if not isinstance(obj, dict) or obj.get("format") != FORMAT:
                    raise ValueError(f"{path} is not a metabrain recording (no header)")
                header = obj
                continue
            t, d, b = obj
            rec.records.append((float(t), str(d), bytes(b)))
    except (msgpack.ExtraData, msgpack.FormatError, ValueError, TypeError) as exc:
        if header is None:
            raise ValueError(f"{path} is not a metabrain recording: {exc}") from exc
        rec.truncated = True
    if header is None:
        raise ValueError(f"{path} is empty or not a metabrain recording")
    if consumed < len(data):
        rec.truncated = True
    if rec.truncated:
        warnings.warn(
            f"{path}: truncated after {len(rec.records)} complete records ({len(data) - consumed} bytes dropped)",
            stacklevel=2,
        )
    rec.header = header
    return rec


class SessionRecorder(SessionObserver):
    """Records the sessions whose hello consents, into one file per session."""

    def __init__(
        self, directory: str | Path, model_version: str, key_file: str | None = None, retention_days: float = 30.0
    ) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.model_version = model_version
        self.pseudo = Pseudonymizer.from_file(key_file)
        self.writers: dict[str, RecordingWriter] = {}
        self.failures = 0  # recordings stopped by a failed write
        self._purge(retention_days)

    def _purge(self, days: float) -> None:
        cutoff = time.time() - days * 86400
        for f in self.dir.glob("*.mbrec"):
            if f.stat().st_mtime < cutoff:
                f.unlink()

    def needs_messages_of(self, session: Session) -> bool:
        """Only the sessions it records (their hello consents); the others may take the compiled lane."""
        return session.spec.recording_consent

    def _writer(self, session: Session | None) -> RecordingWriter | None:
        return None if session is None else self.writers.get(session.session_id)

    def on_open(self, session: Session, transport: str) -> None:
        hello = session.spec
        if not hello.recording_consent or session.session_id in self.writers:
            return
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        path = self.dir / f"{stamp}-{session.session_id}.mbrec"
        header = {
            "game_id": hello.game_id,
            "model_version": self.model_version,
            "created_at": time.time(),
            "session_id": session.session_id,
            "transport": transport,
            "policy": session.policy,
            # For experiment reports and off-policy evaluation: the arm drawn and its probability, and
            # the player (pseudonymised) whose sessions belong together.
            "experiment": session.experiment,
            "arm": session.arm or session.policy,
            "assignment_propensity": session.assignment_propensity,
            "player": self.pseudo(hello.player_id),
        }
        try:
            w = RecordingWriter(path, header)
        except OSError as exc:
            self.failures += 1
            log.error("could not start a recording: %s", exc, extra={"session_id": session.session_id})
            raise RecordingFailed(
                f"could not start the recording ({exc.strerror or exc}); the session goes on unrecorded",
                field="recording",
            ) from None
        self.writers[session.session_id] = w
        try:
            req = pb.SessionRequest(hello=pb.Hello.FromString(hello.wire))
            w.write(time.time(), "in", self.pseudo.request(req).SerializeToString())
        except OSError as exc:
            self._failed(session, w, exc)

    def on_request(self, session: Session | None, req: pb.SessionRequest, raw: bytes | None) -> None:
        w = self._writer(session)
        if w is not None and req.WhichOneof("kind") != "hello":
            try:
                w.write(time.time(), "in", self.pseudo.request(req).SerializeToString())
            except OSError as exc:
                self._failed(session, w, exc)

    def on_response(self, session: Session | None, resp: pb.SessionResponse) -> None:
        w = self._writer(session)
        if w is not None:
            try:
                w.write(time.time(), "out", self.pseudo.response(resp).SerializeToString())
                w.flush()  # observers run before the transport sends: recorded, then acknowledged
            except OSError as exc:
                self._failed(session, w, exc)

    def _failed(self, session: Session | None, w: RecordingWriter, exc: OSError) -> None:
        """A write failed (a full disk, a lost volume): stop recording this session, keep serving it."""
        assert session is not None
        self.writers.pop(session.session_id, None)
        path = w.abandon()
        self.failures += 1
        why = f"{errno.errorcode.get(exc.errno, 'error')}: {exc.strerror}" if exc.errno else str(exc)
        log.error(
            "recording stopped (%s); kept as %s and marked incomplete",
            why,
            path.name,
            extra={"session_id": session.session_id},
        )
        raise RecordingFailed(
            f"recording stopped ({why}); the file is kept as incomplete and the session goes on unrecorded",
            field="recording",
        )

    def on_close(self, session: Session | None, reason: str) -> None:
        if session is None:
            return
        w = self.writers.pop(session.session_id, None)
        if w is not None:
            _close(w, reason)

    def close_all(self) -> None:
        for w in self.writers.values():
            _close(w, "the sidecar stopped")
        self.writers.clear()


def _close(w: RecordingWriter, reason: str) -> None:
    """End a recording with why the session ended (a failed write here loses only that record)."""
    with contextlib.suppress(OSError):
        w.write(time.time(), "close", reason.encode("utf-8"))
    w.close()
