//! Settings: built-in defaults, then an optional `intake.toml`, then `INTAKE_*`
//! environment variables (the last one wins). The file and the environment
//! are figment layers ([`Layer`]), merged and read through serde; each
//! value keeps its layer, so that a message names the setting as it was
//! spelled where it came from.
//!
//! Every setting is named the same way in all three places: `max_body_bytes`
//! in the file is `INTAKE_MAX_BODY_BYTES` in the environment. A value that
//! cannot be used stops start-up with a message naming the setting, where it
//! came from and what is wrong. Secrets are wrapped in [`Secret`], whose
//! `Debug` never shows the value.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every key the file and the environment may set.
const KEYS: &[&str] = &[
    "bind",
    "data_dir",
    "database_url",
    "database_max_connections",
    "database_timeout_ms",
    "redis_url",
    "jwt_alg",
    "jwt_secret",
    "jwt_private_key",
    "jwt_previous_key",
    "jwt_issuer",
    "jwt_audience",
    "max_body_bytes",
    "max_stream_bytes",
    "max_bulk_requests",
    "body_timeout_ms",
    "redis_timeout_ms",
    "rate_limit_per_second",
    "rate_limit_burst",
    "idempotency_ttl_seconds",
    "idempotency_lease_ms",
    "import_max_bytes",
    "import_confirm_ttl_seconds",
    "import_retention_days",
    "import_lease_ms",
    "import_runner",
    "admin_token_max_ttl_seconds",
    "shutdown_timeout_seconds",
    "log",
    "log_format",
];

/// A value that must not appear in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself: call only where it is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(\"[redacted]\")")
    }
}

/// A connection URL whose password (if any) is hidden in `Debug` and `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionUrl(Secret);

impl ConnectionUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(Secret::new(url))
    }
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
    /// The URL with any `user:password@` reduced to `user:***@`, and the
    /// value of a `password` or `sslpassword` query parameter to `***`. A
    /// password may hold an unencoded `@` or `/`: the user part ends at the
    /// last `@` before the query.
    pub fn redacted(&self) -> String {
        let url = self.0.expose();
        let Some((scheme, rest)) = url.split_once("://") else {
            return url.to_string();
        };
        let (before_query, query) = match rest.split_once('?') {
            Some((before, query)) => (before, Some(query)),
            None => (rest, None),
        };
        let mut out = format!("{scheme}://");
        match before_query.rfind('@') {
            Some(at) => {
                let (userinfo, host) = (&before_query[..at], &before_query[at + 1..]);
                let user = userinfo.split(':').next().unwrap_or_default();
                out.push_str(user);
                if userinfo.contains(':') {
                    out.push_str(":***");
                }
                out.push('@');
                out.push_str(host);
            }
            None => out.push_str(before_query),
        }
        if let Some(query) = query {
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((key, _))
                        if key.eq_ignore_ascii_case("password")
                            || key.eq_ignore_ascii_case("sslpassword") =>
                    {
                        format!("{key}=***")
                    }
                    _ => param.to_string(),
                })
                .collect();
            out.push('?');
            out.push_str(&params.join("&"));
        }
        out
    }
}

impl fmt::Debug for ConnectionUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl fmt::Display for ConnectionUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The signing algorithm tokens must carry; anything else is rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwtAlg {
    /// HMAC-SHA256 with a shared secret (the default).
    Hs256,
    /// Ed25519 with a key pair; public keys served as JWKS.
    EdDsa,
    /// RSA PKCS#1 v1.5 with SHA-256 with a key pair; public keys served as JWKS.
    Rs256,
}

