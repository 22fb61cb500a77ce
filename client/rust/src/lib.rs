//! Rust client for `accelplan.v1.PlannerService`.
//!
//! ```no_run
//! use std::time::Duration;
//! use accelplan::v1::{model_spec, EstimateMemoryRequest, ModelSpec, QuantizationLevel};
//!
//! # async fn run() -> Result<(), accelplan::Error> {
//! let client = accelplan::Client::builder("localhost:50051")
//!     .timeout(Duration::from_secs(10))
//!     .connect()
//!     .await?;
//! let estimate = client
//!     .estimate_memory(EstimateMemoryRequest {
//!         model: Some(ModelSpec { source: Some(model_spec::Source::ParameterCount(70_000_000_000)) }),
//!         quantization: QuantizationLevel::Bfloat16 as i32,
//!         ..Default::default()
//!     })
//!     .await?;
//! println!("{} bytes", estimate.total_bytes);
//! # Ok(()) }
//! ```
//!
//! The message types, enums and the raw tonic client live in [`v1`]; they are generated
//! from `protos/accelplan/v1` at build time. With the `json` feature every message also
//! implements `serde::Serialize`/`Deserialize` in the proto3 JSON mapping (pbjson).

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use tonic::metadata::AsciiMetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic_types::StatusExt;

pub use tonic::Code;
pub use tonic_types::FieldViolation;

/// Generated `accelplan.v1` messages, enums and the raw tonic client
/// ([`v1::planner_service_client::PlannerServiceClient`]).
pub mod v1 {
    #![allow(clippy::all, missing_docs, rustdoc::all)]
    include!(concat!(env!("OUT_DIR"), "/accelplan.v1.rs"));
    #[cfg(feature = "json")]
    include!(concat!(env!("OUT_DIR"), "/accelplan.v1.serde.rs"));
}

/// Enum fields in proto3 JSON: names for known values, plain numbers for the rest
/// (the generated pbjson code is rewritten in build.rs to go through this).
#[cfg(feature = "json")]
#[doc(hidden)]
pub mod open_enum {
    use std::marker::PhantomData;

    use serde::de::{self, IntoDeserializer};

    /// An enum field's raw value, printed and parsed as proto3 JSON.
    pub struct OpenEnum<E>(pub i32, PhantomData<E>);

    impl<E> OpenEnum<E> {
        /// Never fails; shaped like `E::try_from` so the generated code stays as it is.
        pub fn try_from(value: i32) -> Result<Self, std::convert::Infallible> {
            Ok(OpenEnum(value, PhantomData))
        }
    }

    impl<E: TryFrom<i32> + serde::Serialize> serde::Serialize for OpenEnum<E> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            match E::try_from(self.0) {
                Ok(known) => known.serialize(serializer),
                Err(_) => serializer.serialize_i32(self.0),
            }
        }
    }

    impl<'de, E: serde::Deserialize<'de> + Into<i32>> serde::Deserialize<'de> for OpenEnum<E> {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Visitor<E>(PhantomData<E>);
            impl<'de, E: serde::Deserialize<'de> + Into<i32>> de::Visitor<'de> for Visitor<E> {
                type Value = OpenEnum<E>;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("an enum value name or a 32-bit integer")
                }
                fn visit_i64<Er: de::Error>(self, v: i64) -> Result<Self::Value, Er> {
                    i32::try_from(v)
                        .map(|n| OpenEnum(n, PhantomData))
                        .map_err(|_| Er::invalid_value(de::Unexpected::Signed(v), &self))
                }
                fn visit_u64<Er: de::Error>(self, v: u64) -> Result<Self::Value, Er> {
                    i32::try_from(v)
                        .map(|n| OpenEnum(n, PhantomData))
                        .map_err(|_| Er::invalid_value(de::Unexpected::Unsigned(v), &self))
                }
                fn visit_f64<Er: de::Error>(self, v: f64) -> Result<Self::Value, Er> {
                    if v.fract() == 0.0 && v >= i32::MIN as f64 && v <= i32::MAX as f64 {
                        Ok(OpenEnum(v as i32, PhantomData))
                    } else {
                        Err(Er::invalid_value(de::Unexpected::Float(v), &self))
                    }
                }
                fn visit_str<Er: de::Error>(self, v: &str) -> Result<Self::Value, Er> {
                    let known = E::deserialize(v.into_deserializer())?;
                    Ok(OpenEnum(known.into(), PhantomData))
                }
            }
            deserializer.deserialize_any(Visitor(PhantomData))
        }
    }
}

