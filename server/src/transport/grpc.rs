//! The `connector.v1.ConnectorService` handlers. Each one is a few lines: authorize the caller,
//! convert the request into domain values, call the domain, convert the answer back.

use connector_api::pb::{self, connector_service_server::ConnectorService};
use tonic::{Request, Response, Status};

use super::{
    auth::caller,
    conversions::{self, credential_violations, credentials, labels},
    filter,
    names::{connector_type_id, parse_account, parse_connector, parse_connector_type},
    page_token::PageTokens,
    watch::EventFeed,
};
use crate::domain::{
    Access, Authorizations, Callback, Error, Events, Lifecycle, Parsed, ReturnTo,
    connector_type::ConnectorTypeId,
    model::{ConnectorId, DisplayName},
};
use crate::{access::Capability, audit};

/// Default and maximum `page_size` of `ListConnectors`.
const DEFAULT_PAGE_SIZE: u64 = 50;
const MAX_PAGE_SIZE: u64 = 1000;

/// The gRPC face of the domain's services.
#[derive(Debug, Clone)]
pub(crate) struct ConnectorApi {
    /// Create, list, update, reauthorize, delete.
    lifecycle: Lifecycle,
    /// OAuth 2.0 linking.
    authorizations: Authorizations,
    /// Access tokens, revealed credentials and transfer reports.
    access: Access,
    /// The event log, listed page by page.
    events: Events,
    page_tokens: PageTokens,
    /// Flips to `true` when the server shuts down, ending event watches.
    shutdown: tokio::sync::watch::Receiver<bool>,
    /// Where event watches get new events.
    feed: EventFeed,
}

impl ConnectorApi {
    pub(crate) fn new(
        lifecycle: Lifecycle,
        authorizations: Authorizations,
        access: Access,
        events: Events,
        page_tokens: PageTokens,
        shutdown: tokio::sync::watch::Receiver<bool>,
        feed: EventFeed,
    ) -> Self {
        Self {
            lifecycle,
            authorizations,
            access,
            events,
            page_tokens,
            shutdown,
            feed,
        }
    }

    /// The credentials of a create or reauthorize request for `connector_type`: OAuth 2.0 types
    /// take none; the fields must be the catalogue's, and the provider judges their values
    /// (violations named after the request field they came in).
    fn credentials(
        &self,
        connector_type: ConnectorTypeId,
        given: Option<pb::Credentials>,
    ) -> Result<Parsed, Error> {
        if !connector_type.info().auth_method.uses_credentials() {
            return Err(Error::OAuthAuthorizationRequired(connector_type));
        }
        let (fields, arm) = credentials(self.lifecycle.catalogue(), connector_type, given)?;
        self.lifecycle
            .parse_credentials(connector_type, &fields)?
            .map_err(|errors| credential_violations(arm, errors))
    }
}

type Reply<T> = Result<Response<T>, Status>;

/// A list `page_size`: default 50, capped at 1000, never negative.
fn page_size(requested: i32) -> Result<u64, Error> {
    match requested {
        size if size < 0 => Err(Error::invalid("page_size", "must not be negative")),
        0 => Ok(DEFAULT_PAGE_SIZE),
        size => Ok((size as u64).min(MAX_PAGE_SIZE)),
    }
}

#[tonic::async_trait]
impl ConnectorService for ConnectorApi {
    async fn list_connector_types(
        &self,
        _request: Request<pb::ListConnectorTypesRequest>,
    ) -> Reply<pb::ListConnectorTypesResponse> {
        let lifecycle = &self.lifecycle;
        Ok(Response::new(pb::ListConnectorTypesResponse {
            connector_types: lifecycle
                .catalogue()
                .iter()
                .map(|id| conversions::connector_type(id, lifecycle.is_configured(id)))
                .collect(),
        }))
    }

    async fn get_connector_type(
        &self,
        request: Request<pb::GetConnectorTypeRequest>,
    ) -> Reply<pb::ConnectorType> {
        let id = connector_type_id("name", &request.get_ref().name)?;
        let connector_type = (self.lifecycle.catalogue().parse(id))
            .ok_or_else(|| Error::ConnectorTypeNotFound(id.to_owned()))?;
        let configured = self.lifecycle.is_configured(connector_type);
        Ok(Response::new(conversions::connector_type(
            connector_type,
            configured,
        )))
    }

