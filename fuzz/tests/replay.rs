//! Runs every committed corpus and regression input through the fuzz-target logic on the
//! stable toolchain: `cargo test --manifest-path fuzz/Cargo.toml`.

use std::path::Path;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 6] = [
    ("pretrade_check", riskgate_fuzz::pretrade_check),
    ("tier_ladder", riskgate_fuzz::tier_ladder),
    ("trades_csv", riskgate_fuzz::trades_csv),
    ("config_file", riskgate_fuzz::config_file),
    ("wire_decimal", riskgate_fuzz::wire_decimal),
    ("grpc_request", riskgate_fuzz::grpc_request),
];

fn replay(kind: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(kind);
    let mut count = 0;
    for (name, target) in TARGETS {
        let dir = root.join(name);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        for path in paths {
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            eprintln!("{name}: {}", path.display());
            target(&data);
            count += 1;
        }
    }
    count
}

#[test]
fn corpus_inputs_hold_every_property() {
    assert!(replay("corpus") > 0, "no corpus inputs found");
}

#[test]
fn regression_inputs_hold_every_property() {
    replay("regressions");
}

#[test]
fn config_seeds_are_valid_configs() {
    use risk_adapters::config_file::{ConfigFile, Format};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/config_file");
    for (name, format) in [("demo.toml", Format::Toml), ("demo.json", Format::Json)] {
        let text = std::fs::read_to_string(dir.join(name)).expect("seed is readable");
        ConfigFile::parse(&text, format, name).expect("seed is a valid config");
    }
}