/// Target used by [`Client::connect`] callers that have no better idea.
pub const DEFAULT_TARGET: &str = "localhost:50051";
/// Deadline applied to every call that does not set its own.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Attempts per call when it fails with `UNAVAILABLE` (every RPC is a side-effect-free
/// computation, so retrying is safe); see [`ClientBuilder::max_attempts`].
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// How often a `dns:///host:port` target is resolved again (new replicas join, gone ones leave).
pub const DNS_REFRESH: Duration = Duration::from_secs(30);

/// Where a target string points: one address, a fixed list, or a DNS name to keep resolving.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    /// `host:port` or an `http(s)://` URI: one connection, as given.
    Single(String),
    /// `ipv4:a:port,b:port` / `ipv6:[a]:port,...` (gRPC's name syntax): every address.
    List(Vec<String>),
    /// `dns:///host:port`: every address the name resolves to, refreshed every [`DNS_REFRESH`].
    Dns(String),
}

fn parse_target(target: &str) -> Target {
    for prefix in ["ipv4:", "ipv6:"] {
        if let Some(rest) = target.strip_prefix(prefix) {
            return Target::List(
                rest.split(',')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(str::to_string)
                    .collect(),
            );
        }
    }
    if let Some(rest) = target.strip_prefix("dns:///").or_else(|| target.strip_prefix("dns:")) {
        return Target::Dns(rest.to_string());
    }
    Target::Single(target.to_string())
}

/// The raw generated client as wrapped by [`Client`] (bearer token and default deadline applied).
pub type RawClient = v1::planner_service_client::PlannerServiceClient<InterceptedService<Channel, CallDefaults>>;
/// The raw generated SchedulerService client as wrapped by [`Client`].
pub type RawSchedulerClient =
    v1::scheduler_service_client::SchedulerServiceClient<InterceptedService<Channel, CallDefaults>>;

/// A failed call: the gRPC status code, its message, and the field violations of the
/// `google.rpc.BadRequest` detail in the `grpc-status-details-bin` trailer (if any).
///
/// Errors raised before a call reaches the server (bad target, TLS set-up, connection
/// refused) carry [`Code::InvalidArgument`] or [`Code::Unavailable`] and no status.
pub struct Error {
    code: Code,
    message: String,
    field_violations: Vec<FieldViolation>,
    status: Option<tonic::Status>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// The gRPC status code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The status message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Bad request fields named by the server (`google.rpc.BadRequest.field_violations`).
    pub fn field_violations(&self) -> &[FieldViolation] {
        &self.field_violations
    }

    /// The full status returned by the server, with its metadata and raw details;
    /// `None` for errors raised on the client side before the call was made.
    pub fn status(&self) -> Option<&tonic::Status> {
        self.status.as_ref()
    }

    fn local(code: Code, message: impl Into<String>, source: Option<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error {
            code,
            message: message.into(),
            field_violations: Vec::new(),
            status: None,
            source,
        }
    }
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        let field_violations = status
            .get_details_bad_request()
            .map(|b| b.field_violations)
            .unwrap_or_default();
        // Statuses made on the client side (connection or TLS failures) carry the cause as a source.
        let message = match std::error::Error::source(&status) {
            Some(source) => format!("{}: {}", status.message(), chain(source)),
            None => status.message().to_owned(),
        };
        Error {
            code: status.code(),
            message,
            field_violations,
            status: Some(status),
            source: None,
        }
    }
}

