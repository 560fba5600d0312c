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
use std::str::FromStr;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::Scope;
use crate::ids::TokenId;
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

/// One key tokens may be verified with.
struct Verifier {
    kid: Option<String>,
    key: DecodingKey,
}

/// The keys and rules for this deployment's tokens.
pub struct JwtKeys {
    algorithm: Algorithm,
    encoding: EncodingKey,
    kid: Option<String>,
    /// The current key first, then the previous one during a rotation.
    verifiers: Vec<Verifier>,
    validation: Validation,
    jwks: JwkSet,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// A public key as a JWK with its RFC 7638 thumbprint as `kid`.
fn public_jwk(mut jwk: Jwk, algorithm: Algorithm) -> anyhow::Result<Jwk> {
    let kid = jwk.thumbprint(ThumbprintHash::SHA256)?;
    jwk.common.key_id = Some(kid);
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = Some(KeyAlgorithm::from_str(&format!("{algorithm:?}"))?);
    Ok(jwk)
}

impl JwtKeys {
    /// The keys the settings name; the HS256 secret is read from (or first
    /// generated into) the data folder when not configured.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let jwt = &settings.jwt;
        let (algorithm, encoding, mut verifiers, mut jwks) = match jwt.alg {
            JwtAlg::Hs256 => {
                let secret = match &jwt.secret {
                    Some(secret) => secret.clone(),
                    None => load_or_generate_secret(&settings.data_dir)?,
                };
                let verifier = Verifier {
                    kid: None,
                    key: DecodingKey::from_secret(secret.expose().as_bytes()),
                };
                (
                    Algorithm::HS256,
                    EncodingKey::from_secret(secret.expose().as_bytes()),
                    vec![verifier],
                    Vec::new(),
                )
            }
            JwtAlg::EdDsa | JwtAlg::Rs256 => {
                let algorithm = if jwt.alg == JwtAlg::EdDsa {
                    Algorithm::EdDSA
                } else {
                    Algorithm::RS256
                };
                let pem = jwt.private_key.as_ref().ok_or_else(|| {
                    anyhow::anyhow!(
                        "INTAKE_JWT_PRIVATE_KEY: required with INTAKE_JWT_ALG={algorithm:?}"
                    )
                })?;
                let encoding = match algorithm {
                    Algorithm::EdDSA => EncodingKey::from_ed_pem(pem.expose().as_bytes()),
                    _ => EncodingKey::from_rsa_pem(pem.expose().as_bytes()),
                }
                .map_err(|e| {
                    anyhow::anyhow!(
                        "INTAKE_JWT_PRIVATE_KEY: not a {algorithm:?} private key in PKCS#8 PEM: {e}"
                    )
                })?;
                let jwk = public_jwk(Jwk::from_encoding_key(&encoding, algorithm)?, algorithm)?;
                let key = DecodingKey::from_jwk(&jwk)?;
                let verifier = Verifier {
                    kid: jwk.common.key_id.clone(),
                    key,
                };
                (algorithm, encoding, vec![verifier], vec![jwk])
            }
        };
        if let Some(previous) = &jwt.previous_key {
            match algorithm {
                Algorithm::HS256 => verifiers.push(Verifier {
                    kid: None,
                    key: DecodingKey::from_secret(previous.expose().as_bytes()),
                }),
                _ => {
                    let key = match algorithm {
                        Algorithm::EdDSA => DecodingKey::from_ed_pem(previous.expose().as_bytes()),
                        _ => DecodingKey::from_rsa_pem(previous.expose().as_bytes()),
                    }
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "INTAKE_JWT_PREVIOUS_KEY: not a {algorithm:?} public key in PEM: {e}"
                        )
                    })?;
                    let jwk =
                        public_jwk(Jwk::from_decoding_key(&key, Some(algorithm))?, algorithm)?;
                    verifiers.push(Verifier {
                        kid: jwk.common.key_id.clone(),
                        key: DecodingKey::from_jwk(&jwk)?,
                    });
                    jwks.push(jwk);
                }
            }
        }
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&jwt.issuer]);
        validation.set_audience(&[&jwt.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        Ok(Self {
            algorithm,
            encoding,
            kid: verifiers.first().and_then(|v| v.kid.clone()),
            verifiers,
            validation,
            jwks: JwkSet { keys: jwks },
            issuer: jwt.issuer.clone(),
            audience: jwt.audience.clone(),
        })
    }

    /// The public keys (JWKS) of an EdDSA/RS256 deployment; empty for HS256.
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
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
            jti: TokenId::new().to_string(),
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
        let mut header = Header::new(self.algorithm);
        header.kid = self.kid.clone();
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }

    /// The claims of a valid token, or why it is refused: the reason for
    /// the logs, and a sentence the caller may read (it says "expired" only
    /// once the signature is verified, so it tells nothing to a forger).
    pub fn verify(&self, token: &str) -> Result<Claims, Refusal> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| Refusal::invalid(e.to_string()))?;
        if header.alg != self.algorithm {
            return Err(Refusal::invalid(format!(
                "algorithm {:?} is not the configured {:?}",
                header.alg, self.algorithm
            )));
        }
        // RFC 7515 §4.1.11: a token whose `crit` names an extension the
        // verifier does not implement must be refused; none is implemented.
        if header.crit.is_some() {
            return Err(Refusal::invalid(
                "the token's `crit` header names extensions this server does not implement",
            ));
        }
        // The key the token names; without a (known) kid, each key in turn.
        let named: Vec<&Verifier> = match &header.kid {
            Some(kid) => self
                .verifiers
                .iter()
                .filter(|v| v.kid.as_ref() == Some(kid))
                .collect(),
            None => Vec::new(),
        };
        let candidates: Vec<&Verifier> = if named.is_empty() {
            self.verifiers.iter().collect()
        } else {
            named
        };
        let mut last_error = String::from("no key");
        for verifier in candidates {
            // jsonwebtoken checks the signature before the claims: a time
            // claim is only reported for a token this key signed.
            match jsonwebtoken::decode::<Claims>(token, &verifier.key, &self.validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => match e.kind() {
                    ErrorKind::ExpiredSignature => {
                        return Err(Refusal::new(e.to_string(), Refusal::EXPIRED));
                    }
                    ErrorKind::ImmatureSignature => {
                        return Err(Refusal::new(e.to_string(), Refusal::NOT_YET_VALID));
                    }
                    _ => last_error = e.to_string(),
                },
            }
        }
        Err(Refusal::invalid(last_error))
    }
}

/// Why a token is refused: `reason` for the logs, `public` for the caller.
#[derive(Debug)]
pub struct Refusal {
    pub reason: String,
    pub public: &'static str,
}

impl Refusal {
    /// Said of any token this server cannot verify (nothing more is told).
    pub const INVALID: &'static str =
        "The bearer token is not valid: it is malformed or was not signed by this service.";
    pub const EXPIRED: &'static str = "The token expired; use a new one.";
    pub const NOT_YET_VALID: &'static str =
        "The token is not valid yet (its `nbf` is in the future).";
    pub const REVOKED: &'static str = "The token was revoked; use a new one.";

    pub fn new(reason: impl Into<String>, public: &'static str) -> Self {
        Self {
            reason: reason.into(),
            public,
        }
    }

    pub fn invalid(reason: impl Into<String>) -> Self {
        Self::new(reason, Self::INVALID)
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
    crate::store::private_dir(data_dir).map_err(|e| {
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
