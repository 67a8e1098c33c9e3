//! A provider's failure keeps the error underneath (here the I/O error of the
//! file provider) as its `source()`, for the log; the caller's message stays
//! fixed and never carries it.

use std::error::Error as _;

use strongroom_core::{Dependency, Error};
use strongroom_kms::KmsError;
use strongroom_kms::root_key::RootKey;
use strongroom_kms::soft::SoftProvider;

/// The errors under `e`, outermost first.
fn causes<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut out = Vec::new();
    let mut next = e.source();
    while let Some(c) = next {
        out.push(c);
        next = c.source();
    }
    out
}

#[test]
fn an_unreadable_keyring_keeps_the_io_error_as_its_source() {
    let dir = tempfile::tempdir().unwrap();
    // The keyring's path names a directory: it exists, and can't be read.
    let path = dir.path().join("keyring");
    std::fs::create_dir(&path).unwrap();
    let e = match SoftProvider::open_file(&path, RootKey::generate()) {
        Err(e) => e,
        Ok(_) => panic!("a directory opened as a keyring"),
    };
    assert!(matches!(e, KmsError::Unavailable(_)), "{e:?}");
    assert_eq!(e.to_string(), "key provider unavailable: reading keyring");
    let io = e
        .source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .expect("the io::Error itself");
    assert_ne!(io.kind(), std::io::ErrorKind::NotFound);

    let e = Error::from(e);
    assert_eq!(e.to_string(), "the key provider is unavailable");
    let Error::Unavailable(u) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(u.dependency(), Dependency::KeyProvider);
    let chain = causes(&e);
    assert!(chain[0].downcast_ref::<KmsError>().is_some(), "{chain:?}");
    assert!(
        chain
            .iter()
            .any(|c| c.downcast_ref::<std::io::Error>().is_some()),
        "{chain:?}"
    );
    // The log line: the fixed message, the provider's context, the OS's words.
    let line = e.chain().to_string();
    assert!(
        line.starts_with(
            "the key provider is unavailable: key provider unavailable: reading keyring: "
        ),
        "{line}"
    );
    assert!(
        line.len()
            > "the key provider is unavailable: key provider unavailable: reading keyring: ".len()
    );
}

#[test]
fn a_message_only_reason_has_no_source() {
    let e = KmsError::Internal("the keyring file is corrupt".into());
    assert_eq!(
        e.to_string(),
        "key provider error: the keyring file is corrupt"
    );
    assert!(e.source().is_none());
    let e = Error::from(e);
    assert_eq!(e.to_string(), "internal error");
    assert_eq!(causes(&e).len(), 1);
}