#[derive(Clone, Debug)]
pub struct JwtSettings {
    pub alg: JwtAlg,
    /// HS256 secret. `None`: generated on first start and kept in the data folder.
    pub secret: Option<Secret>,
    /// EdDSA/RS256 private key (PEM, PKCS#8).
    pub private_key: Option<Secret>,
    /// During a rotation, the key whose tokens are still accepted: the
    /// previous HS256 secret, or the previous public key (PEM) for EdDSA/RS256.
    pub previous_key: Option<Secret>,
    pub issuer: String,
    pub audience: String,
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: ConnectionUrl,
    pub database_max_connections: u32,
    /// How long a request waits for a database connection before it is
    /// answered 503.
    pub database_timeout: Duration,
    pub redis_url: Option<ConnectionUrl>,
    pub jwt: JwtSettings,
    pub max_body_bytes: usize,
    /// An NDJSON stream's limit (each line is held to `max_body_bytes`).
    pub max_stream_bytes: u64,
    /// Bulk ingestions (streams, uploads, large JSON bodies) written at
    /// once; past it a bulk request is answered 503 `server_busy` at once.
    /// `None`: one less than the writers' pool holds (at least one).
    pub max_bulk_requests: Option<u32>,
    /// How long a request body may stall (no byte arriving) before the
    /// request is answered 408 `body_timeout`.
    pub body_timeout: Duration,
    /// How long one Redis call may take before the request goes on
    /// without Redis (and the breaker opens).
    pub redis_timeout: Duration,
    /// The rate limit of an integration that has none of its own:
    /// requests per second (0: no limit) …
    pub rate_limit_per_second: u32,
    /// … and how many may arrive at once.
    pub rate_limit_burst: u32,
    /// How long the answer of a request with an `Idempotency-Key` is kept.
    pub idempotency_ttl: Duration,
    /// How long a running request holds its key without renewing it (it
    /// renews it every third of this while it runs): after a crash, the
    /// key is free again this long after the last renewal.
    pub idempotency_lease: Duration,
    /// The largest file an import job takes.
    pub import_max_bytes: u64,
    /// How long an import job waits for its confirmation.
    pub import_confirm_ttl: Duration,
    /// How long a finished import job (and its failed rows) is kept.
    pub import_retention: Duration,
    /// How long a replica holds a running job without renewing its lease
    /// (another replica takes it over after that).
    pub import_lease: Duration,
    /// Whether this replica runs import jobs (`1`) or only serves the API (`0`).
    pub import_runner: bool,
    /// The longest lifetime of an admin token (minted or accepted).
    pub admin_token_max_ttl: Duration,
    /// On SIGTERM/SIGINT: how long requests in flight may take to finish
    /// before they are given up (their transactions rolled back).
    pub shutdown_timeout: Duration,
    pub log: String,
    pub log_format: LogFormat,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: traces are exported by OTLP when set.
    pub otlp_endpoint: Option<String>,
}

impl Settings {
    /// The rate limit of an integration that has none of its own.
    pub fn default_rate_limit(&self) -> RatePolicy {
        RatePolicy {
            per_second: f64::from(self.rate_limit_per_second),
            burst: self.rate_limit_burst,
        }
    }
}

/// A sustained rate and a burst. A rate of 0 means no limit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"per_second": 100.0, "burst": 200}))]
pub struct RatePolicy {
    /// Requests per second, sustained (0: no limit).
    pub per_second: f64,
    /// Requests that may arrive at once (at least 1).
    pub burst: u32,
}

impl RatePolicy {
    pub fn is_unlimited(&self) -> bool {
        self.per_second <= 0.0
    }

    /// Microseconds between two requests at the sustained rate.
    pub(crate) fn interval_us(&self) -> f64 {
        1_000_000.0 / self.per_second
    }

    /// How far ahead of now the TAT may run: `burst` intervals.
    pub(crate) fn tolerance_us(&self) -> f64 {
        self.interval_us() * f64::from(self.burst.max(1))
    }

    /// The window the `RateLimit-Policy` header states: the time a full
    /// burst takes to come back, in whole seconds (at least 1).
    pub fn window_seconds(&self) -> u64 {
        ((f64::from(self.burst.max(1)) / self.per_second).ceil() as u64).max(1)
    }
}

/// Why the settings could not be used. The message names the setting.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(String);

