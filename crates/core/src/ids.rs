//! Typed identifiers. Every id is a UUID (v7 for new objects, so ids sort by
//! creation time), wrapped in its own type so a vault id can't be passed where a
//! user id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            /// The underlying UUID.
            pub fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = crate::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| crate::Error::invalid(concat!("malformed ", stringify!($name))))
            }
        }
    };
}

id_type!(
    /// An organisation: the tenant boundary.
    OrgId
);
id_type!(
    /// A human user.
    UserId
);
id_type!(
    /// An AI agent (or any non-human principal).
    AgentId
);
id_type!(
    /// A vault: a named container of secrets with its own KEK.
    VaultId
);
id_type!(
    /// A secret: one path in one vault, with its versions.
    SecretId
);
id_type!(
    /// A vault policy.
    PolicyId
);
id_type!(
    /// A user's personal API key.
    ApiKeyId
);
