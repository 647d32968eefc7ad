"""The one typed error tree of the sidecar.

Every refusal the protocol core makes is one of these. Each class names its wire ErrorCode and
whether the session survives it; the transports map them to a gRPC status or a WebSocket close code
in exactly one place (sidecar/serving/transports/status.py).
"""

from __future__ import annotations

import enum

__all__ = [
    "ConnectionLimitExceeded",
    "ErrorCode",
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


class ErrorCode(enum.IntEnum):
    """metabrain.v1.ErrorCode without its prefix (tests/test_errors.py checks it against the proto)."""

    UNSPECIFIED = 0
    INVALID_ARGUMENT = 1
    FAILED_PRECONDITION = 2
    UNSUPPORTED_VERSION = 3
    LIMIT_EXCEEDED = 4
    STALE_SEQUENCE = 5
    RESUME_REJECTED = 6
    UNAUTHENTICATED = 7
    MODEL_UNAVAILABLE = 8
    SHUTTING_DOWN = 9
    MALFORMED = 10
    IDLE_TIMEOUT = 11
    INTERNAL = 12
    RECORDING_FAILED = 13


class MetabrainError(Exception):
    """Base of every error the sidecar reports to a client."""

    code: ErrorCode = ErrorCode.INTERNAL
    fatal: bool = True

    def __init__(self, message: str, *, field: str = "", sequence: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.sequence = sequence


class InvalidArgument(MetabrainError):
    """A field is malformed, not finite or out of range; the frame is dropped, the session goes on."""

    code = ErrorCode.INVALID_ARGUMENT
    fatal = False


class InvalidHello(InvalidArgument):
    """The hello itself is invalid: there is no session to go on with."""

    fatal = True


class LimitExceeded(MetabrainError):
    """A count, size or rate limit was exceeded; the message is dropped, the session goes on."""

    code = ErrorCode.LIMIT_EXCEEDED
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

    code = ErrorCode.MALFORMED
    fatal = True


class ProtocolViolation(MetabrainError):
    """A message out of protocol order, such as a frame before the hello."""

    code = ErrorCode.FAILED_PRECONDITION
    fatal = True


class UnsupportedVersion(MetabrainError):
    code = ErrorCode.UNSUPPORTED_VERSION
    fatal = True


class StaleSequence(MetabrainError):
    """A duplicate or older frame; dropped, the session goes on."""

    code = ErrorCode.STALE_SEQUENCE
    fatal = False


class ResumeRejected(MetabrainError):
    code = ErrorCode.RESUME_REJECTED
    fatal = True


class Unauthenticated(MetabrainError):
    code = ErrorCode.UNAUTHENTICATED
    fatal = True


class ModelUnavailable(MetabrainError):
    """The model failed this tick; the guidance carries the designer's defaults."""

    code = ErrorCode.MODEL_UNAVAILABLE
    fatal = False


class ShuttingDown(MetabrainError):
    code = ErrorCode.SHUTTING_DOWN
    fatal = True


class IdleTimeout(MetabrainError):
    code = ErrorCode.IDLE_TIMEOUT
    fatal = True


class Internal(MetabrainError):
    code = ErrorCode.INTERNAL
    fatal = True


class SessionTakenOver(MetabrainError):
    """The session was resumed on another stream (with its resume token): this stream is over."""

    code = ErrorCode.FAILED_PRECONDITION
    fatal = True


class RecordingFailed(MetabrainError):
    """The session's recording could not be written; it was closed, the session goes on unrecorded."""

    code = ErrorCode.RECORDING_FAILED
    fatal = False
