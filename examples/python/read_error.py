#!/usr/bin/env python3
"""Reads why a Connector Service call failed, from Python.

Every error a client can act on carries a `google.rpc.ErrorInfo` (a stable `reason` such as
`CONNECTOR_NOT_FOUND`, the domain `connector-service`, and `metadata`) and, when request fields
were wrong, a `google.rpc.BadRequest` naming them. Both travel packed in the `google.rpc.Status`
that gRPC sends in the `grpc-status-details-bin` trailer. This example makes two calls that fail
and prints what a program would branch on:

1. GetConnector of a connector that does not exist: NOT_FOUND, reason CONNECTOR_NOT_FOUND;
2. CreateConnector with an invalid storage account name: INVALID_ARGUMENT, with a field
   violation on `credentials.azure_storage_account_key.account_name` (checked before any cloud
   service is contacted, so nothing is created).

Generate the client into gen/ first (`buf generate` in this directory; see buf.gen.yaml), then
run it with a Python that has grpcio (grpcio-tools brings it):

    python3 read_error.py

The server is $CONNECTOR_ADDRESS (default 127.0.0.1:50051). The API key is $CONNECTOR_API_KEY,
else the contents of $CONNECTOR_API_KEY_FILE (default: data/admin-api-key in the repository,
where a server started there writes its admin key).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import grpc

HERE = Path(__file__).resolve().parent
# The generated modules: connector/v1 and google/rpc under gen/.
sys.path.insert(0, str(HERE / "gen"))

from connector.v1 import connector_service_pb2 as pb  # noqa: E402
from connector.v1 import connector_service_pb2_grpc as pb_grpc  # noqa: E402
from google.rpc import error_details_pb2, status_pb2  # noqa: E402

#: Deadline of each call, in seconds.
CALL_TIMEOUT = 10.0


# example:start
def print_error(method: str, error: grpc.RpcError) -> None:
    """Prints a failed call's code, its ErrorInfo reason and its field violations."""
    print(f"{method}: {error.code().name}")
    status = status_pb2.Status()
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status.ParseFromString(value)
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(info):
            print(f"  reason: {info.reason} (domain {info.domain})")
            for key, value in sorted(info.metadata.items()):
                print(f"  metadata {key}: {value}")
        elif detail.Unpack(bad_request):
            for violation in bad_request.field_violations:
                print(f"  field violation: {violation.field}: {violation.description}")
# example:end


def api_key() -> str:
    """The API key: $CONNECTOR_API_KEY, else the key file's contents."""
    key = os.environ.get("CONNECTOR_API_KEY")
    if key:
        return key
    default_file = HERE.parents[1] / "data" / "admin-api-key"
    path = Path(os.environ.get("CONNECTOR_API_KEY_FILE", default_file))
    try:
        return path.read_text().strip()
    except OSError as error:
        sys.exit(f"read_error.py: no API key: set CONNECTOR_API_KEY, or start the server once "
                 f"so it writes {path} ({error.strerror})")


def main() -> int:
    address = os.environ.get("CONNECTOR_ADDRESS", "127.0.0.1:50051")
    metadata = [("authorization", f"Bearer {api_key()}")]
    with grpc.insecure_channel(address) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=CALL_TIMEOUT)
        except grpc.FutureTimeoutError:
            print(f"read_error.py: cannot reach {address}: is the server running "
                  f"(cargo run -p connector-server)?", file=sys.stderr)
            return 1
        client = pb_grpc.ConnectorServiceStub(channel)

        # A well-formed name of a connector that does not exist.
        missing = "accounts/demo/connectors/01890a5d-ac96-774b-bcce-b302099a8057"
        try:
            client.GetConnector(pb.GetConnectorRequest(name=missing), metadata=metadata,
                                timeout=CALL_TIMEOUT)
            print(f"GetConnector: unexpectedly found {missing}", file=sys.stderr)
            return 1
        except grpc.RpcError as error:
            print_error("GetConnector", error)

        # Storage account names are 3 to 24 lowercase letters and digits.
        request = pb.CreateConnectorRequest(
            parent="accounts/demo",
            connector=pb.Connector(connector_type="connectorTypes/azure-blob-storage",
                                   display_name="Not created"),
            credentials=pb.Credentials(azure_storage_account_key=pb.AzureStorageAccountKey(
                account_name="Not A Storage Account", account_key="a2V5")),
        )
        try:
            client.CreateConnector(request, metadata=metadata, timeout=CALL_TIMEOUT)
            print("CreateConnector: unexpectedly created a connector", file=sys.stderr)
            return 1
        except grpc.RpcError as error:
            print_error("CreateConnector", error)
    return 0


if __name__ == "__main__":
    sys.exit(main())
