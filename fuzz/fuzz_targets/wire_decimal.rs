//! libFuzzer entry point; the logic and its properties are in `riskgate_fuzz::wire_decimal`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| riskgate_fuzz::wire_decimal(data));
