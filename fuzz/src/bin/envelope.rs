//! AFL target `envelope`: see `strongroom_fuzz::envelope`.
strongroom_fuzz::fuzz_main!(strongroom_fuzz::envelope::run);
