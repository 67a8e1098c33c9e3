//! AFL target `conditions`: see `strongroom_fuzz::conditions`.
strongroom_fuzz::fuzz_main!(strongroom_fuzz::conditions::run);
