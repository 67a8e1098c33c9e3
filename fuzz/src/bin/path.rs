//! AFL target `path`: see `strongroom_fuzz::path`.
strongroom_fuzz::fuzz_main!(strongroom_fuzz::path::run);
