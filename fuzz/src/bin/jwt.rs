//! AFL target `jwt`: see `strongroom_fuzz::jwt`.
strongroom_fuzz::fuzz_main!(strongroom_fuzz::jwt::run);
