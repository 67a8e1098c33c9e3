//! `jwt`: access-token verification (`TokenService::principal`).
//!
//! A token service over a memory key provider (a fresh random signing key per
//! process) issues one real user token at start. The first input byte picks
//! a mode, the rest is its argument:
//!
//! - `0`: the rest is a token. Nobody but the provider can sign, so it is
//!   refused as `Unauthenticated` (a 401), whatever it holds.
//! - `1`: the rest is a list of edits `(offset, byte)` (3 bytes each) applied
//!   to the issued token. The result is refused as `Unauthenticated`, or, if
//!   the edit was a no-op for the decoder (base64's unused trailing bits),
//!   verifies to exactly the original claims: never to other claims.
//! - `2`: the rest is a claims object, signed for real with the provider's
//!   key under a correct header (a token the server could have issued, or a
//!   bug in issuing could). It is refused as `Unauthenticated`, or accepted
//!   only if it is unexpired, from our issuer, and names a principal that
//!   parses; the principal carries those claims.
//! - `3`: the rest is a header object, signed for real over the issued
//!   token's claims. Accepted only if the header says `alg` `EdDSA` and our
//!   `kid`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use strongroom_core::{Error, OrgId, Role, Subject, UserId, VaultId};
use strongroom_engine::tokens::{Claims, TokenGrant, TokenService};
use strongroom_kms::KeyProvider;
use strongroom_kms::soft::SoftProvider;

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The token service and one token it issued.
pub struct Harness {
    kms: Arc<dyn KeyProvider>,
    tokens: TokenService,
    token: String,
    claims: serde_json::Value,
}

impl Harness {
    /// A fresh provider, service and token.
    pub fn new() -> Self {
        let kms: Arc<dyn KeyProvider> =
            Arc::new(SoftProvider::memory().expect("a memory key provider"));
        let tokens = TokenService::new(kms.clone());
        let issued = crate::runtime()
            .block_on(tokens.issue(TokenGrant {
                subject: Subject::User(UserId::new()),
                org: OrgId::new(),
                role: Some(Role::Admin),
                scopes: vec!["prod/**".into()],
                vault_ids: vec![VaultId::new()],
                api_key_id: None,
                generation: 3,
                ttl: Duration::from_secs(24 * 3600),
            }))
            .expect("issuing a token");
        let claims = claims_json(
            &tokens
                .verify(&issued.token)
                .expect("the issued token verifies"),
        );
        Harness {
            kms,
            tokens,
            token: issued.token,
            claims,
        }
    }

    /// Checks one input.
    pub fn check(&self, data: &[u8]) {
        let Some((&mode, rest)) = data.split_first() else {
            return;
        };
        match mode % 4 {
            0 => {
                let token = String::from_utf8_lossy(rest);
                let r = self.tokens.principal(&token, None);
                assert!(
                    matches!(r, Err(Error::Unauthenticated(_))),
                    "an unsigned token was not refused as 401: {:?}",
                    r.map(|v| v.principal)
                );
            }
            1 => {
                let mut t = self.token.as_bytes().to_vec();
                for e in rest.chunks_exact(3) {
                    let at = usize::from(u16::from_le_bytes([e[0], e[1]])) % t.len();
                    t[at] = e[2];
                }
                let token = String::from_utf8_lossy(&t);
                match self.tokens.verify(&token) {
                    Ok(c) => assert_eq!(
                        claims_json(&c),
                        self.claims,
                        "an edited token verified to other claims"
                    ),
                    Err(e) => assert!(matches!(e, Error::Unauthenticated(_)), "{e:?}"),
                }
            }
            2 => {
                let header = serde_json::json!({
                    "alg": "EdDSA", "typ": "JWT", "kid": self.tokens.public_key().kid,
                });
                let token = self.sign(header.to_string().as_bytes(), rest);
                let Ok(v) = self.tokens.principal(&token, None).map_err(|e| {
                    assert!(matches!(e, Error::Unauthenticated(_)), "{e:?}");
                }) else {
                    return;
                };
                // As the service reads them: unknown keys are ignored, and
                // serde_json does not check the UTF-8 of what it ignores, so
                // the text need not be JSON a `Value` accepts.
                let claims: Claims =
                    serde_json::from_slice(rest).expect("accepted claims parse as Claims");
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                assert!(claims.exp + 5 >= now, "an expired token was accepted");
                assert_eq!(claims.iss, "strongroom", "another issuer accepted");
                assert_eq!(v.principal.token_exp, Some(claims.exp));
                let sub: Subject = claims.sub.parse().expect("an accepted sub parses");
                assert_eq!(v.principal.subject, sub);
                assert_eq!(claims.org.parse::<OrgId>().ok(), Some(v.principal.org_id));
            }
            _ => {
                let claims = serde_json::to_vec(&self.claims).expect("claims serialize");
                let token = self.sign(rest, &claims);
                if self.tokens.verify(&token).is_ok() {
                    let h: Header =
                        serde_json::from_slice(rest).expect("an accepted header parses");
                    assert_eq!(h.alg, "EdDSA", "header accepted");
                    assert_eq!(
                        h.kid.as_deref(),
                        Some(self.tokens.public_key().kid.as_str()),
                        "header accepted"
                    );
                }
            }
        }
    }

    /// A token with this header and payload, signed by the provider.
    fn sign(&self, header: &[u8], payload: &[u8]) -> String {
        let mut input = B64URL.encode(header);
        input.push('.');
        input.push_str(&B64URL.encode(payload));
        let sig = crate::runtime()
            .block_on(self.kms.sign(input.as_bytes()))
            .expect("the provider signs");
        input.push('.');
        input.push_str(&B64URL.encode(sig));
        input
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

/// The header fields verification depends on (others are ignored).
#[derive(serde::Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

fn claims_json(c: &Claims) -> serde_json::Value {
    serde_json::to_value(c).expect("claims serialize")
}

/// The target.
pub fn run(data: &[u8]) {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(Harness::new).check(data);
}
