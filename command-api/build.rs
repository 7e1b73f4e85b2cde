//! Embeds the event JSON Schemas (`schemas/events/*.json`) for the AsyncAPI document the
//! command API serves: a generated list of `(file name, contents)`, rebuilt when a schema
//! file is added, changed or removed.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir")).join("../schemas/events");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("schemas/events")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    let mut out = String::from(
        "/// Every event schema file: (name, JSON).\npub static EVENT_SCHEMAS: &[(&str, &str)] = &[\n",
    );
    for path in files {
        let name = path.file_name().and_then(|n| n.to_str()).expect("file name");
        let absolute = path.canonicalize().expect("schema path");
        writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            absolute.display().to_string()
        )
        .expect("write");
        println!("cargo:rerun-if-changed={}", absolute.display());
    }
    out.push_str("];\n");
    let target = PathBuf::from(std::env::var("OUT_DIR").expect("out dir")).join("event_schemas.rs");
    std::fs::write(target, out).expect("write event_schemas.rs");
}
