//! AFL target `bodies`: see `strongroom_fuzz::bodies`.
strongroom_fuzz::fuzz_main!(strongroom_fuzz::bodies::run);
