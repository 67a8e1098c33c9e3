//! AFL target `audit_export`: see `strongroom_fuzz::audit_export`.
strongroom_fuzz::fuzz_main!(strongroom_fuzz::audit_export::run);