#[derive(Clone, Debug)]
enum Source {
    File(PathBuf),
    Env,
}

struct Value {
    raw: String,
    source: Source,
}

impl Value {
    /// How the setting is spelled where this value came from.
    fn name(&self, key: &str) -> String {
        match &self.source {
            Source::File(path) => format!("`{key}` in {}", path.display()),
            Source::Env => format!("INTAKE_{}", key.to_uppercase()),
        }
    }
}

impl Settings {
    /// Loads the settings from `config_file` (if it exists; `intake.toml` in
    /// the working directory when `None`) and the process environment.
    pub fn load(config_file: Option<&Path>) -> Result<Self, SettingsError> {
        Self::load_from(config_file, |name| std::env::var(name).ok())
    }

    /// Like [`Settings::load`], with the environment given as a lookup (tests).
    pub fn load_from(
        config_file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingsError> {
        let explicit = config_file.is_some() || env("INTAKE_CONFIG").is_some();
        let path = config_file
            .map(Path::to_path_buf)
            .or_else(|| env("INTAKE_CONFIG").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("intake.toml"));
        // The layers, the last one winning: the file, then the environment
        // (the defaults are the parsers' own, below).
        let mut figment = Figment::new();
        if path.exists() {
            figment = figment.merge(Layer::file(&path)?);
        } else if explicit {
            return Err(SettingsError(format!(
                "INTAKE_CONFIG: the settings file {} does not exist",
                path.display()
            )));
        }
        figment = figment.merge(Layer::environment(&env));
        let given: BTreeMap<String, String> = figment
            .extract()
            .map_err(|e| SettingsError(format!("the settings cannot be read: {e}")))?;
        // Each value with where it came from, for the messages.
        let values: BTreeMap<&str, Value> = given
            .into_iter()
            .filter_map(|(key, raw)| {
                let key = KEYS.iter().find(|k| **k == key)?;
                let source = match figment.find_metadata(key).and_then(|m| m.source.as_ref()) {
                    Some(figment::Source::File(path)) => Source::File(path.clone()),
                    _ => Source::Env,
                };
                Some((*key, Value { raw, source }))
            })
            .collect();

        let get = |key: &str| values.get(key).filter(|v| !v.raw.trim().is_empty());

        let bind = match get("bind") {
            Some(v) => v.raw.trim().parse::<SocketAddr>().map_err(|_| {
                SettingsError(format!(
                    "{}: expected an address like 127.0.0.1:8080, got {:?}",
                    v.name("bind"),
                    v.raw
                ))
            })?,
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        };
        let data_dir = get("data_dir")
            .map(|v| PathBuf::from(v.raw.trim()))
            .unwrap_or_else(|| PathBuf::from("./data"));
        let database_url = match get("database_url") {
            Some(v) => {
                let raw = v.raw.trim();
                if !(raw.starts_with("sqlite:")
                    || raw.starts_with("postgres://")
                    || raw.starts_with("postgresql://"))
                {
                    return Err(SettingsError(format!(
                        "{}: expected a sqlite://… or postgres://… URL, got {:?}",
                        v.name("database_url"),
                        ConnectionUrl::new(raw).redacted()
                    )));
                }
                ConnectionUrl::new(raw)
            }
            None => {
                ConnectionUrl::new(format!("sqlite://{}", data_dir.join("intake.db").display()))
            }
        };
        let database_max_connections = parse_number(
            get("database_max_connections"),
            "database_max_connections",
            10,
            2,
            1_000,
        )? as u32;
        let database_timeout = Duration::from_millis(parse_number(
            get("database_timeout_ms"),
            "database_timeout_ms",
            3_000,
            10,
            600_000,
        )?);
        let redis_url = match get("redis_url") {
            Some(v) => {
                let raw = v.raw.trim();
                if !(raw.starts_with("redis://") || raw.starts_with("rediss://")) {
                    return Err(SettingsError(format!(
                        "{}: expected a redis://… URL, got {:?}",
                        v.name("redis_url"),
                        ConnectionUrl::new(raw).redacted()
                    )));
                }
                Some(ConnectionUrl::new(raw))
            }
            None => None,
        };
        let alg = match get("jwt_alg").map(|v| (v, v.raw.trim().to_ascii_uppercase())) {
            None => JwtAlg::Hs256,
            Some((_, alg)) if alg == "HS256" => JwtAlg::Hs256,
            Some((_, alg)) if alg == "EDDSA" => JwtAlg::EdDsa,
            Some((_, alg)) if alg == "RS256" => JwtAlg::Rs256,
            Some((v, _)) => {
                return Err(SettingsError(format!(
                    "{}: unsupported algorithm {:?}; supported: HS256, EdDSA, RS256",
                    v.name("jwt_alg"),
                    v.raw
                )));
            }
        };
        let private_key = match get("jwt_private_key") {
            Some(v) => Some(read_pem(v, "jwt_private_key")?),
            None if alg != JwtAlg::Hs256 => {
                return Err(SettingsError(format!(
                    "INTAKE_JWT_PRIVATE_KEY: required with INTAKE_JWT_ALG={alg:?} (a PKCS#8 PEM key, or the path of one)"
                )));
            }
            None => None,
        };
        let previous_key = match get("jwt_previous_key") {
            Some(v) if alg == JwtAlg::Hs256 => Some(Secret::new(v.raw.trim())),
            Some(v) => Some(read_pem(v, "jwt_previous_key")?),
            None => None,
        };
        let secret = match get("jwt_secret") {
            Some(v) if v.raw.len() < 32 => {
                return Err(SettingsError(format!(
                    "{}: the secret must be at least 32 characters long (it has {})",
                    v.name("jwt_secret"),
                    v.raw.len()
                )));
            }
            Some(v) => Some(Secret::new(v.raw.clone())),
            None => None,
        };
        let issuer = get("jwt_issuer")
            .map(|v| v.raw.trim().to_string())
            .unwrap_or_else(|| "intake".into());
        let audience = get("jwt_audience")
            .map(|v| v.raw.trim().to_string())
            .unwrap_or_else(|| "intake-api".into());
        let max_body_bytes = match get("max_body_bytes") {
            Some(v) => parse_bytes(&v.raw).ok_or_else(|| {
                SettingsError(format!(
                    "{}: expected a size in bytes (e.g. 67108864 or 64MiB) of at least 1KiB, got {:?}",
                    v.name("max_body_bytes"),
                    v.raw
                ))
            })?,
            None => 64 * 1024 * 1024,
        };
        let max_stream_bytes = match get("max_stream_bytes") {
            Some(v) => parse_bytes(&v.raw).ok_or_else(|| {
                SettingsError(format!(
                    "{}: expected a size in bytes (e.g. 16GiB) of at least 1KiB, got {:?}",
                    v.name("max_stream_bytes"),
                    v.raw
                ))
            })? as u64,
            None => 16 << 30,
        };
        let max_bulk_requests = match get("max_bulk_requests") {
            Some(v) => Some(parse_number(Some(v), "max_bulk_requests", 0, 1, 10_000)? as u32),
            None => None,
        };
        let body_timeout = Duration::from_millis(parse_number(
            get("body_timeout_ms"),
            "body_timeout_ms",
            30_000,
            100,
            3_600_000,
        )?);
        let redis_timeout = Duration::from_millis(parse_number(
            get("redis_timeout_ms"),
            "redis_timeout_ms",
            100,
            5,
            60_000,
        )?);
        let rate_limit_per_second = parse_number(
            get("rate_limit_per_second"),
            "rate_limit_per_second",
            100,
            0,
            1_000_000,
        )? as u32;
        let rate_limit_burst = parse_number(
            get("rate_limit_burst"),
            "rate_limit_burst",
            200,
            1,
            1_000_000,
        )? as u32;
        let idempotency_ttl = Duration::from_secs(parse_number(
            get("idempotency_ttl_seconds"),
            "idempotency_ttl_seconds",
            86_400,
            60,
            30 * 86_400,
        )?);
        let idempotency_lease = Duration::from_millis(parse_number(
            get("idempotency_lease_ms"),
            "idempotency_lease_ms",
            10_000,
            300,
            600_000,
        )?);
        let import_max_bytes = match get("import_max_bytes") {
            Some(v) => parse_bytes(&v.raw).ok_or_else(|| {
                SettingsError(format!(
                    "{}: expected a size in bytes (e.g. 512MiB) of at least 1KiB, got {:?}",
                    v.name("import_max_bytes"),
                    v.raw
                ))
            })? as u64,
            None => 512 << 20,
        };
        let import_confirm_ttl = Duration::from_secs(parse_number(
            get("import_confirm_ttl_seconds"),
            "import_confirm_ttl_seconds",
            86_400,
            60,
            30 * 86_400,
        )?);
        let import_retention = Duration::from_secs(
            86_400
                * parse_number(
                    get("import_retention_days"),
                    "import_retention_days",
                    30,
                    1,
                    3_650,
                )?,
        );
        let import_lease = Duration::from_millis(parse_number(
            get("import_lease_ms"),
            "import_lease_ms",
            30_000,
            1_000,
            600_000,
        )?);
        let import_runner = parse_number(get("import_runner"), "import_runner", 1, 0, 1)? == 1;
        let admin_token_max_ttl = Duration::from_secs(parse_number(
            get("admin_token_max_ttl_seconds"),
            "admin_token_max_ttl_seconds",
            7 * 86_400,
            60,
            365 * 86_400,
        )?);
        let shutdown_timeout = Duration::from_secs(parse_number(
            get("shutdown_timeout_seconds"),
            "shutdown_timeout_seconds",
            25,
            1,
            3_600,
        )?);
        let log = get("log")
            .map(|v| v.raw.trim().to_string())
            .unwrap_or_else(|| "info".into());
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log) {
            let name = get("log")
                .map(|v| v.name("log"))
                .unwrap_or_else(|| "INTAKE_LOG".into());
            return Err(SettingsError(format!(
                "{name}: not a valid tracing filter ({e})"
            )));
        }
        let log_format = match get("log_format") {
            None => LogFormat::Text,
            Some(v) => match v.raw.trim().to_ascii_lowercase().as_str() {
                "text" | "pretty" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(SettingsError(format!(
                        "{}: expected `text` or `json`, got {:?}",
                        v.name("log_format"),
                        v.raw
                    )));
                }
            },
        };
        let otlp_endpoint = env("OTEL_EXPORTER_OTLP_ENDPOINT").filter(|s| !s.trim().is_empty());