    async fn resolve_connector_type(
        &self,
        request: Request<pb::ResolveConnectorTypeRequest>,
    ) -> Reply<pb::ResolveConnectorTypeResponse> {
        let service = conversions::microsoft_service(request.get_ref().microsoft_service)?;
        let connector_type = (self.lifecycle.catalogue().serving(service))
            .ok_or_else(|| Error::Internal(format!("no connector type serves {service:?}")))?;
        let configured = self.lifecycle.is_configured(connector_type);
        Ok(Response::new(pb::ResolveConnectorTypeResponse {
            connector_type: Some(conversions::connector_type(connector_type, configured)),
        }))
    }

    async fn create_connector(
        &self,
        request: Request<pb::CreateConnectorRequest>,
    ) -> Reply<pb::Connector> {
        let caller = caller(&request, Capability::Manage)?;
        let request = request.into_inner();
        let account = parse_account("parent", &request.parent)?;
        caller.authorize_parent(&account)?;
        let connector = request
            .connector
            .ok_or_else(|| Error::invalid("connector", "is required"))?;
        let connector_type = parse_connector_type(
            self.lifecycle.catalogue(),
            "connector.connector_type",
            &connector.connector_type,
        )?;
        let display_name = DisplayName::new(&connector.display_name)
            .map_err(|invalid| Error::invalid("connector.display_name", invalid.0))?;
        let labels = labels("connector.labels", connector.labels)?;
        let credentials = self.credentials(connector_type, request.credentials)?;
        let created = self
            .lifecycle
            .create(
                account,
                connector_type,
                Some(display_name),
                labels,
                credentials,
            )
            .await?;
        audit::changed(
            "connector_created",
            &caller.key_id,
            &created.name.to_string(),
        );
        Ok(Response::new(created.into()))
    }

    async fn start_authorization(
        &self,
        request: Request<pb::StartAuthorizationRequest>,
    ) -> Reply<pb::StartAuthorizationResponse> {
        let caller = caller(&request, Capability::Manage)?;
        let request = request.into_inner();
        let account = parse_account("parent", &request.parent)?;
        caller.authorize_parent(&account)?;
        let connector_type = parse_connector_type(
            self.lifecycle.catalogue(),
            "connector_type",
            &request.connector_type,
        )?;
        let display_name = if request.display_name.is_empty() {
            None
        } else {
            Some(
                DisplayName::new(&request.display_name)
                    .map_err(|invalid| Error::invalid("display_name", invalid.0))?,
            )
        };
        let return_to = ReturnTo {
            url: (!request.return_url.is_empty()).then_some(request.return_url),
            orchestrator_completes: request.orchestrator_completes,
        };
        let started = self
            .authorizations
            .start_authorization(account, connector_type, display_name, return_to)
            .await?;
        Ok(Response::new(pb::StartAuthorizationResponse {
            authorization_url: started.url,
            expire_time: Some(conversions::timestamp(started.expire_time)),
        }))
    }

    async fn start_reauthorization(
        &self,
        request: Request<pb::StartReauthorizationRequest>,
    ) -> Reply<pb::StartReauthorizationResponse> {
        let caller = caller(&request, Capability::Manage)?;
        let request = request.into_inner();
        let name = parse_connector("name", &request.name)?;
        caller.authorize_connector(&name)?;
        let return_to = ReturnTo {
            url: (!request.return_url.is_empty()).then_some(request.return_url),
            orchestrator_completes: request.orchestrator_completes,
        };
        let started = self
            .authorizations
            .start_reauthorization(&name, return_to)
            .await?;
        Ok(Response::new(pb::StartReauthorizationResponse {
            authorization_url: started.url,
            expire_time: Some(conversions::timestamp(started.expire_time)),
        }))
    }

    async fn complete_authorization(
        &self,
        request: Request<pb::CompleteAuthorizationRequest>,
    ) -> Reply<pb::Connector> {
        let caller = caller(&request, Capability::Manage)?;
        let request = request.into_inner();
        if request.state.is_empty() {
            return Err(Error::invalid("state", "is required").into());
        }
        let non_empty = |value: String| (!value.is_empty()).then_some(value);
        let completion = self
            .authorizations
            .complete_authorization(
                Callback {
                    state: request.state,
                    code: non_empty(request.code),
                    error: non_empty(request.error),
                    error_description: non_empty(request.error_description),
                    iss: non_empty(request.iss),
                    from_browser: false,
                },
                |account| caller.authorize_parent(account).is_ok(),
            )
            .await;
        let linked = completion.result?;
        audit::changed(
            "authorization_completed",
            &caller.key_id,
            &linked.name.to_string(),
        );
        Ok(Response::new(linked.into()))
    }

