//! Known-answer tests pinning the stored format: the AAD bytes of a secret's
//! payload and of its DEK wrap, and the sealed layout (ciphertext || tag) for
//! a fixed key and nonce. The vectors live in `tests/vectors/envelope.json`,
//! computed independently of this code by `tests/vectors/generate.py`.
//!
//! Round-trip tests can't catch a change of format (seal and open change
//! together); these can. If one fails, existing databases would no longer open.

use serde::Deserialize;
use strongroom_core::{SecretPath, VaultId};

use crate::envelope::{self, SecretContext};
use crate::keys::Dek;

const VECTORS: &str = include_str!("../tests/vectors/envelope.json");

#[derive(Deserialize)]
struct Vectors {
    aad: Vec<AadVector>,
    seal: Vec<SealVector>,
}

#[derive(Deserialize)]
struct AadVector {
    name: String,
    vault: String,
    path: String,
    version: u32,
    secret_aad: String,
    dek_wrap_aad: String,
}

#[derive(Deserialize)]
struct SealVector {
    name: String,
    key: String,
    nonce: String,
    vault: String,
    path: String,
    version: u32,
    plaintext: String,
    ciphertext_and_tag: String,
}

fn vectors() -> Vectors {
    serde_json::from_str(VECTORS).expect("tests/vectors/envelope.json parses")
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("hex in a vector")
}

fn context_parts(vault: &str, path: &str) -> (VaultId, SecretPath) {
    (
        vault.parse().expect("vault id in a vector"),
        SecretPath::parse(path).expect("path in a vector"),
    )
}

fn aad(name: &str) {
    let v = vectors().aad.into_iter().find(|v| v.name == name).unwrap();
    let (vault, path) = context_parts(&v.vault, &v.path);
    let ctx = SecretContext {
        vault,
        path: &path,
        version: v.version,
    };
    assert_eq!(
        hex::encode(ctx.secret_aad()),
        v.secret_aad,
        "secret AAD of {name}"
    );
    assert_eq!(
        hex::encode(ctx.dek_wrap_aad()),
        v.dek_wrap_aad,
        "DEK-wrap AAD of {name}"
    );
}

fn seal(name: &str) {
    let v = vectors().seal.into_iter().find(|v| v.name == name).unwrap();
    let (vault, path) = context_parts(&v.vault, &v.path);
    let aad = SecretContext {
        vault,
        path: &path,
        version: v.version,
    }
    .secret_aad();
    let dek = Dek::from_slice(&unhex(&v.key)).unwrap();
    let nonce: [u8; 12] = unhex(&v.nonce).try_into().unwrap();
    let sealed = envelope::seal_with_fixed_nonce_less_safe(&dek, nonce, &unhex(&v.plaintext), &aad);
    let mut got = sealed.ciphertext.clone();
    got.extend_from_slice(&sealed.tag);
    assert_eq!(hex::encode(&got), v.ciphertext_and_tag, "sealed {name}");
    // And the stored layout opens back to the plaintext with the real `open`.
    let back = envelope::open(&dek, &sealed, &aad).unwrap();
    assert_eq!(hex::encode(back.expose()), v.plaintext);
}

/// One `#[test]` per vector: `kind::name` runs `kind("name")`.
macro_rules! known_answers {
    ($($kind:ident :: $name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $kind(stringify!($name));
            }
        )*

        // Every vector of these kinds in the file has its test above (a
        // vector added to the file but not here would otherwise never run).
        #[test]
        fn every_vector_is_run() {
            let listed: Vec<(&str, &str)> = vec![$((stringify!($kind), stringify!($name))),*];
            let v = vectors();
            let in_file: Vec<(&str, &str)> = v
                .aad
                .iter()
                .map(|a| ("aad", a.name.as_str()))
                .chain(v.seal.iter().map(|s| ("seal", s.name.as_str())))
                .filter(|(kind, _)| listed.iter().any(|(k, _)| k == kind))
                .collect();
            assert_eq!(listed, in_file);
        }
    };
}

mod aad_vectors {
    use super::aad;
    use super::*;
    known_answers! {
        aad::simple,
        aad::deep_path_high_version,
        aad::one_segment,
    }
}

mod seal_vectors {
    use super::seal;
    use super::*;
    known_answers! {
        seal::empty_value,
        seal::short_value,
        seal::longer_value,
    }
}