impl From<tonic::transport::Error> for Error {
    fn from(err: tonic::transport::Error) -> Self {
        Error::local(Code::Unavailable, chain(&err), Some(Box::new(err)))
    }
}

/// An error and its sources, "outer: inner: ...".
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut last = text.clone();
    let mut source = err.source();
    while let Some(s) = source {
        let part = s.to_string();
        if part != last {
            text.push_str(": ");
            text.push_str(&part);
        }
        last = part;
        source = s.source();
    }
    text
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)?;
        for v in &self.field_violations {
            write!(f, "; {}: {}", v.field, v.description)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("code", &self.code)
            .field("message", &self.message)
            .field("field_violations", &self.field_violations)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.source {
            Some(s) => Some(s.as_ref()),
            None => self.status.as_ref().map(|s| s as &(dyn std::error::Error + 'static)),
        }
    }
}

/// Interceptor that adds `authorization: Bearer <token>` and the default deadline
/// (`grpc-timeout`, enforced by tonic on the client and sent to the server) to calls
/// that do not carry their own.
#[derive(Clone, Debug, Default)]
pub struct CallDefaults {
    authorization: Option<AsciiMetadataValue>,
    timeout: Option<Duration>,
}

impl Interceptor for CallDefaults {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(timeout) = self.timeout {
            if !request.metadata().contains_key("grpc-timeout") {
                request.set_timeout(timeout);
            }
        }
        if let Some(auth) = &self.authorization {
            if !request.metadata().contains_key("authorization") {
                request.metadata_mut().insert("authorization", auth.clone());
            }
        }
        Ok(request)
    }
}

/// Wraps a request so that it uses `timeout` instead of the client's default deadline.
pub fn with_timeout<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

/// Configures and opens a [`Client`]. Start with [`Client::builder`].
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    target: String,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    token: Option<String>,
    tls: bool,
    balance: bool,
    max_attempts: u32,
    #[cfg(feature = "tls")]
    ca_certificate: Option<Vec<u8>>,
    #[cfg(feature = "tls")]
    identity: Option<(Vec<u8>, Vec<u8>)>,
    #[cfg(feature = "tls")]
    domain_name: Option<String>,
}

impl ClientBuilder {
    fn new(target: impl Into<String>) -> Self {
        ClientBuilder {
            target: target.into(),
            timeout: Some(DEFAULT_TIMEOUT),
            connect_timeout: None,
            token: None,
            tls: false,
            balance: true,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            #[cfg(feature = "tls")]
            ca_certificate: None,
            #[cfg(feature = "tls")]
            identity: None,
            #[cfg(feature = "tls")]
            domain_name: None,
        }
    }

