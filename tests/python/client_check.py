#!/usr/bin/env python3
"""Manages one Azure Blob Storage connector with a Python client generated from proto/.

This is the Python half of `tests/tests/suite/cross_language.rs`: it proves that the published
contract (the .proto files, nothing from the Rust code) is enough for another language to talk
to Connector Service. At run time it:

1. generates Python stubs for every file under the repository's `proto/` directory into a
   temporary directory with `grpc_tools.protoc` (well-known types come from the protos that
   grpcio-tools bundles), and imports them;
2. over a plain insecure channel (or TLS with --ca-file, mTLS adding --cert-file and
   --key-file), checks that a call without an API key (and one with an
   unknown key) fails with UNAUTHENTICATED;
3. with `authorization: Bearer <key>` metadata: creates an Azure connector, finds it in
   ListConnectors, gets it, checks its fields, deletes it, and checks that GetConnector then
   fails with NOT_FOUND.

On success it prints one JSON summary line on stdout and exits 0. On any failure it prints
`client_check: FAILED: <why>` on stderr and exits 1 (2 for bad usage).

Usage:
    CONNECTOR_API_KEY=... AZURE_STORAGE_ACCOUNT_KEY=... \\
        python client_check.py --address 127.0.0.1:50051 --parent accounts/acme \\
        --storage-account store15

The secrets come from the environment so they never show in a process list.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.resources
import json
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Callable, NoReturn

import grpc
from grpc_tools import protoc

#: Deadline of every call, in seconds.
CALL_TIMEOUT = 30.0

#: The repository's contract, found relative to this file (tests/python/ → proto/).
DEFAULT_PROTO_ROOT = Path(__file__).resolve().parents[2] / "proto"

AZURE_TYPE = "connectorTypes/azure-blob-storage"


class CheckFailed(Exception):
    """One expectation about the service did not hold."""


def fail(message: str) -> NoReturn:
    """Stops the check with a message saying what was expected and what happened."""
    raise CheckFailed(message)


def expect(condition: bool, message: str) -> None:
    """Fails with `message` unless `condition` holds."""
    if not condition:
        fail(message)


def generate_stubs(proto_root: Path, out_dir: Path) -> tuple[ModuleType, ModuleType]:
    """Compiles every .proto under `proto_root` into `out_dir`; returns (messages, services)."""
    well_known = Path(str(importlib.resources.files("grpc_tools") / "_proto"))
    protos = sorted(str(path.relative_to(proto_root)) for path in proto_root.rglob("*.proto"))
    expect(bool(protos), f"no .proto files under {proto_root}")
    arguments = [
        "grpc_tools.protoc",
        f"--proto_path={proto_root}",
        f"--proto_path={well_known}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *protos,
    ]
    code = protoc.main(arguments)
    expect(code == 0, f"grpc_tools.protoc exited with {code} for {protos}")
    sys.path.insert(0, str(out_dir))
    messages = importlib.import_module("connector.v1.connector_service_pb2")
    services = importlib.import_module("connector.v1.connector_service_pb2_grpc")
    return messages, services


def expect_rpc_error(
    attempt: Callable[[], object], code: grpc.StatusCode, what: str
) -> grpc.RpcError:
    """Runs `attempt`, which must fail with `code`; returns the error."""
    try:
        result = attempt()
    except grpc.RpcError as error:
        expect(
            error.code() == code,
            f"{what}: expected {code.name}, got {error.code().name}: {error.details()}",
        )
        return error
    fail(f"{what}: expected {code.name}, but the call succeeded with {result!r}")


def call(what: str, method: Callable[..., object], request: object, metadata: tuple) -> object:
    """Calls `method` with `request`, which must succeed; a gRPC error fails the check."""
    try:
        return method(request, metadata=metadata, timeout=CALL_TIMEOUT)
    except grpc.RpcError as error:
        fail(f"{what} failed with {error.code().name}: {error.details()}")


def open_channel(args: argparse.Namespace) -> grpc.Channel:
    """A plaintext channel, or with --ca-file a TLS one (with --cert-file/--key-file: mTLS)."""
    if args.ca_file is None:
        return grpc.insecure_channel(args.address)
    client_key = args.key_file.read_bytes() if args.key_file else None
    client_chain = args.cert_file.read_bytes() if args.cert_file else None
    credentials = grpc.ssl_channel_credentials(
        root_certificates=args.ca_file.read_bytes(),
        private_key=client_key,
        certificate_chain=client_chain,
    )
    return grpc.secure_channel(args.address, credentials)


def run_checks(args: argparse.Namespace, api_key: str, storage_key: str) -> dict[str, object]:
    """Runs every check against the server; returns the summary to print."""
    with tempfile.TemporaryDirectory(prefix="connector-stubs-") as out_dir:
        pb, pb_grpc = generate_stubs(args.proto_root, Path(out_dir))

        with open_channel(args) as channel:
            try:
                grpc.channel_ready_future(channel).result(timeout=CALL_TIMEOUT)
            except grpc.FutureTimeoutError:
                fail(f"no gRPC server answers at {args.address}")
            stub = pb_grpc.ConnectorServiceStub(channel)
            auth = (("authorization", f"Bearer {api_key}"),)

            # Without a key, or with one the server does not know: UNAUTHENTICATED.
            expect_rpc_error(
                lambda: stub.ListConnectorTypes(
                    pb.ListConnectorTypesRequest(), timeout=CALL_TIMEOUT
                ),
                grpc.StatusCode.UNAUTHENTICATED,
                "ListConnectorTypes without an API key",
            )
            expect_rpc_error(
                lambda: stub.ListConnectors(
                    pb.ListConnectorsRequest(parent=args.parent),
                    metadata=(("authorization", "Bearer not-a-key-of-this-server"),),
                    timeout=CALL_TIMEOUT,
                ),
                grpc.StatusCode.UNAUTHENTICATED,
                "ListConnectors with an unknown API key",
            )

            # Create.
            created = call(
                "CreateConnector",
                stub.CreateConnector,
                pb.CreateConnectorRequest(
                    parent=args.parent,
                    connector=pb.Connector(
                        connector_type=AZURE_TYPE, display_name=args.display_name
                    ),
                    credentials=pb.Credentials(
                        azure_storage_account_key=pb.AzureStorageAccountKey(
                            account_name=args.storage_account, account_key=storage_key
                        )
                    ),
                ),
                auth,
            )
            expect(
                created.name.startswith(f"{args.parent}/connectors/"),
                f"created connector name {created.name!r} is not under {args.parent}",
            )
            expect(
                created.connector_type == AZURE_TYPE,
                f"connector_type is {created.connector_type!r}",
            )
            expect(
                created.display_name == args.display_name,
                f"display_name is {created.display_name!r}, expected {args.display_name!r}",
            )
            expect(
                created.state == pb.Connector.STATE_AUTHORIZED,
                f"state is {pb.Connector.State.Name(created.state)}, expected STATE_AUTHORIZED",
            )
            expect(
                created.deauthorization_reason == pb.Connector.DEAUTHORIZATION_REASON_UNSPECIFIED,
                "a new connector has a deauthorization reason",
            )
            expect(
                created.auth_method == pb.AUTH_METHOD_ACCOUNT_KEY,
                f"auth_method is {pb.AuthMethod.Name(created.auth_method)}",
            )
            expect(
                created.external_account.id == args.storage_account,
                f"external_account.id is {created.external_account.id!r}",
            )
            expect(created.HasField("create_time"), "create_time is not set")
            expect(bool(created.etag), "etag is empty")

            # List: the new connector is there, and it is the only one of this parent.
            listed = call(
                "ListConnectors",
                stub.ListConnectors,
                pb.ListConnectorsRequest(parent=args.parent),
                auth,
            )
            names = [connector.name for connector in listed.connectors]
            expect(names == [created.name], f"ListConnectors({args.parent}) returned {names}")

            # Get: the same connector as created.
            fetched = call(
                "GetConnector", stub.GetConnector, pb.GetConnectorRequest(name=created.name), auth
            )
            expect(fetched == created, f"GetConnector returned {fetched} instead of {created}")

            # Delete, then it is gone.
            call(
                "DeleteConnector",
                stub.DeleteConnector,
                pb.DeleteConnectorRequest(name=created.name, etag=fetched.etag),
                auth,
            )
            expect_rpc_error(
                lambda: stub.GetConnector(
                    pb.GetConnectorRequest(name=created.name), metadata=auth, timeout=CALL_TIMEOUT
                ),
                grpc.StatusCode.NOT_FOUND,
                "GetConnector after DeleteConnector",
            )

    return {
        "ok": True,
        "connector": created.name,
        "display_name": created.display_name,
        "state": pb.Connector.State.Name(created.state),
        "external_account": created.external_account.id,
        "listed": len(names),
        "get_after_delete": grpc.StatusCode.NOT_FOUND.name,
        "without_key": grpc.StatusCode.UNAUTHENTICATED.name,
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Reads the command line."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Environment: CONNECTOR_API_KEY (API key), AZURE_STORAGE_ACCOUNT_KEY (storage key).",
    )
    parser.add_argument("--address", required=True, help="server address, HOST:PORT")
    parser.add_argument("--ca-file", type=Path, help="PEM CA to verify the server with: TLS")
    parser.add_argument("--cert-file", type=Path, help="PEM client certificate chain (mTLS)")
    parser.add_argument("--key-file", type=Path, help="PEM client private key (mTLS)")
    parser.add_argument("--parent", required=True, help="customer account, accounts/{account}")
    parser.add_argument("--storage-account", required=True, help="Azure storage account name")
    parser.add_argument(
        "--display-name", default="Created from Python", help="display name of the connector"
    )
    parser.add_argument(
        "--proto-root", type=Path, default=DEFAULT_PROTO_ROOT, help="directory of the .proto files"
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    """Runs the check; returns the process exit code."""
    args = parse_args(argv)
    api_key = os.environ.get("CONNECTOR_API_KEY", "")
    storage_key = os.environ.get("AZURE_STORAGE_ACCOUNT_KEY", "")
    if not api_key or not storage_key:
        print(
            "client_check: CONNECTOR_API_KEY and AZURE_STORAGE_ACCOUNT_KEY must be set",
            file=sys.stderr,
        )
        return 2
    try:
        summary = run_checks(args, api_key, storage_key)
    except CheckFailed as failure:
        print(f"client_check: FAILED: {failure}", file=sys.stderr)
        return 1
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