        Ok(Settings {
            bind,
            data_dir,
            database_url,
            database_max_connections,
            database_timeout,
            redis_url,
            jwt: JwtSettings {
                alg,
                secret,
                private_key,
                previous_key,
                issuer,
                audience,
            },
            max_body_bytes,
            max_stream_bytes,
            max_bulk_requests,
            body_timeout,
            redis_timeout,
            rate_limit_per_second,
            rate_limit_burst,
            idempotency_ttl,
            idempotency_lease,
            import_max_bytes,
            import_confirm_ttl,
            import_retention,
            import_lease,
            import_runner,
            admin_token_max_ttl,
            shutdown_timeout,
            log,
            log_format,
            otlp_endpoint,
        })
    }
}

/// One layer of settings for figment: raw values by setting name, and
/// where they came from.
struct Layer {
    metadata: Metadata,
    values: Dict,
}

impl Layer {
    /// The settings file: known keys only, each a string, a number or a
    /// boolean (read as text, checked by the setting's parser).
    fn file(path: &Path) -> Result<Layer, SettingsError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SettingsError(format!("{}: cannot be read: {e}", path.display())))?;
        let table: toml::Table = text
            .parse()
            .map_err(|e| SettingsError(format!("{}: not valid TOML: {e}", path.display())))?;
        let mut values = Dict::new();
        for (key, value) in table {
            if !KEYS.contains(&key.as_str()) {
                return Err(SettingsError(format!(
                    "{}: unknown setting `{key}` (known: {})",
                    path.display(),
                    KEYS.join(", ")
                )));
            }
            let raw = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(SettingsError(format!(
                        "`{key}` in {}: expected a string or a number, got a {}",
                        path.display(),
                        other.type_str()
                    )));
                }
            };
            values.insert(key, raw.into());
        }
        Ok(Layer {
            metadata: Metadata::named("settings file")
                .source(figment::Source::File(path.to_path_buf())),
            values,
        })
    }

    /// The `INTAKE_*` variables of `env` (only the known settings).
    fn environment(env: &impl Fn(&str) -> Option<String>) -> Layer {
        let values = KEYS
            .iter()
            .filter_map(|key| {
                let raw = env(&format!("INTAKE_{}", key.to_uppercase()))?;
                Some((key.to_string(), raw.into()))
            })
            .collect();
        Layer {
            metadata: Metadata::named("environment"),
            values,
        }
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.values.clone()))
    }
}

