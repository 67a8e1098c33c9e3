//! AAD encoding: the workspace's one length-prefixed encoding
//! ([`strongroom_core::encoding::LengthPrefixed`]).

pub use strongroom_core::encoding::LengthPrefixed as AadBuilder;
