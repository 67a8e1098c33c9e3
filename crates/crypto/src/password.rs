//! Argon2id password hashing (PHC strings, default parameters: m=19 MiB, t=2, p=1).
//!
//! Each Argon2 computation needs `m_cost` KiB of working memory. Allocating it
//! per hash on whichever thread runs the hash lets concurrent logins pin many
//! copies (glibc keeps freed chunks below its dynamic mmap threshold in per-thread
//! arenas), so [`HashMemory`] is a reusable buffer: a caller that keeps a fixed
//! number of them bounds the memory of password work whatever the concurrency
//! (the engine's `hashing` module does).

use argon2::password_hash::PasswordHasher;
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use subtle::ConstantTimeEq;

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

fn argon2_params(p: PasswordParams) -> Params {
    Params::new(p.m_cost, p.t_cost, 1, None).expect("valid argon2 parameters")
}

fn hasher(p: PasswordParams) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, argon2_params(p))
}

/// Working memory for Argon2: enough blocks for any hash of at most
/// `capacity_kib` KiB, allocated once and reused. Not zeroized between uses:
/// what it holds after a hash is derived from the password through Argon2's
/// one-way compression; it never leaves the process.
pub struct HashMemory(Vec<Block>);

impl HashMemory {
    /// Memory for hashes of up to `m_cost` KiB (one block is 1 KiB).
    pub fn new(m_cost: u32) -> Self {
        let blocks = usize::try_from(m_cost.max(Params::MIN_M_COST)).unwrap_or(usize::MAX);
        HashMemory(vec![Block::new(); blocks])
    }

    /// The largest `m_cost` (KiB) this memory serves.
    pub fn capacity_kib(&self) -> u32 {
        u32::try_from(self.0.len()).unwrap_or(u32::MAX)
    }

    fn blocks(&mut self, params: &Params) -> Option<&mut [Block]> {
        self.0.get_mut(..params.block_count())
    }
}

impl std::fmt::Debug for HashMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HashMemory({} KiB)", self.0.len())
    }
}

/// Hashes a password into a PHC string (allocates its own working memory).
pub fn hash(password: &str, params: PasswordParams) -> String {
    hasher(params)
        .hash_password(password.as_bytes())
        .expect("argon2 hashing of a bounded password")
        .to_string()
}

/// Hashes a password into a PHC string in the given working memory, which
/// must hold at least `params.m_cost` KiB (else the hash allocates its own).
pub fn hash_in(password: &str, params: PasswordParams, memory: &mut HashMemory) -> String {
    let a = hasher(params);
    let Some(blocks) = memory.blocks(a.params()) else {
        return hash(password, params);
    };
    let salt = argon2::password_hash::phc::Salt::generate();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    a.hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, blocks)
        .expect("argon2 hashing of a bounded password");
    let output = argon2::password_hash::phc::Output::new(&out).expect("a 32-byte output");
    PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: a.params().try_into().expect("encodable parameters"),
        salt: Some(salt),
        hash: Some(output),
    }
    .to_string()
}

/// Verifies a password against a PHC string (its own parameters apply).
/// A malformed stored hash verifies as false.
pub fn verify(password: &str, phc: &str) -> bool {
    let Some(m_cost) = PasswordHash::new(phc)
        .ok()
        .and_then(|h| Params::try_from(&h).ok())
        .map(|p| p.m_cost())
    else {
        return false;
    };
    verify_in(password, phc, &mut HashMemory::new(m_cost))
}

/// Verifies a password against a PHC string in the given working memory.
/// A malformed stored hash, or one that needs more memory than `memory`
/// holds, verifies as false (a stored hash can't make the server allocate).
pub fn verify_in(password: &str, phc: &str, memory: &mut HashMemory) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(algorithm), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm.as_str()),
        parsed.salt.as_ref(),
        parsed.hash.as_ref(),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let a = Argon2::new(algorithm, version, params);
    let Some(blocks) = memory.blocks(a.params()) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    if a.hash_password_into_with_memory(password.as_bytes(), salt.as_ref(), &mut out, blocks)
        .is_err()
    {
        return false;
    }
    bool::from(out.as_slice().ct_eq(expected.as_bytes()))
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

    const SMALL: PasswordParams = PasswordParams {
        m_cost: 256,
        t_cost: 1,
    };

    #[test]
    fn hashes_and_verifies() {
        let h = hash("correct horse", SMALL);
        assert!(h.starts_with("$argon2id$"));
        assert!(!h.contains("correct horse"));
        assert!(verify("correct horse", &h));
        assert!(!verify("correct horsf", &h));
        assert!(!verify("x", "not a phc string"));
    }

    #[test]
    fn reused_memory_gives_the_same_answers_as_fresh_memory() {
        let mut mem = HashMemory::new(1024);
        let a = hash_in("correct horse", SMALL, &mut mem);
        let b = hash("correct horse", SMALL);
        for h in [&a, &b] {
            assert!(h.starts_with("$argon2id$v=19$m=256,t=1,p=1$"), "{h}");
            assert!(verify_in("correct horse", h, &mut mem));
            assert!(!verify_in("correct horsf", h, &mut mem));
            assert!(verify("correct horse", h));
        }
        assert_ne!(a, b, "fresh salt per hash");
        assert!(!verify_in("x", "not a phc string", &mut mem));
    }

    #[test]
    fn a_stored_hash_cannot_ask_for_more_memory_than_the_buffer() {
        let big = hash(
            "correct horse",
            PasswordParams {
                m_cost: 2048,
                t_cost: 1,
            },
        );
        let mut small = HashMemory::new(1024);
        assert_eq!(small.capacity_kib(), 1024);
        assert!(!verify_in("correct horse", &big, &mut small));
        assert!(verify_in("correct horse", &big, &mut HashMemory::new(2048)));
    }
}
