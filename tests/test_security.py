"""Token authentication and TLS on both transports."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import grpc
import pytest
from websockets.exceptions import InvalidStatus

from sidecar.model.checkpoint import Checkpoint
from sidecar.wire.schema import pb, pb_grpc
from tests.conftest import make_sidecar
from tests.helpers import GrpcSession, WsSession, hello_req


def _open_ok(client: GrpcSession | WsSession) -> None:
    client.send(hello_req())
    assert client.recv().WhichOneof("kind") == "welcome"


def test_tokens_on_both_transports(tiny_checkpoint: Checkpoint, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("s3cret-token\nother-token\n")
    sc = make_sidecar(tiny_checkpoint, token_file=str(tokens))
    try:
        ch = grpc.insecure_channel(sc.grpc_address)
        for md in ((), (("authorization", "Bearer wrong"),)):
            c = GrpcSession(ch, md)
            c.send(hello_req())
            with pytest.raises(grpc.RpcError) as info:
                c.recv()
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as info:
            pb_grpc.BrainServiceStub(ch).GetInfo(pb.GetInfoRequest(), timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        _open_ok(GrpcSession(ch, (("authorization", "Bearer other-token"),)))
        for headers in ({}, {"Authorization": "Bearer nope"}):
            with pytest.raises(InvalidStatus) as ws_info:
                WsSession(sc.ws_url, headers)
            assert ws_info.value.response.status_code == 401
        _open_ok(WsSession(sc.ws_url, {"Authorization": "Bearer s3cret-token"}))
        _open_ok(WsSession(sc.ws_url + "?token=s3cret-token"))
        ch.close()
    finally:
        sc.stop()


def test_tls_on_both_transports(tiny_checkpoint: Checkpoint, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    sc = make_sidecar(tiny_checkpoint, tls_cert=str(cert), tls_key=str(key))
    try:
        creds = grpc.ssl_channel_credentials(cert.read_bytes())
        secure = grpc.secure_channel(sc.grpc_address, creds)
        _open_ok(GrpcSession(secure))
        plain = grpc.insecure_channel(sc.grpc_address)
        with pytest.raises(grpc.FutureTimeoutError):
            grpc.channel_ready_future(plain).result(timeout=2)
        ctx = ssl.create_default_context(cafile=str(cert))
        assert sc.ws_url.startswith("wss://")
        _open_ok(WsSession(sc.ws_url, ssl=ctx))
        with pytest.raises(Exception):  # noqa: B017 - any handshake failure: plaintext is refused
            WsSession(sc.ws_url.replace("wss://", "ws://"), open_timeout=3)
        secure.close()
        plain.close()
    finally:
        sc.stop()
