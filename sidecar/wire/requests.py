"""Requests as the protocol core sees them: bytes or a SessionRequest in, a plain request out.

The protocol (sidecar/protocol.py) decides what to do with a hello, a frame or a goodbye; it never
touches a protobuf message. What it needs of one it asks here: a hello's checked SessionSpec, a
frame's sequence and game time, then (once the protocol has checked the order, rate and sequence)
its checked numbers as a RawFrame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError

from sidecar.errors import Malformed, MessageTooLarge
from sidecar.features.raw import RawFrame
from sidecar.limits import Limits
from sidecar.session import SessionSpec
from sidecar.validation import validate_raw
from sidecar.wire.checks import validate_frame_counts, validate_hello
from sidecar.wire.frames import extract
from sidecar.wire.hello import spec_of
from sidecar.wire.schema import pb
from sidecar.wire.table_reader import read_compiled

__all__ = [
    "GOODBYE_TAG",
    "FrameRequest",
    "GoodbyeRequest",
    "HelloRequest",
    "Request",
    "RequestMessage",
    "decode",
    "from_message",
    "kind_of",
]

RequestMessage = pb.SessionRequest  # what observers that record the wire (recording, metrics) are given

# The first byte of a goodbye's bytes as a client serializes one (its oneof field, length-delimited): what
# the stream's message-rate check looks at before parsing anything (service.py).
GOODBYE_TAG = bytes([pb.SessionRequest.DESCRIPTOR.fields_by_name["goodbye"].number << 3 | 2])


@dataclass(frozen=True)
class HelloRequest:
    protocol_version: int
    message: pb.Hello

    def spec(self, limits: Limits, default_policy: str) -> SessionSpec:
        """The hello's checked contents (raises InvalidHello or LimitExceeded naming the field)."""
        validate_hello(self.message, limits, default_policy)
        return spec_of(self.message)


@dataclass
class FrameRequest:
    sequence: int
    game_time: float
    message: pb.Frame
    data: bytes | None = None  # the SessionRequest's bytes, for the compiled reader (table_reader.py)
    _read: RawFrame | None = field(default=None, repr=False, compare=False)

    def check_counts(self, limits: Limits, knobs: int) -> None:
        """Counts, sizes, strings and table shapes, before any per-element work (raises naming the field).
        A table-form frame is read and checked whole here by the compiled reader when it can; any frame
        it does not accept takes the Python checks, which name what is wrong."""
        if self.data is not None:
            self._read = read_compiled(self.data, limits, knobs)
            if self._read is not None:
                return
        validate_frame_counts(self.message, limits, knobs)

    def read(self, limits: Limits, knob_names: Sequence[str]) -> RawFrame:
        """The frame's numbers as arrays, checked (raises naming the field); after check_counts."""
        if self._read is not None:
            return self._read
        raw = extract(self.message, knob_names)
        validate_raw(raw, limits, self.sequence)
        return raw


@dataclass(frozen=True)
class GoodbyeRequest:
    reason: str
    cut_short: bool = False  # the game ended the session for its own reasons (Goodbye.cut_short)


Request = HelloRequest | FrameRequest | GoodbyeRequest


def from_message(req: pb.SessionRequest, data: bytes | None = None) -> Request:
    """`data`: the bytes `req` was parsed from, when there are any (a frame may then be read from them
    by the compiled reader)."""
    kind = req.WhichOneof("kind")
    if kind == "frame":
        f = req.frame
        return FrameRequest(f.sequence, f.game_time, f, data)
    if kind == "hello":
        return HelloRequest(req.hello.protocol_version, req.hello)
    if kind == "goodbye":
        return GoodbyeRequest(req.goodbye.reason, req.goodbye.cut_short)
    raise Malformed("SessionRequest has none of hello, frame or goodbye set", field="kind")


def decode(data: bytes, limits: Limits, *, compiled: bool = True) -> tuple[Request, RequestMessage]:
    """Bytes from the wire -> the plain request and its message (for the observers that record it),
    refusing oversized or malformed input. `compiled`: a frame may be read by the compiled reader
    (False: every frame by the Python path, as `metabrain serve --pure-python`)."""
    if len(data) > limits.max_message_bytes:
        raise MessageTooLarge(
            f"message is {len(data)} bytes; the limit is max_message_bytes={limits.max_message_bytes}",
            field="max_message_bytes",
        )
    req = pb.SessionRequest()
    try:
        req.ParseFromString(data)
    except (DecodeError, RuntimeError) as exc:
        raise Malformed(f"bytes are not a metabrain.v1.SessionRequest: {exc}") from exc
    return from_message(req, data if compiled else None), req


def kind_of(message: RequestMessage) -> str:
    """ "hello", "frame" or "goodbye" (for observers given the message)."""
    return message.WhichOneof("kind") or ""
