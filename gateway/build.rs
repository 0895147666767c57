//! Compiles the bot API (proto/bargein/v1/bot.proto) with protox, a pure-Rust protobuf
//! compiler, so building the gateway needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "../proto/bargein/v1/bot.proto";
    println!("cargo:rerun-if-changed={proto}");
    let fds = protox::compile([proto], ["../proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .compile_fds(fds)?;
    Ok(())
}
