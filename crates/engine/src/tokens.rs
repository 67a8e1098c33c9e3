//! Access tokens: EdDSA JWTs signed inside the key provider.
//!
//! Issuing builds the JWS signing input here and asks the provider to sign it,
//! so the private key never leaves the provider. Verification is local (the
//! public key is cached) and accepts only `alg=EdDSA` with our `kid`.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::{Deserialize, Serialize};
use strongroom_core::{ApiKeyId, Error, OrgId, Principal, Result, Role, Subject, VaultId};
use strongroom_kms::{KeyProvider, SigningPublicKey};

const ISSUER: &str = "strongroom";
const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The claims Strongroom puts in a token (1claw's names).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// `user:<uuid>` or `agent:<uuid>`.
    pub sub: String,
    /// Organisation id.
    pub org: String,
    /// Issued at (seconds).
    pub iat: i64,
    /// Expiry (seconds).
    pub exp: i64,
    /// Token id.
    pub jti: String,
    /// Issuer.
    pub iss: String,
    /// A user's role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Scopes (agents).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Vault binding (agents).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vault_ids: Vec<VaultId>,
    /// The personal API key this token was exchanged for (its revocation ends the token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub akid: Option<String>,
    /// The agent's token generation at issue: the token ends when the agent's
    /// generation moves on (key rotation, deactivation).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tgen: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A verified token: the principal it names, and what must still hold.
#[derive(Debug)]
pub struct VerifiedToken {
    /// The principal (role and restrictions as the token says; checked afresh
    /// against the store by the engine).
    pub principal: Principal,
    /// The personal API key it was exchanged for.
    pub api_key: Option<ApiKeyId>,
    /// The agent token generation it was issued under.
    pub generation: u32,
}

/// What a token says: who, where, with which limits, for how long.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    /// The principal.
    pub subject: Subject,
    /// Its organisation.
    pub org: OrgId,
    /// A user's role.
    pub role: Option<Role>,
    /// Scope ceiling.
    pub scopes: Vec<String>,
    /// Vault binding.
    pub vault_ids: Vec<VaultId>,
    /// The personal API key it was exchanged for.
    pub api_key_id: Option<ApiKeyId>,
    /// An agent's token generation.
    pub generation: u32,
    /// Lifetime.
    pub ttl: Duration,
}

/// Issues and verifies tokens.
pub struct TokenService {
    kms: Arc<dyn KeyProvider>,
    public: SigningPublicKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Tokens whose signature already verified, by SHA-256 of the whole token,
    /// until they expire: the hot path skips the Ed25519 verification. Only the
    /// exact same token string hits; revocation and the principal's state are
    /// checked on every request regardless.
    verified: std::sync::Mutex<std::collections::HashMap<[u8; 32], Claims>>,
}

/// How many verified tokens are remembered.
const VERIFIED_CACHE_MAX: usize = 10_000;

/// A freshly issued token.
pub struct IssuedToken {
    /// The JWT.
    pub token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IssuedToken(<redacted>, expires_in={})", self.expires_in)
    }
}

impl TokenService {
    /// Builds the service around a provider's signing key.
    pub fn new(kms: Arc<dyn KeyProvider>) -> Self {
        let public = kms.signing_public_key();
        let decoding = DecodingKey::from_ed_components(&B64URL.encode(public.ed25519))
            .expect("a 32-byte Ed25519 key is a valid decoding key");
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss"]);
        validation.leeway = 5;
        validation.validate_aud = false;
        TokenService {
            kms,
            public,
            decoding,
            validation,
            verified: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The published verification key.
    pub fn public_key(&self) -> &SigningPublicKey {
        &self.public
    }

    /// Signs a token for a grant.
    pub async fn issue(&self, g: TokenGrant) -> Result<IssuedToken> {
        let TokenGrant {
            subject,
            org,
            role,
            scopes,
            vault_ids,
            api_key_id,
            generation,
            ttl,
        } = g;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            sub: subject.to_string(),
            org: org.to_string(),
            iat: now,
            exp: now + ttl.as_secs() as i64,
            jti: uuid::Uuid::new_v4().to_string(),
            iss: ISSUER.into(),
            role,
            scopes,
            vault_ids,
            akid: api_key_id.map(|k| k.to_string()),
            tgen: generation,
        };
        let header = serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": self.public.kid});
        let mut input = B64URL.encode(header.to_string());
        input.push('.');
        input.push_str(&B64URL.encode(serde_json::to_vec(&claims).map_err(Error::internal)?));
        let sig = self.kms.sign(input.as_bytes()).await?;
        input.push('.');
        input.push_str(&B64URL.encode(sig));
        Ok(IssuedToken {
            token: input,
            expires_in: ttl.as_secs(),
        })
    }

    /// Verifies a token and returns its claims. Every failure is the same 401.
    pub fn verify(&self, token: &str) -> Result<Claims> {
        let bad = || Error::Unauthenticated("invalid or expired token".into());
        if token.len() > 8192 {
            return Err(bad());
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let key: [u8; 32] = {
            use sha2::Digest;
            sha2::Sha256::digest(token.as_bytes()).into()
        };
        if let Some(c) = self.verified.lock().expect("token cache").get(&key)
            && c.exp + (self.validation.leeway as i64) > now
        {
            return Ok(c.clone());
        }
        let header = decode_header(token).map_err(|_| bad())?;
        if header.alg != Algorithm::EdDSA || header.kid.as_deref() != Some(self.public.kid.as_str())
        {
            return Err(bad());
        }
        let data = decode::<Claims>(token, &self.decoding, &self.validation).map_err(|_| bad())?;
        let mut cache = self.verified.lock().expect("token cache");
        if cache.len() >= VERIFIED_CACHE_MAX {
            cache.retain(|_, c| c.exp > now);
            if cache.len() >= VERIFIED_CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(key, data.claims.clone());
        Ok(data.claims)
    }

    /// Verifies a token and builds the principal it names, with the API key it
    /// was exchanged for, if any.
    pub fn principal(&self, token: &str, ip: Option<std::net::IpAddr>) -> Result<VerifiedToken> {
        let c = self.verify(token)?;
        let bad = || Error::Unauthenticated("invalid or expired token".into());
        let subject: Subject = c.sub.parse().map_err(|_| bad())?;
        let org_id: OrgId = c.org.parse().map_err(|_| bad())?;
        let akid = c
            .akid
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|_| bad())?;
        let p = Principal {
            subject,
            org_id,
            role: c.role,
            vault_ids: c.vault_ids,
            scopes: c.scopes,
            token_id: Some(c.jti),
            token_exp: Some(c.exp),
            ip,
            intents_api: false,
        };
        Ok(VerifiedToken {
            principal: p,
            api_key: akid,
            generation: c.tgen,
        })
    }
}
