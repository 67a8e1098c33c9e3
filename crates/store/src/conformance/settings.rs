//! Cases of [`SettingsStore`].

use crate::*;

/// Settings: set, replace, init once.
pub async fn settings(s: &dyn Store) {
    assert!(s.setting("pepper").await.unwrap().is_none());
    assert_eq!(s.init_setting("pepper", "first").await.unwrap(), "first");
    assert_eq!(s.setting("pepper").await.unwrap().as_deref(), Some("first"));
    // The first value stays in force.
    assert_eq!(s.init_setting("pepper", "second").await.unwrap(), "first");
    assert_eq!(s.setting("pepper").await.unwrap().as_deref(), Some("first"));
    // Settings are independent.
    assert_eq!(s.init_setting("other", "x").await.unwrap(), "x");
    assert_eq!(s.setting("pepper").await.unwrap().as_deref(), Some("first"));
    assert!(s.setting("missing").await.unwrap().is_none());
}
