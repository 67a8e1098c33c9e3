//! `cargo afl build` compiles with `--cfg fuzzing`; declare it so a normal
//! build's cfg check knows the name.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(fuzzing)");
}
