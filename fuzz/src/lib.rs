//! Fuzz targets for Strongroom's parsers and decoders, on stable Rust.
//!
//! Each module is one target with `pub fn run(data: &[u8])`, which panics only
//! when a property of the code under test is violated (see each module's
//! docs): it is what the AFL binaries in `src/bin/` fuzz and what
//! `tests/corpus.rs` replays for every committed corpus and regression file.
//!
//! The binaries are built two ways. `cargo afl build` compiles with
//! `--cfg fuzzing` and links AFL++'s runtime: `main` is the persistent AFL
//! loop. A normal build gives a replayer: `cargo run -p strongroom-fuzz --bin
//! path -- FILE...` runs each file (or standard input) through the target and
//! shows the panic, without AFL.
#![forbid(unsafe_code)]

pub mod audit_export;
pub mod bodies;
pub mod conditions;
pub mod config;
pub mod envelope;
pub mod jwt;
pub mod path;
pub mod pattern;

use std::path::PathBuf;
use std::sync::OnceLock;

#[doc(hidden)]
pub use afl;

/// A target's entry point: panics only when a property is violated.
pub type Target = fn(&[u8]);

/// Every target, by the name of its binary and corpus directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("path", path::run),
    ("pattern", pattern::run),
    ("conditions", conditions::run),
    ("bodies", bodies::run),
    ("jwt", jwt::run),
    ("envelope", envelope::run),
    ("audit_export", audit_export::run),
    ("config", config::run),
];

/// The `main` of a target's binary: the AFL loop under `cargo afl`, else a
/// replayer of the files named on the command line (or standard input).
#[macro_export]
macro_rules! fuzz_main {
    ($run:path) => {
        #[cfg(fuzzing)]
        fn main() {
            $crate::afl::fuzz!(|data: &[u8]| {
                $run(data);
            });
        }

        #[cfg(not(fuzzing))]
        fn main() {
            $crate::replay_main($run);
        }
    };
}

/// Runs each file named in the arguments (standard input if none) through
/// `run`; a property violation panics with its message.
pub fn replay_main(run: fn(&[u8])) {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut data).expect("reading stdin");
        run(&data);
        println!("ok: standard input");
        return;
    }
    for f in files {
        let data = std::fs::read(&f).unwrap_or_else(|e| panic!("reading {f}: {e}"));
        run(&data);
        println!("ok: {f}");
    }
}

/// One current-thread Tokio runtime per process, for the async targets.
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a Tokio runtime")
    })
}

/// A scratch directory for a target that needs files (a database, a config
/// file, an export).
///
/// Under AFL the target process is restarted now and then (a crash, or
/// `AFL_FUZZER_LOOPCOUNT`), and statics are never dropped, so a temporary
/// directory per process would pile up. With `STRONGROOM_FUZZ_SCRATCH` set
/// (by `scripts/fuzz`, one directory per running target), the directory is
/// `$STRONGROOM_FUZZ_SCRATCH/<name>`, emptied when a process starts: the
/// previous process of that target is gone by then. Without it (tests, the
/// replayer) it is a fresh temporary directory, removed when dropped.
pub(crate) enum Scratch {
    Shared(PathBuf),
    Temp(tempfile::TempDir),
}

impl Scratch {
    pub(crate) fn new(name: &str) -> Self {
        match std::env::var_os("STRONGROOM_FUZZ_SCRATCH") {
            Some(root) => {
                let dir = PathBuf::from(root).join(name);
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).expect("creating the scratch directory");
                Scratch::Shared(dir)
            }
            None => Scratch::Temp(tempfile::tempdir().expect("a temporary directory")),
        }
    }

    pub(crate) fn path(&self) -> &std::path::Path {
        match self {
            Scratch::Shared(p) => p,
            Scratch::Temp(t) => t.path(),
        }
    }
}
