//! Minting and verifying the JWTs callers present.
//!
//! The algorithm is pinned by configuration: a token whose header names
//! another algorithm (`none` included) is refused before its signature is
//! looked at. `exp`, `iss`, `aud` and `sub` are required; `nbf` is honoured;
//! clocks may differ by [`LEEWAY_SECONDS`].

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Scope;
use crate::settings::{JwtAlg, Secret, Settings};

/// Accepted clock difference between the minting and the verifying host.
pub const LEEWAY_SECONDS: u64 = 30;

/// The name of the generated secret in the data folder.
pub const SECRET_FILE: &str = "jwt_secret";

/// The claims of every intake token.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// `admin` or `integration:<uuid>`.
    pub sub: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Space-separated scopes.
    #[serde(default)]
    pub scope: String,
}

impl Claims {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split_ascii_whitespace()
    }

    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes().any(|s| s == scope.as_str())
    }
}

/// The keys and rules for this deployment's tokens.
pub struct JwtKeys {
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("algorithm", &self.algorithm)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    /// The keys the settings name; the HS256 secret is read from (or first
    /// generated into) the data folder when not configured.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let secret = match &settings.jwt.secret {
            Some(secret) => secret.clone(),
            None => load_or_generate_secret(&settings.data_dir)?,
        };
        let algorithm = match settings.jwt.alg {
            JwtAlg::Hs256 => Algorithm::HS256,
        };
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&settings.jwt.issuer]);
        validation.set_audience(&[&settings.jwt.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        Ok(Self {
            algorithm,
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
            issuer: settings.jwt.issuer.clone(),
            audience: settings.jwt.audience.clone(),
        })
    }

    /// A signed token for `subject` with `scopes`, valid for `ttl`.
    pub fn mint(
        &self,
        subject: &str,
        scopes: &[Scope],
        ttl: Duration,
    ) -> anyhow::Result<(String, Claims)> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: subject.to_string(),
            jti: Uuid::now_v7().to_string(),
            iat: now,
            exp: now.saturating_add(i64::try_from(ttl.as_secs())?),
            nbf: None,
            scope: scopes
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        };
        let token = self.sign(&claims)?;
        Ok((token, claims))
    }

    /// Signs arbitrary claims with this deployment's key (tests build
    /// deliberately broken tokens with it).
    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        Ok(jsonwebtoken::encode(
            &Header::new(self.algorithm),
            claims,
            &self.encoding,
        )?)
    }

    /// The claims of a valid token, or why it is not valid (for logs; callers
    /// are told only that the token is invalid).
    pub fn verify(&self, token: &str) -> Result<Claims, String> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| e.to_string())
    }
}

/// Reads the generated secret, creating it (readable by the owner only) on
/// first use. Two processes starting together agree: the loser of the
/// `create_new` race reads the winner's file.
fn load_or_generate_secret(data_dir: &Path) -> anyhow::Result<Secret> {
    let path = data_dir.join(SECRET_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let text = text.trim();
        anyhow::ensure!(
            text.len() >= 32,
            "{}: the stored secret is shorter than 32 characters",
            path.display()
        );
        return Ok(Secret::new(text));
    }
    std::fs::create_dir_all(data_dir).map_err(|e| {
        anyhow::anyhow!("INTAKE_DATA_DIR: cannot create {}: {e}", data_dir.display())
    })?;
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(&path) {
        Ok(mut file) => {
            file.write_all(secret.as_bytes())?;
            file.sync_all()?;
            tracing::info!(path = %path.display(), "generated a new token signing secret");
            Ok(Secret::new(secret))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            load_or_generate_secret(data_dir)
        }
        Err(e) => Err(anyhow::anyhow!("cannot write {}: {e}", path.display())),
    }
}