/// A PEM given inline, or the path of a file holding one.
fn read_pem(v: &Value, key: &str) -> Result<Secret, SettingsError> {
    let raw = v.raw.trim();
    if raw.starts_with("-----BEGIN") {
        return Ok(Secret::new(raw));
    }
    match std::fs::read_to_string(raw) {
        Ok(text) if text.trim_start().starts_with("-----BEGIN") => Ok(Secret::new(text)),
        Ok(_) => Err(SettingsError(format!(
            "{}: {raw} does not hold a PEM key",
            v.name(key)
        ))),
        Err(e) => Err(SettingsError(format!(
            "{}: expected a PEM key or the path of one; cannot read {raw}: {e}",
            v.name(key)
        ))),
    }
}

fn parse_number(
    value: Option<&Value>,
    key: &str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, SettingsError> {
    let Some(v) = value else { return Ok(default) };
    match v.raw.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(SettingsError(format!(
            "{}: expected a whole number from {min} to {max}, got {:?}",
            v.name(key),
            v.raw
        ))),
    }
}

/// `1048576`, `1024KiB`, `64MiB`, `1GiB` (also KB/MB/GB, read as binary units).
fn parse_bytes(raw: &str) -> Option<usize> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (digits, unit) = raw.split_at(split);
    let n: usize = digits.parse().ok()?;
    let factor: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(factor).filter(|n| *n >= 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::load_from(None, |k| env.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_embedded_setup() {
        let s = load(&[]).expect("defaults load");
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database_url.expose(), "sqlite://./data/intake.db");
        assert_eq!(s.max_body_bytes, 64 * 1024 * 1024);
        assert!(s.redis_url.is_none());
        assert!(s.jwt.secret.is_none());
    }

    #[test]
    fn environment_overrides_and_data_dir_moves_the_database() {
        let s = load(&[
            ("INTAKE_DATA_DIR", "/tmp/x"),
            ("INTAKE_MAX_BODY_BYTES", "2MiB"),
        ])
        .expect("loads");
        assert_eq!(s.database_url.expose(), "sqlite:///tmp/x/intake.db");
        assert_eq!(s.max_body_bytes, 2 * 1024 * 1024);
    }

    #[test]
    fn a_bad_value_names_the_setting() {
        let err = load(&[("INTAKE_BIND", "nowhere")]).expect_err("rejected");
        assert!(err.to_string().starts_with("INTAKE_BIND:"), "{err}");
        let err = load(&[("INTAKE_MAX_BODY_BYTES", "lots")]).expect_err("rejected");
        assert!(
            err.to_string().starts_with("INTAKE_MAX_BODY_BYTES:"),
            "{err}"
        );
        let err = load(&[("INTAKE_JWT_SECRET", "short")]).expect_err("rejected");
        assert!(err.to_string().contains("at least 32"), "{err}");
        assert!(
            !err.to_string().contains("short"),
            "the secret is not echoed: {err}"
        );
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let s = load(&[
            (
                "INTAKE_JWT_SECRET",
                "0123456789abcdef0123456789abcdef-topsecret",
            ),
            (
                "INTAKE_DATABASE_URL",
                "postgres://app:hunter2@db:5432/intake",
            ),
            ("INTAKE_REDIS_URL", "redis://:redispass@cache:6379"),
        ])
        .expect("loads");
        let debug = format!("{s:?}");
        assert!(!debug.contains("topsecret"), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("redispass"), "{debug}");
        assert!(
            debug.contains("postgres://app:***@db:5432/intake"),
            "{debug}"
        );
    }

    #[test]
    fn no_part_of_a_password_is_printed_wherever_it_sits_in_the_url() {
        for (url, shown) in [
            (
                "postgres://app:p@ss/w0rd@db:5432/intake",
                "postgres://app:***@db:5432/intake",
            ),
            (
                "postgres://db:5432/intake?user=app&password=hunter2&sslmode=require",
                "postgres://db:5432/intake?user=app&password=***&sslmode=require",
            ),
            (
                "postgres://app@db/intake?sslpassword=keypass",
                "postgres://app@db/intake?sslpassword=***",
            ),
            ("sqlite://./data/intake.db", "sqlite://./data/intake.db"),
        ] {
            let redacted = ConnectionUrl::new(url).redacted();
            assert_eq!(redacted, shown);
            for secret in ["p@ss", "w0rd", "hunter2", "keypass"] {
                assert!(!redacted.contains(secret), "{redacted}");
            }
        }
    }

    #[test]
    fn file_layer_sits_between_defaults_and_environment() {
        let dir = std::env::temp_dir().join(format!("intake-settings-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("intake.toml");
        std::fs::write(&file, "bind = \"0.0.0.0:9000\"\nmax_body_bytes = 4096\n").expect("write");
        let s = Settings::load_from(Some(&file), |k| {
            (k == "INTAKE_MAX_BODY_BYTES").then(|| "8192".to_string())
        })
        .expect("loads");
        assert_eq!(s.bind.to_string(), "0.0.0.0:9000");
        assert_eq!(s.max_body_bytes, 8192);

        // A bad value is named as it is spelled in the layer that gave it.
        std::fs::write(&file, "body_timeout_ms = 5\nbind = \"nowhere\"\n").expect("write");
        let err = Settings::load_from(Some(&file), |_| None).expect_err("bad bind");
        assert!(
            err.to_string().starts_with(&format!(
                "`bind` in {}: expected an address",
                file.display()
            )),
            "{err}"
        );
        let err = Settings::load_from(Some(&file), |k| {
            (k == "INTAKE_BIND").then(|| "127.0.0.1:1".to_string())
        })
        .expect_err("bad timeout");
        assert!(
            err.to_string().starts_with(&format!(
                "`body_timeout_ms` in {}: expected a whole number from 100",
                file.display()
            )),
            "{err}"
        );
        let err = Settings::load_from(Some(&file), |k| match k {
            "INTAKE_BIND" => Some("127.0.0.1:1".to_string()),
            "INTAKE_BODY_TIMEOUT_MS" => Some("7".to_string()),
            _ => None,
        })
        .expect_err("bad timeout from the environment");
        assert!(
            err.to_string()
                .starts_with("INTAKE_BODY_TIMEOUT_MS: expected a whole number from 100"),
            "{err}"
        );

        std::fs::write(&file, "bnd = \"0.0.0.0:9000\"\n").expect("write");
        let err = Settings::load_from(Some(&file), |_| None).expect_err("typo rejected");
        assert!(err.to_string().contains("unknown setting `bnd`"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
