"""The one typed error tree of the sidecar.

Every refusal the protocol core makes is one of these. Each class names its wire ErrorCode and
whether the session survives it; the transports map them to a gRPC status or a WebSocket close code
in exactly one place (sidecar/transports/status.py).
"""

from __future__ import annotations

from typing import Any, cast

from sidecar.wire.schema import pb

__all__ = [
    "ConnectionLimitExceeded",
    "IdleTimeout",
    "Internal",
    "InvalidArgument",
    "InvalidHello",
    "LimitExceeded",
    "Malformed",
    "MessageTooLarge",
    "MetabrainError",
    "ModelUnavailable",
    "ProtocolViolation",
    "RecordingFailed",
    "ResumeRejected",
    "SessionLimitExceeded",
    "SessionTakenOver",
    "ShuttingDown",
    "StaleSequence",
    "Unauthenticated",
    "UnsupportedVersion",
]


class MetabrainError(Exception):
    """Base of every error the sidecar reports to a client."""

    code: int = pb.ERROR_CODE_INTERNAL
    fatal: bool = True

    def __init__(self, message: str, *, field: str = "", sequence: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.sequence = sequence

    def to_proto(self) -> pb.Error:
        return pb.Error(
            code=cast(Any, self.code), message=self.message, field=self.field, sequence=self.sequence, fatal=self.fatal
        )


class InvalidArgument(MetabrainError):
    """A field is malformed, not finite or out of range; the frame is dropped, the session goes on."""

    code = pb.ERROR_CODE_INVALID_ARGUMENT
    fatal = False


class InvalidHello(InvalidArgument):
    """The hello itself is invalid: there is no session to go on with."""

    fatal = True


class LimitExceeded(MetabrainError):
    """A count, size or rate limit was exceeded; the message is dropped, the session goes on."""

    code = pb.ERROR_CODE_LIMIT_EXCEEDED
    fatal = False


class MessageTooLarge(LimitExceeded):
    """A message over max_message_bytes; transports refuse it before parsing."""


class SessionLimitExceeded(LimitExceeded):
    """No room for another session."""

    fatal = True


class ConnectionLimitExceeded(LimitExceeded):
    """No room for another stream (max_connections)."""

    fatal = True


class Malformed(MetabrainError):
    """Bytes that do not parse as a SessionRequest: the stream can no longer be trusted."""

    code = pb.ERROR_CODE_MALFORMED
    fatal = True


class ProtocolViolation(MetabrainError):
    """A message out of protocol order, such as a frame before the hello."""

    code = pb.ERROR_CODE_FAILED_PRECONDITION
    fatal = True


class UnsupportedVersion(MetabrainError):
    code = pb.ERROR_CODE_UNSUPPORTED_VERSION
    fatal = True


class StaleSequence(MetabrainError):
    """A duplicate or older frame; dropped, the session goes on."""

    code = pb.ERROR_CODE_STALE_SEQUENCE
    fatal = False


class ResumeRejected(MetabrainError):
    code = pb.ERROR_CODE_RESUME_REJECTED
    fatal = True


class Unauthenticated(MetabrainError):
    code = pb.ERROR_CODE_UNAUTHENTICATED
    fatal = True


class ModelUnavailable(MetabrainError):
    """The model failed this tick; the guidance carries the designer's defaults."""

    code = pb.ERROR_CODE_MODEL_UNAVAILABLE
    fatal = False


class ShuttingDown(MetabrainError):
    code = pb.ERROR_CODE_SHUTTING_DOWN
    fatal = True


class IdleTimeout(MetabrainError):
    code = pb.ERROR_CODE_IDLE_TIMEOUT
    fatal = True


class Internal(MetabrainError):
    code = pb.ERROR_CODE_INTERNAL
    fatal = True


class SessionTakenOver(MetabrainError):
    """The session was resumed on another stream (with its resume token): this stream is over."""

    code = pb.ERROR_CODE_FAILED_PRECONDITION
    fatal = True


class RecordingFailed(MetabrainError):
    """The session's recording could not be written; it was closed, the session goes on unrecorded."""

    code = pb.ERROR_CODE_RECORDING_FAILED
    fatal = False
