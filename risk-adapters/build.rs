//! Compiles `proto/risk/v1/risk.proto` when the `grpc` feature is on: protox parses it
//! (no system `protoc`), tonic-prost-build generates the messages, the service and the
//! client, and the encoded file descriptor set is written for server reflection.
//! It also makes cargo rebuild the crate when a file in `migrations/` changes.

fn main() {
    // `sqlx::migrate!` embeds migrations/ at compile time but cannot ask cargo to watch the
    // folder on stable Rust: without this line a new migration file would not be compiled in.
    println!("cargo::rerun-if-changed=migrations");
    #[cfg(feature = "grpc")]
    if let Err(e) = grpc::compile() {
        println!("cargo::error=compiling proto/risk/v1/risk.proto: {e}");
    }
}

#[cfg(feature = "grpc")]
mod grpc {
    use std::path::PathBuf;

    pub fn compile() -> Result<(), Box<dyn std::error::Error>> {
        println!("cargo::rerun-if-changed=proto");
        let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
        let compiler = {
            let mut c = protox::Compiler::new(["proto"])?;
            c.include_source_info(true).include_imports(true);
            c.open_files(["risk/v1/risk.proto"])?;
            c
        };
        std::fs::write(
            out_dir.join("risk_v1_descriptor.bin"),
            compiler.encode_file_descriptor_set(),
        )?;
        tonic_prost_build::configure()
            .build_client(true)
            .build_server(true)
            .compile_fds(compiler.file_descriptor_set())?;
        Ok(())
    }
}
