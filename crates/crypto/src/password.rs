//! Argon2id password hashing (PHC strings, default parameters: m=19 MiB, t=2, p=1).

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

/// Hashing parameters. `Default` is the production setting.
#[derive(Debug, Clone, Copy)]
pub struct PasswordParams {
    /// Memory in KiB.
    pub m_cost: u32,
    /// Iterations.
    pub t_cost: u32,
}

impl Default for PasswordParams {
    fn default() -> Self {
        PasswordParams {
            m_cost: Params::DEFAULT_M_COST,
            t_cost: Params::DEFAULT_T_COST,
        }
    }
}

fn hasher(p: PasswordParams) -> Argon2<'static> {
    let params = Params::new(p.m_cost, p.t_cost, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string.
pub fn hash(password: &str, params: PasswordParams) -> String {
    hasher(params)
        .hash_password(password.as_bytes())
        .expect("argon2 hashing of a bounded password")
        .to_string()
}

/// Verifies a password against a PHC string (its own parameters apply).
/// A malformed stored hash verifies as false.
pub fn verify(password: &str, phc: &str) -> bool {
    hasher(PasswordParams::default())
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// A hash of a throwaway password with the given parameters, to verify against
/// when a login names an unknown user, so the answer takes as long as for a
/// wrong password.
pub fn dummy_hash(params: PasswordParams) -> String {
    hash(&crate::random::string_from(b"abcdefghijklmnop", 24), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_verifies() {
        let p = PasswordParams {
            m_cost: 256,
            t_cost: 1,
        };
        let h = hash("correct horse", p);
        assert!(h.starts_with("$argon2id$"));
        assert!(!h.contains("correct horse"));
        assert!(verify("correct horse", &h));
        assert!(!verify("correct horsf", &h));
        assert!(!verify("x", "not a phc string"));
    }
}
