//! AFL target `config`: see `strongroom_fuzz::config`.
strongroom_fuzz::fuzz_main!(strongroom_fuzz::config::run);