    /// Default deadline for each call (10 s unless changed); `None` for no deadline.
    /// A call's own `tonic::Request::set_timeout` (see [`with_timeout`]) wins.
    pub fn timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.timeout = timeout.into();
        self
    }

    /// Limit on establishing the connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Spread calls over every address of a multi-address target (default on):
    /// `ipv4:10.0.0.1:50051,10.0.0.2:50051` or `dns:///accelplan-headless.ns.svc:50051`
    /// (re-resolved every 30 s). tonic balances with power-of-two-choices over the ready
    /// connections. Off: one connection to the first address. A plain `host:port` is always
    /// one connection.
    pub fn balance(mut self, on: bool) -> Self {
        self.balance = on;
        self
    }

    /// Attempts per call when it fails with `UNAVAILABLE` (default 3, with 50 ms, 100 ms
    /// backoff; each attempt gets the call's full deadline); 1 turns retries off.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sends `authorization: Bearer <token>` with every call.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Turns TLS on (system trust roots unless [`ca_certificate`](Self::ca_certificate) is given).
    /// A target starting with `https://` turns it on too.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }

    /// Trusts this PEM CA certificate (instead of the system roots); implies TLS.
    #[cfg(feature = "tls")]
    pub fn ca_certificate(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.ca_certificate = Some(pem.as_ref().to_vec());
        self.tls = true;
        self
    }

    /// Presents this PEM client certificate chain and private key (mutual TLS); implies TLS.
    #[cfg(feature = "tls")]
    pub fn identity(mut self, cert_pem: impl AsRef<[u8]>, key_pem: impl AsRef<[u8]>) -> Self {
        self.identity = Some((cert_pem.as_ref().to_vec(), key_pem.as_ref().to_vec()));
        self.tls = true;
        self
    }

    /// Server name to verify the certificate against, when it differs from the target's host.
    #[cfg(feature = "tls")]
    pub fn domain_name(mut self, name: impl Into<String>) -> Self {
        self.domain_name = Some(name.into());
        self
    }

    fn uri(&self, address: &str) -> Result<Uri, Error> {
        let uri = if address.contains("://") {
            address.to_string()
        } else if self.tls {
            format!("https://{address}")
        } else {
            format!("http://{address}")
        };
        uri.parse().map_err(|e: tonic::codegen::http::uri::InvalidUri| {
            Error::local(
                Code::InvalidArgument,
                format!("invalid target {:?}: {e}", self.target),
                Some(Box::new(e)),
            )
        })
    }

    /// The endpoint for one address; `origin` (the name the caller used) becomes the
    /// `:authority` and the TLS server name when the address is a resolved IP.
    fn endpoint_for(&self, address: &str, origin: Option<&str>) -> Result<Endpoint, Error> {
        let tls = self.tls || address.starts_with("https://");
        let mut endpoint = Endpoint::from(self.uri(address)?);
        if let Some(origin) = origin {
            endpoint = endpoint.origin(self.uri(origin)?);
        }
        if let Some(t) = self.connect_timeout {
            endpoint = endpoint.connect_timeout(t);
        }
        if tls {
            let host = origin.map(|o| o.rsplit_once(':').map_or(o, |(h, _)| h).trim_matches(['[', ']']));
            endpoint = self.apply_tls(endpoint, host)?;
        }
        Ok(endpoint)
    }

    #[cfg(test)]
    fn endpoint(&self) -> Result<Endpoint, Error> {
        self.endpoint_for(&self.target, None)
    }

    fn channel(&self, lazy: bool) -> Result<ChannelPlan, Error> {
        let target = parse_target(&self.target);
        Ok(match target {
            Target::Single(a) => ChannelPlan::One(Box::new(self.endpoint_for(&a, None)?), lazy),
            Target::List(list) if list.is_empty() => {
                return Err(Error::local(
                    Code::InvalidArgument,
                    format!("no address in target {:?}", self.target),
                    None,
                ))
            }
            Target::List(list) if !self.balance || list.len() == 1 => {
                ChannelPlan::One(Box::new(self.endpoint_for(&list[0], None)?), lazy)
            }
            Target::List(list) => ChannelPlan::Balanced(
                list.iter()
                    .map(|a| self.endpoint_for(a, None))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Target::Dns(name) if !self.balance => ChannelPlan::One(Box::new(self.endpoint_for(&name, None)?), lazy),
            Target::Dns(name) => ChannelPlan::Dns(name),
        })
    }

    async fn open(&self, lazy: bool) -> Result<Channel, Error> {
        match self.channel(lazy)? {
            ChannelPlan::One(endpoint, true) => Ok(endpoint.connect_lazy()),
            ChannelPlan::One(endpoint, false) => Ok(endpoint.connect().await?),
            ChannelPlan::Balanced(endpoints) => Ok(Channel::balance_list(endpoints.into_iter())),
            ChannelPlan::Dns(name) => {
                let (channel, tx) = Channel::balance_channel::<SocketAddr>(64);
                let builder = self.clone();
                let mut known = HashSet::new();
                builder.refresh(&name, &tx, &mut known).await?;
                tokio::spawn(async move {
                    loop {
                        // Ends when the channel (and with it the receiver) is dropped.
                        if tokio::time::timeout(DNS_REFRESH, tx.closed()).await.is_ok() {
                            return;
                        }
                        let _ = builder.refresh(&name, &tx, &mut known).await;
                    }
                });
                Ok(channel)
            }
        }
    }

    /// Resolves `name` and tells the balancer which addresses joined and which left.
    async fn refresh(
        &self,
        name: &str,
        tx: &tokio::sync::mpsc::Sender<Change<SocketAddr, Endpoint>>,
        known: &mut HashSet<SocketAddr>,
    ) -> Result<(), Error> {
        let resolved: HashSet<SocketAddr> = tokio::net::lookup_host(name)
            .await
            .map_err(|e| Error::local(Code::Unavailable, format!("resolve {name:?}: {e}"), Some(Box::new(e))))?
            .collect();
        if resolved.is_empty() {
            return Err(Error::local(
                Code::Unavailable,
                format!("{name:?} resolved to no address"),
                None,
            ));
        }
        for addr in resolved.difference(known) {
            let endpoint = self.endpoint_for(&addr.to_string(), Some(name))?;
            let _ = tx.send(Change::Insert(*addr, endpoint)).await;
        }
        for addr in known.difference(&resolved) {
            let _ = tx.send(Change::Remove(*addr)).await;
        }
        *known = resolved;
        Ok(())
    }

    #[cfg(feature = "tls")]
    fn apply_tls(&self, endpoint: Endpoint, host: Option<&str>) -> Result<Endpoint, Error> {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        let mut config = ClientTlsConfig::new();
        config = match &self.ca_certificate {
            Some(pem) => config.ca_certificate(Certificate::from_pem(pem)),
            None => config.with_native_roots(),
        };
        if let Some((cert, key)) = &self.identity {
            config = config.identity(Identity::from_pem(cert, key));
        }
        if let Some(name) = self.domain_name.as_deref().or(host) {
            config = config.domain_name(name.to_string());
        }
        endpoint.tls_config(config).map_err(|e| {
            Error::local(
                Code::InvalidArgument,
                format!("TLS configuration: {}", chain(&e)),
                Some(Box::new(e)),
            )
        })
    }

    #[cfg(not(feature = "tls"))]
    fn apply_tls(&self, _endpoint: Endpoint, _host: Option<&str>) -> Result<Endpoint, Error> {
        Err(Error::local(
            Code::InvalidArgument,
            "TLS target but the accelplan crate was built without the \"tls\" feature",
            None,
        ))
    }

    fn defaults(&self) -> Result<CallDefaults, Error> {
        let authorization = match &self.token {
            Some(token) => Some(format!("Bearer {token}").parse().map_err(|e| {
                Error::local(
                    Code::InvalidArgument,
                    "bearer token is not valid header text",
                    Some(Box::new(e)),
                )
            })?),
            None => None,
        };
        Ok(CallDefaults {
            authorization,
            timeout: self.timeout,
        })
    }

    /// Connects now; for a single address, fails if the server cannot be reached. A balanced
    /// target (see [`balance`](Self::balance)) connects to its addresses in the background.
    pub async fn connect(self) -> Result<Client, Error> {
        let defaults = self.defaults()?;
        let channel = self.open(false).await?;
        Ok(Client::wrap(channel, defaults, self.max_attempts))
    }

    /// Returns a client that connects on its first call. Must be called inside a Tokio runtime.
    /// A `dns:///` target is resolved on the first refresh instead (within 30 s); use
    /// [`connect`](Self::connect) for it.
    pub fn connect_lazy(self) -> Result<Client, Error> {
        let defaults = self.defaults()?;
        let channel = match self.channel(true)? {
            ChannelPlan::One(endpoint, _) => endpoint.connect_lazy(),
            ChannelPlan::Balanced(endpoints) => Channel::balance_list(endpoints.into_iter()),
            ChannelPlan::Dns(name) => {
                let (channel, tx) = Channel::balance_channel::<SocketAddr>(64);
                let builder = self.clone();
                tokio::spawn(async move {
                    let mut known = HashSet::new();
                    loop {
                        let _ = builder.refresh(&name, &tx, &mut known).await;
                        if tokio::time::timeout(DNS_REFRESH, tx.closed()).await.is_ok() {
                            return;
                        }
                    }
                });
                channel
            }
        };
        Ok(Client::wrap(channel, defaults, self.max_attempts))
    }
}

