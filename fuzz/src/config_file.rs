//! The `config_file` target: arbitrary text through the config-file parser, and a round
//! trip through TOML and JSON for every config that parses.

use risk_adapters::config_file::{ConfigFile, Format};

/// `config_file`: arbitrary text through [`ConfigFile::parse`] as TOML and as JSON; a
/// valid config re-serialises in both formats to text that parses to an equal config.
///
/// # Panics
/// When a property fails.
pub fn config_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for format in [Format::Toml, Format::Json] {
        let Ok(file) = ConfigFile::parse(text, format, "fuzz") else {
            continue;
        };
        for out in [Format::Toml, Format::Json] {
            let written = file
                .to_text(out)
                .unwrap_or_else(|e| panic!("a parsed config does not serialise to {out:?}: {e}"));
            let again = ConfigFile::parse(&written, out, "round-trip").unwrap_or_else(|e| {
                panic!("serialised config does not re-parse as {out:?}: {e}\n{written}")
            });
            assert_eq!(again, file, "round trip through {out:?} changed the config");
        }
    }
}
