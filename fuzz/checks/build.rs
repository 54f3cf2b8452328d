//! Finds the fuzz targets: every file in `src/targets/` is one, named after the
//! file, with a `pub fn check(data: &[u8])`. The generated table is what the
//! libFuzzer binary, the regression replay and `scripts/fuzz.sh` all read, so a
//! new target is one new file.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/targets");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("src/targets exists")
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let stem = path.file_stem()?.to_str()?.to_owned();
            (path.extension()? == "rs").then_some(stem)
        })
        .collect();
    names.sort();
    let mut out =
        String::from("/// One module per fuzz target, each with its `check`.\npub mod targets {\n");
    for name in &names {
        let path = dir.join(format!("{name}.rs"));
        let _ = writeln!(
            out,
            "    #[path = {:?}]\n    pub mod {name};",
            path.display().to_string()
        );
    }
    out.push_str(
        "}\n\n/// Every fuzz target, sorted by name.\npub const TARGETS: &[Target] = &[\n",
    );
    for name in &names {
        let _ = writeln!(
            out,
            "    Target {{ name: {name:?}, check: targets::{name}::check }},"
        );
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR is set")).join("targets.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}