    async fn get_connector(
        &self,
        request: Request<pb::GetConnectorRequest>,
    ) -> Reply<pb::Connector> {
        let caller = caller(&request, Capability::Read)?;
        let name = parse_connector("name", &request.get_ref().name)?;
        caller.authorize_connector(&name)?;
        Ok(Response::new(self.lifecycle.get(&name).await?.into()))
    }

    async fn list_connectors(
        &self,
        request: Request<pb::ListConnectorsRequest>,
    ) -> Reply<pb::ListConnectorsResponse> {
        let caller = caller(&request, Capability::Read)?;
        let request = request.into_inner();
        let account = parse_account("parent", &request.parent)?;
        caller.authorize_parent(&account)?;
        let page_size = page_size(request.page_size)?;
        let list_filter = filter::parse(self.lifecycle.catalogue(), &request.filter)?;
        let after = if request.page_token.is_empty() {
            None
        } else {
            let after =
                self.page_tokens
                    .redeem(&request.page_token, &request.parent, &request.filter)?;
            Some(ConnectorId::new(&after).map_err(|_| {
                Error::invalid("page_token", "is not a page token this service issued")
            })?)
        };
        let page = self
            .lifecycle
            .list(&account, list_filter, after.as_ref(), page_size)
            .await?;
        Ok(Response::new(pb::ListConnectorsResponse {
            next_page_token: page
                .next_after
                .map(|after| {
                    self.page_tokens
                        .issue(&request.parent, &request.filter, after.as_str())
                })
                .unwrap_or_default(),
            connectors: page
                .connectors
                .into_iter()
                .map(pb::Connector::from)
                .collect(),
        }))
    }

    async fn update_connector(
        &self,
        request: Request<pb::UpdateConnectorRequest>,
    ) -> Reply<pb::Connector> {
        let caller = caller(&request, Capability::Manage)?;
        let request = request.into_inner();
        let connector = request
            .connector
            .ok_or_else(|| Error::invalid("connector", "is required"))?;
        let name = parse_connector("connector.name", &connector.name)?;
        caller.authorize_connector(&name)?;
        let update = conversions::connector_update(connector, request.update_mask)?;
        Ok(Response::new(
            self.lifecycle.update(&name, update).await?.into(),
        ))
    }

    async fn reauthorize_connector(
        &self,
        request: Request<pb::ReauthorizeConnectorRequest>,
    ) -> Reply<pb::Connector> {
        let caller = caller(&request, Capability::Manage)?;
        let request = request.into_inner();
        let name = parse_connector("name", &request.name)?;
        caller.authorize_connector(&name)?;
        let current = self.lifecycle.get(&name).await?;
        let credentials = self.credentials(current.connector_type, request.credentials)?;
        let reauthorized = self.lifecycle.reauthorize(&name, credentials).await?;
        audit::changed("connector_reauthorized", &caller.key_id, &name.to_string());
        Ok(Response::new(reauthorized.into()))
    }

    async fn delete_connector(
        &self,
        request: Request<pb::DeleteConnectorRequest>,
    ) -> Reply<pb::DeleteConnectorResponse> {
        let caller = caller(&request, Capability::Manage)?;
        let request = request.into_inner();
        let name = parse_connector("name", &request.name)?;
        caller.authorize_connector(&name)?;
        let expected_revision = conversions::expected_revision("etag", &request.etag)?;
        self.lifecycle.delete(&name, expected_revision).await?;
        audit::changed("connector_deleted", &caller.key_id, &name.to_string());
        Ok(Response::new(pb::DeleteConnectorResponse {}))
    }

    async fn delete_account(
        &self,
        request: Request<pb::DeleteAccountRequest>,
    ) -> Reply<pb::DeleteAccountResponse> {
        let caller = caller(&request, Capability::Manage)?;
        let account = parse_account("name", &request.get_ref().name)?;
        caller.authorize_parent(&account)?;
        let deleted = self.lifecycle.delete_account(&account).await?;
        audit::changed(
            "account_deleted",
            &caller.key_id,
            &format!("accounts/{account} ({deleted} connectors)"),
        );
        Ok(Response::new(pb::DeleteAccountResponse {
            deleted_connectors: deleted as i64,
        }))
    }

