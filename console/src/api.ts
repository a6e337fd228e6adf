// The generated client of connector.v1.ConnectorService over gRPC-Web, on the page's own
// origin (the server answers gRPC-Web on its gRPC port). Every call carries the signed-in API
// key as its bearer; the key is read per call, so signing out takes effect at once.

import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { ConnectorService } from "./gen/connector/v1/connector_service_pb";
import { session } from "./session";

const bearer: Interceptor = (next) => (request) => {
  const key = session.apiKey();
  if (key !== null) request.header.set("authorization", `Bearer ${key}`);
  return next(request);
};

export const api = createClient(
  ConnectorService,
  createGrpcWebTransport({
    baseUrl: window.location.origin,
    useBinaryFormat: true,
    interceptors: [bearer],
  }),
);

/** `accounts/{account}`. */
export function accountName(account: string): string {
  return `accounts/${account}`;
}

/** The last segment of a resource name: the connector id, or the connector type id. */
export function lastSegment(name: string): string {
  return name.slice(name.lastIndexOf("/") + 1);
}
