//! Build script: compiles every `shaders/*.wgsl` to SPIR-V with `naga` (no system shader
//! compiler needed).
//!
//! Contract:
//! - each `shaders/<name>.wgsl` is parsed, validated with all the capabilities the renderer
//!   may use, and written as one SPIR-V 1.3 module (all of its entry points) to
//!   `$OUT_DIR/<name>.spv`;
//! - `$OUT_DIR/shaders.rs` is generated with `pub const SHADER_SPIRV: &[(&str, &[u8])]`,
//!   one `(name, bytes)` pair per shader, sorted by name, each embedded with
//!   `include_bytes!`, so the SPIR-V the renderer runs is always the one built from `shaders/`;
//! - a shader that fails to parse, validate or translate stops the build with the file
//!   name and naga's message (with the source span).
//!
//! The generated SPIR-V keeps Vulkan's clip-space conventions untouched (no y flip is
//! injected): the renderer's projection matrix already targets Vulkan clip space.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let shader_dir = manifest_dir.join("shaders");
    println!("cargo:rerun-if-changed={}", shader_dir.display());
    println!("cargo:rerun-if-changed=build.rs");

    let mut sources: Vec<PathBuf> = match std::fs::read_dir(&shader_dir) {
        Ok(dir) => dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "wgsl"))
            .collect(),
        Err(e) => fail(&format!(
            "cannot read shader folder {}: {e}",
            shader_dir.display()
        )),
    };
    sources.sort();

    let mut table = String::from(
        "/// SPIR-V modules built by build.rs from `shaders/*.wgsl`: (file stem, SPIR-V bytes).\n\
         pub const SHADER_SPIRV: &[(&str, &[u8])] = &[\n",
    );
    let mut errors = Vec::new();
    for path in &sources {
        println!("cargo:rerun-if-changed={}", path.display());
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_else(|| {
                fail(&format!(
                    "shader file name is not UTF-8: {}",
                    path.display()
                ))
            });
        match compile(path) {
            Ok(bytes) => {
                let out = out_dir.join(format!("{stem}.spv"));
                if let Err(e) = std::fs::write(&out, &bytes) {
                    fail(&format!("cannot write {}: {e}", out.display()));
                }
                let _ = writeln!(
                    table,
                    "    ({stem:?}, include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{stem}.spv\"))),"
                );
            }
            Err(msg) => errors.push(msg),
        }
    }
    if !errors.is_empty() {
        fail(&errors.join("\n\n"));
    }
    table.push_str("];\n");
    let table_path = out_dir.join("shaders.rs");
    if let Err(e) = std::fs::write(&table_path, table) {
        fail(&format!("cannot write {}: {e}", table_path.display()));
    }
}

/// Parses, validates and translates one WGSL file; the error names the file and carries
/// naga's diagnostic including the source span.
fn compile(path: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|e| format!("{shown}: cannot read: {e}"))?;
    let module = naga::front::wgsl::parse_str(&source).map_err(|e| {
        format!(
            "{shown}: WGSL parse error:\n{}",
            e.emit_to_string_with_path(&source, &shown)
        )
    })?;
    let mut validator = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::IMMEDIATES | naga::valid::Capabilities::MULTIVIEW,
    );
    let info = validator.validate(&module).map_err(|e| {
        format!(
            "{shown}: validation error:\n{}",
            e.emit_to_string_with_path(&source, &shown)
        )
    })?;
    let mut flags = naga::back::spv::WriterFlags::LABEL_VARYINGS;
    if std::env::var("PROFILE").is_ok_and(|p| p == "debug") {
        flags |= naga::back::spv::WriterFlags::DEBUG;
    }
    let options = naga::back::spv::Options {
        lang_version: (1, 3),
        flags,
        // No binding map: each `@group(g) @binding(b)` becomes descriptor set g, binding b.
        fake_missing_bindings: true,
        ..Default::default()
    };
    let words = naga::back::spv::write_vec(&module, &info, &options, None)
        .map_err(|e| format!("{shown}: SPIR-V generation error: {e}"))?;
    Ok(words.iter().flat_map(|w| w.to_le_bytes()).collect())
}

fn fail(msg: &str) -> ! {
    // cargo shows a build script's stderr when it fails; one `error:` line per shader.
    eprintln!("error: shader compilation failed\n{msg}");
    std::process::exit(1);
}
