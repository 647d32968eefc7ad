"""The one seam to the generated protobuf code: everything else imports messages from here."""

from sidecar.gen.metabrain.v1 import metabrain_pb2 as pb
from sidecar.gen.metabrain.v1 import metabrain_pb2_grpc as pb_grpc
from sidecar.versions import PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS

SERVICE_NAME = "metabrain.v1.BrainService"

__all__ = ["PROTOCOL_VERSION", "SERVICE_NAME", "SUPPORTED_PROTOCOL_VERSIONS", "pb", "pb_grpc"]
