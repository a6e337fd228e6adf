// Command read-error reads why a Connector Service call failed, from Go.
//
// Every error a client can act on carries a google.rpc.ErrorInfo (a stable Reason such as
// CONNECTOR_NOT_FOUND, the domain connector-service, and Metadata) and, when request fields were
// wrong, a google.rpc.BadRequest naming them. Both travel packed in the google.rpc.Status that
// gRPC sends in the grpc-status-details-bin trailer; grpc-go's status package decodes it, and
// Details() unpacks each detail into genproto's errdetails types. This program makes two calls
// that fail and prints what a program would branch on:
//
//  1. GetConnector of a connector that does not exist: NotFound, reason CONNECTOR_NOT_FOUND;
//  2. CreateConnector with an invalid storage account name: InvalidArgument, with a field
//     violation on credentials.azure_storage_account_key.account_name (checked before any cloud
//     service is contacted, so nothing is created).
//
// Generate the client into gen/ first (`buf generate` here; see buf.gen.yaml), then `go run .`.
// The server is $CONNECTOR_ADDRESS (default 127.0.0.1:50051). The API key is $CONNECTOR_API_KEY,
// else the contents of $CONNECTOR_API_KEY_FILE (default: data/admin-api-key in the repository,
// where a server started there writes its admin key).
package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	connectorv1 "example.com/connector-service/examples/go/gen/connector/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// callTimeout bounds each call.
const callTimeout = 10 * time.Second

// example:start

// printError prints a failed call's code, its ErrorInfo reason and its field violations.
func printError(method string, err error) {
	st := status.Convert(err) // the Status from the grpc-status-details-bin trailer
	fmt.Printf("%s: %s\n", method, st.Code())
	for _, detail := range st.Details() {
		switch detail := detail.(type) {
		case *errdetails.ErrorInfo:
			fmt.Printf("  reason: %s (domain %s)\n", detail.Reason, detail.Domain)
			keys := make([]string, 0, len(detail.Metadata))
			for key := range detail.Metadata {
				keys = append(keys, key)
			}
			sort.Strings(keys)
			for _, key := range keys {
				fmt.Printf("  metadata %s: %s\n", key, detail.Metadata[key])
			}
		case *errdetails.BadRequest:
			for _, violation := range detail.FieldViolations {
				fmt.Printf("  field violation: %s: %s\n", violation.Field, violation.Description)
			}
		}
	}
}

// example:end

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "read-error: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	address := envOr("CONNECTOR_ADDRESS", "127.0.0.1:50051")
	key, err := apiKey()
	if err != nil {
		return err
	}

	dial, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	conn, err := grpc.DialContext(dial, address, grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		return fmt.Errorf("cannot reach %s: is the server running (cargo run -p connector-server)? %w", address, err)
	}
	defer conn.Close()
	client := connectorv1.NewConnectorServiceClient(conn)

	call := func() (context.Context, context.CancelFunc) {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key), cancel
	}

	// A well-formed name of a connector that does not exist.
	missing := "accounts/demo/connectors/01890a5d-ac96-774b-bcce-b302099a8057"
	ctx, done := call()
	_, err = client.GetConnector(ctx, &connectorv1.GetConnectorRequest{Name: missing})
	done()
	if err == nil {
		return fmt.Errorf("GetConnector unexpectedly found %s", missing)
	}
	printError("GetConnector", err)

	// Storage account names are 3 to 24 lowercase letters and digits.
	ctx, done = call()
	_, err = client.CreateConnector(ctx, &connectorv1.CreateConnectorRequest{
		Parent: "accounts/demo",
		Connector: &connectorv1.Connector{
			ConnectorType: "connectorTypes/azure-blob-storage",
			DisplayName:   "Not created",
		},
		Credentials: &connectorv1.Credentials{
			Kind: &connectorv1.Credentials_AzureStorageAccountKey{
				AzureStorageAccountKey: &connectorv1.AzureStorageAccountKey{
					AccountName: "Not A Storage Account",
					AccountKey:  "a2V5",
				},
			},
		},
	})
	done()
	if err == nil {
		return fmt.Errorf("CreateConnector unexpectedly created a connector")
	}
	printError("CreateConnector", err)
	return nil
}

// apiKey is $CONNECTOR_API_KEY, else the contents of the key file.
func apiKey() (string, error) {
	if key := os.Getenv("CONNECTOR_API_KEY"); key != "" {
		return key, nil
	}
	path := envOr("CONNECTOR_API_KEY_FILE", "../../data/admin-api-key")
	key, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("no API key: set CONNECTOR_API_KEY, or start the server once so it writes %s (%w)", path, err)
	}
	return strings.TrimSpace(string(key)), nil
}

func envOr(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}