    async fn get_access_token(
        &self,
        request: Request<pb::GetAccessTokenRequest>,
    ) -> Reply<pb::GetAccessTokenResponse> {
        let caller = caller(&request, Capability::Tokens)?;
        let name = parse_connector("name", &request.get_ref().name)?;
        caller.authorize_connector(&name)?;
        let token = self.access.access_token(&name).await?;
        let response = pb::GetAccessTokenResponse::from(token);
        audit::credential_issued(
            &caller.key_id,
            &name.to_string(),
            response.token_type().as_str_name(),
            &response
                .expire_time
                .map(|time| time.to_string())
                .unwrap_or_default(),
        );
        Ok(Response::new(response))
    }

    async fn reveal_connector_credentials(
        &self,
        request: Request<pb::RevealConnectorCredentialsRequest>,
    ) -> Reply<pb::RevealConnectorCredentialsResponse> {
        use secrecy::ExposeSecret as _;
        let caller = caller(&request, Capability::Reveal)?;
        let name = parse_connector("name", &request.get_ref().name)?;
        caller.authorize_connector(&name)?;
        let fields = self.access.reveal_credentials(&name).await?;
        let names: Vec<&str> = fields.iter().map(|(field, _)| *field).collect();
        audit::credentials_revealed(&caller.key_id, &name.to_string(), &names.join(","));
        Ok(Response::new(pb::RevealConnectorCredentialsResponse {
            fields: fields
                .into_iter()
                .map(|(field, value)| (field.to_owned(), value.expose_secret().to_owned()))
                .collect(),
        }))
    }

    async fn list_connector_events(
        &self,
        request: Request<pb::ListConnectorEventsRequest>,
    ) -> Reply<pb::ListConnectorEventsResponse> {
        const LISTING: &str = "connector events";
        let caller = caller(&request, Capability::Read)?;
        let request = request.into_inner();
        let account = parse_account("parent", &request.parent)?;
        caller.authorize_parent(&account)?;
        let page_size = page_size(request.page_size)?;
        let after = if request.page_token.is_empty() {
            0
        } else {
            self.page_tokens
                .redeem(&request.page_token, &request.parent, LISTING)?
                .parse()
                .map_err(|_| {
                    Error::invalid("page_token", "is not a page token this service issued")
                })?
        };
        let page = self.events.list(&account, after, page_size).await?;
        Ok(Response::new(pb::ListConnectorEventsResponse {
            next_page_token: page
                .next_after
                .map(|after| {
                    self.page_tokens
                        .issue(&request.parent, LISTING, &after.to_string())
                })
                .unwrap_or_default(),
            events: page
                .events
                .into_iter()
                .map(pb::ConnectorEvent::from)
                .collect(),
        }))
    }

    type WatchConnectorEventsStream =
        tokio_stream::wrappers::ReceiverStream<Result<pb::ConnectorEvent, Status>>;

    async fn watch_connector_events(
        &self,
        request: Request<pb::WatchConnectorEventsRequest>,
    ) -> Reply<Self::WatchConnectorEventsStream> {
        let caller = caller(&request, Capability::Read)?;
        let request = request.into_inner();
        let account = parse_account("parent", &request.parent)?;
        caller.authorize_parent(&account)?;
        if request.after_cursor < 0 {
            return Err(Error::invalid("after_cursor", "must not be negative").into());
        }
        let receiver = self.feed.watch(
            &caller.key_id,
            account,
            request.after_cursor,
            self.shutdown.clone(),
        )?;
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            receiver,
        )))
    }

    async fn record_transfer(
        &self,
        request: Request<pb::RecordTransferRequest>,
    ) -> Reply<pb::Connector> {
        let caller = caller(&request, Capability::Tokens)?;
        let request = request.into_inner();
        let name = parse_connector("name", &request.name)?;
        caller.authorize_connector(&name)?;
        let bytes = u64::try_from(request.bytes_transferred)
            .map_err(|_| Error::invalid("bytes_transferred", "must be zero or more"))?;
        Ok(Response::new(
            self.access.record_transfer(&name, bytes).await?.into(),
        ))
    }
}