/// How [`ClientBuilder`] opens its channel.
enum ChannelPlan {
    One(Box<Endpoint>, bool),
    Balanced(Vec<Endpoint>),
    Dns(String),
}

/// A `PlannerService` and `SchedulerService` client. Cheap to clone; clones share one connection.
#[derive(Clone, Debug)]
pub struct Client {
    inner: RawClient,
    scheduler: RawSchedulerClient,
    max_attempts: u32,
}

impl Client {
    fn wrap(channel: Channel, defaults: CallDefaults, max_attempts: u32) -> Client {
        Client {
            inner: v1::planner_service_client::PlannerServiceClient::with_interceptor(
                channel.clone(),
                defaults.clone(),
            ),
            scheduler: v1::scheduler_service_client::SchedulerServiceClient::with_interceptor(channel, defaults),
            max_attempts,
        }
    }

    /// Connects to `target` (`host:port`, or a `http://` / `https://` URI) in plaintext
    /// with the default 10 s deadline per call.
    pub async fn connect(target: impl Into<String>) -> Result<Client, Error> {
        ClientBuilder::new(target).connect().await
    }

    /// A builder for TLS, bearer token and deadline options.
    pub fn builder(target: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(target)
    }

    /// The underlying generated client (token and default deadline still applied);
    /// returns raw `tonic::Status` errors and full `tonic::Response`s with metadata.
    pub fn raw(&self) -> RawClient {
        self.inner.clone()
    }

