//! AFL target `pattern`: see `strongroom_fuzz::pattern`.
strongroom_fuzz::fuzz_main!(strongroom_fuzz::pattern::run);
