#![no_main]
// See tests/src/fuzzing.rs for what this target checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| toron_tests::fuzzing::inflate(data));
