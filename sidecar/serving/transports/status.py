"""The one place where the error tree meets transport status codes."""

from __future__ import annotations

from http import HTTPStatus

import grpc

from sidecar import errors

# Most specific first: the first isinstance match wins.
_GRPC: tuple[tuple[type[errors.MetabrainError], grpc.StatusCode], ...] = (
    (errors.SessionLimitExceeded, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.MessageTooLarge, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.LimitExceeded, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.Malformed, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.ProtocolViolation, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.UnsupportedVersion, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.StaleSequence, grpc.StatusCode.OUT_OF_RANGE),
    (errors.ResumeRejected, grpc.StatusCode.NOT_FOUND),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.ModelUnavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.ShuttingDown, grpc.StatusCode.UNAVAILABLE),
    (errors.IdleTimeout, grpc.StatusCode.DEADLINE_EXCEEDED),
    (errors.Internal, grpc.StatusCode.INTERNAL),
)

# WebSocket close codes: 1008 policy violation, 1009 too big, 1011 internal, 1001 going away,
# 4000-4999 application codes (4000 + the wire ErrorCode).
_WS: tuple[tuple[type[errors.MetabrainError], int], ...] = (
    (errors.MessageTooLarge, 1009),
    (errors.ShuttingDown, 1001),
    (errors.Unauthenticated, 1008),
    (errors.Internal, 1011),
)


def grpc_status(err: errors.MetabrainError) -> grpc.StatusCode:
    for cls, code in _GRPC:
        if isinstance(err, cls):
            return code
    return grpc.StatusCode.INTERNAL


def ws_close_code(err: errors.MetabrainError) -> int:
    for cls, code in _WS:
        if isinstance(err, cls):
            return code
    return 4000 + int(err.code)


# Refusals before the WebSocket upgrade are HTTP responses.
_HTTP: tuple[tuple[type[errors.MetabrainError], HTTPStatus], ...] = (
    (errors.Unauthenticated, HTTPStatus.UNAUTHORIZED),
    (errors.LimitExceeded, HTTPStatus.SERVICE_UNAVAILABLE),
    (errors.ShuttingDown, HTTPStatus.SERVICE_UNAVAILABLE),
)


def ws_http_status(err: errors.MetabrainError) -> HTTPStatus:
    for cls, status in _HTTP:
        if isinstance(err, cls):
            return status
    return HTTPStatus.BAD_REQUEST


def ws_reason(err: errors.MetabrainError) -> str:
    """Close reasons are limited to 123 bytes by RFC 6455."""
    return err.message.encode()[:120].decode("utf-8", "ignore")
