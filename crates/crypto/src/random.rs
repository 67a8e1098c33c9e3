//! Randomness from the operating system (through aws-lc-rs).

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// Fills `buf` with OS randomness. Aborts the process if the OS can't supply it:
/// continuing with weak keys would be worse than stopping.
pub fn fill(buf: &mut [u8]) {
    if SystemRandom::new().fill(buf).is_err() {
        eprintln!("fatal: the operating system random number generator failed");
        std::process::abort();
    }
}

/// `n` random bytes.
pub fn bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    fill(&mut v);
    v
}

/// A random string of `len` characters drawn uniformly from `alphabet`
/// (rejection sampling, so no character is favoured).
pub fn string_from(alphabet: &[u8], len: usize) -> String {
    assert!(!alphabet.is_empty() && alphabet.len() <= 256);
    let n = alphabet.len();
    // Largest multiple of n that fits in a byte: bytes at or above it are redrawn.
    let limit = 256 - (256 % n);
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        fill(&mut buf);
        for &b in &buf {
            if (b as usize) < limit {
                out.push(alphabet[b as usize % n] as char);
                if out.len() == len {
                    break;
                }
            }
        }
    }
    buf.iter_mut().for_each(|b| *b = 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_use_only_the_alphabet_and_have_the_length() {
        let s = string_from(b"ab", 1000);
        assert_eq!(s.len(), 1000);
        assert!(s.bytes().all(|b| b == b'a' || b == b'b'));
        assert!(s.contains('a') && s.contains('b'));
    }
}