    /// The underlying generated SchedulerService client (token and default deadline still applied).
    pub fn raw_scheduler(&self) -> RawSchedulerClient {
        self.scheduler.clone()
    }
}

/// 50 ms before the second attempt, doubling up to 1 s.
fn retry_backoff(attempt: u32) -> Duration {
    Duration::from_millis(50u64.saturating_mul(1 << attempt.saturating_sub(1).min(5))).min(Duration::from_secs(1))
}

macro_rules! rpcs {
    ($( $(#[doc = $doc:literal])* $name:ident($req:ident) -> $resp:ident, $proto:literal, $field:ident; )*) => {
        impl Client {
            $(
                $(#[doc = $doc])*
                ///
                /// Pass a `tonic::Request` (e.g. from [`with_timeout`]) to set a deadline or
                /// metadata for this call only.
                pub async fn $name(&self, request: impl tonic::IntoRequest<v1::$req>) -> Result<v1::$resp, Error> {
                    let (metadata, extensions, message) = request.into_request().into_parts();
                    let mut extensions = Some(extensions);
                    let mut attempt = 1;
                    loop {
                        let request = tonic::Request::from_parts(
                            metadata.clone(),
                            extensions.take().unwrap_or_default(),
                            message.clone(),
                        );
                        let mut inner = self.$field.clone();
                        match inner.$name(request).await {
                            Ok(response) => return Ok(response.into_inner()),
                            Err(status) if status.code() == Code::Unavailable && attempt < self.max_attempts => {
                                tokio::time::sleep(retry_backoff(attempt)).await;
                                attempt += 1;
                            }
                            Err(status) => return Err(Error::from(status)),
                        }
                    }
                }
            )*
        }

        #[cfg(feature = "json")]
        impl Client {
            /// The PlannerService and SchedulerService methods by proto name (`"EstimateMemory"`, ...), as [`Client::call_json`] takes them.
            pub const METHODS: &'static [&'static str] = &[$($proto),*];

            /// Calls a method by its proto name with a request in proto3 JSON, and returns the
            /// response in proto3 JSON (feature `json`).
            pub async fn call_json(&self, method: &str, request: serde_json::Value) -> Result<serde_json::Value, JsonCallError> {
                match method {
                    $(
                        $proto => {
                            let request: v1::$req = serde_json::from_value(request).map_err(JsonCallError::Request)?;
                            let response = self.$name(request).await.map_err(JsonCallError::Call)?;
                            serde_json::to_value(&response).map_err(JsonCallError::Response)
                        }
                    )*
                    other => Err(JsonCallError::UnknownMethod(other.to_string())),
                }
            }
        }
    };
}

include!(concat!(env!("OUT_DIR"), "/accelplan.v1.client.rs"));

/// Why [`Client::call_json`] failed.
#[cfg(feature = "json")]
#[derive(Debug)]
pub enum JsonCallError {
    /// No PlannerService or SchedulerService method has that name.
    UnknownMethod(String),
    /// The request is not the method's request message in proto3 JSON.
    Request(serde_json::Error),
    /// The call failed.
    Call(Error),
    /// The response could not be printed as JSON.
    Response(serde_json::Error),
}

#[cfg(feature = "json")]
impl fmt::Display for JsonCallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonCallError::UnknownMethod(m) => write!(f, "unknown method {m:?}"),
            JsonCallError::Request(e) => write!(f, "cannot parse request: {e}"),
            JsonCallError::Call(e) => e.fmt(f),
            JsonCallError::Response(e) => write!(f, "cannot print response: {e}"),
        }
    }
}

#[cfg(feature = "json")]
impl std::error::Error for JsonCallError {}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::{ErrorDetails, StatusExt};

    #[test]
    fn error_decodes_bad_request_violations() {
        let mut details = ErrorDetails::new();
        details.add_bad_request_violation("model.parameter_count", "must be greater than 0");
        let status = tonic::Status::with_error_details(Code::InvalidArgument, "bad request", details);
        let err = Error::from(status);
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(err.message(), "bad request");
        assert_eq!(err.field_violations().len(), 1);
        assert_eq!(err.field_violations()[0].field, "model.parameter_count");
        assert!(err
            .to_string()
            .contains("model.parameter_count: must be greater than 0"));
    }

    #[test]
    fn targets_parse_like_grpc_names() {
        assert_eq!(
            parse_target("localhost:50051"),
            Target::Single("localhost:50051".into())
        );
        assert_eq!(
            parse_target("https://planner:443"),
            Target::Single("https://planner:443".into())
        );
        assert_eq!(
            parse_target("ipv4:127.0.0.1:1,127.0.0.1:2"),
            Target::List(vec!["127.0.0.1:1".into(), "127.0.0.1:2".into()])
        );
        assert_eq!(parse_target("ipv6:[::1]:1"), Target::List(vec!["[::1]:1".into()]));
        assert_eq!(parse_target("dns:///svc.ns:50051"), Target::Dns("svc.ns:50051".into()));
        assert_eq!(retry_backoff(1), Duration::from_millis(50));
        assert_eq!(retry_backoff(2), Duration::from_millis(100));
        assert_eq!(retry_backoff(30), Duration::from_secs(1));
    }

    #[test]
    fn error_without_details_has_no_violations() {
        let err = Error::from(tonic::Status::not_found("no such model"));
        assert_eq!(err.code(), Code::NotFound);
        assert!(err.field_violations().is_empty());
    }

    #[test]
    fn interceptor_adds_token_and_default_deadline_but_keeps_the_callers() {
        let mut defaults = CallDefaults {
            authorization: Some("Bearer s3cret".parse().unwrap()),
            timeout: Some(Duration::from_secs(10)),
        };
        let req = defaults.call(tonic::Request::new(())).unwrap();
        assert_eq!(req.metadata().get("authorization").unwrap(), "Bearer s3cret");
        assert_eq!(req.metadata().get("grpc-timeout").unwrap(), "10000000u");

        let mut own = with_timeout((), Duration::from_millis(250));
        own.metadata_mut()
            .insert("authorization", "Bearer other".parse().unwrap());
        let req = defaults.call(own).unwrap();
        assert_eq!(req.metadata().get("authorization").unwrap(), "Bearer other");
        assert_eq!(req.metadata().get("grpc-timeout").unwrap(), "250000u");
    }

    #[test]
    fn builder_targets() {
        let b = Client::builder("localhost:50051");
        assert_eq!(b.endpoint().unwrap().uri().to_string(), "http://localhost:50051/");
        let b = Client::builder("http://[::1]:9000");
        assert_eq!(b.endpoint().unwrap().uri().to_string(), "http://[::1]:9000/");
        let err = Client::builder("not a target").endpoint().unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        let err = Client::builder("localhost:1").bearer_token("bad\ntoken").connect_lazy();
        assert_eq!(err.unwrap_err().code(), Code::InvalidArgument);
    }

    #[cfg(feature = "tls")]
    const TEST_CA: &str = "-----BEGIN CERTIFICATE-----\nMIIBkDCCATWgAwIBAgIUfV7OjCi2bdglG69fU8yWqQKtkJEwCgYIKoZIzj0EAwIw\nHDEaMBgGA1UEAwwRYWNjZWxwbGFuIHRlc3QgQ0EwIBcNMjYxMTI3MTQyMzI5WhgP\nMjEyNjExMDMxNDIzMjlaMBwxGjAYBgNVBAMMEWFjY2VscGxhbiB0ZXN0IENBMFkw\nEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEa/OO/dwrx4mDe+Yg4GfZMAd3oHiOcFzJ\n0ezpi1MqeZl23uzehHN0RP31KNtNbyBudlldS82fne2V0EpDQNzp76NTMFEwHQYD\nVR0OBBYEFIlw9XvtKVS2qKo3YH3e9oCMxSCiMB8GA1UdIwQYMBaAFIlw9XvtKVS2\nqKo3YH3e9oCMxSCiMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIh\nAOCoLbm0z1o7dcCoDOGVWcVk3uBDJNbdmdj1oiLcIskBAiEAjyfbb8MR5R6v51nb\nxYFAlb/Xn7vn9F095e3vsNQfPDM=\n-----END CERTIFICATE-----\n";

    #[cfg(feature = "tls")]
    #[tokio::test]
    async fn tls_builder() {
        let b = Client::builder("planner.example.com:443").ca_certificate(TEST_CA);
        assert_eq!(
            b.endpoint().unwrap().uri().to_string(),
            "https://planner.example.com:443/"
        );
        assert!(b.connect_lazy().is_ok());
        let bad = Client::builder("planner.example.com:443").ca_certificate("-----BEGIN CERTIFICATE-----\n");
        let err = bad.endpoint().unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().starts_with("TLS configuration: "), "{}", err.message());
    }

    #[tokio::test]
    async fn unreachable_server_is_unavailable() {
        let client = Client::builder("127.0.0.1:1").connect_lazy().unwrap();
        let err = client
            .list_quantization_levels(v1::ListQuantizationLevelsRequest {})
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable);
    }

    #[cfg(feature = "json")]
    #[test]
    fn proto3_json_round_trip() {
        let req: v1::EstimateMemoryRequest =
            serde_json::from_str(r#"{"model": {"parameter_count": "9007199254740993"}, "quantization": 77}"#).unwrap();
        assert_eq!(req.quantization, 77);
        assert_eq!(
            req.model.as_ref().unwrap().source,
            Some(v1::model_spec::Source::ParameterCount(9007199254740993))
        );
        let json = serde_json::to_value(&req).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"model": {"parameterCount": "9007199254740993"}, "quantization": 77})
        );
        let level = v1::ResolveQuantizationLevelRequest {
            selector: Some(v1::resolve_quantization_level_request::Selector::Level(
                v1::QuantizationLevel::Int8 as i32,
            )),
        };
        assert_eq!(
            serde_json::to_value(&level).unwrap(),
            serde_json::json!({"level": "QUANTIZATION_LEVEL_INT8"})
        );
    }
}
