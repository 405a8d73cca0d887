//! Compiles `proto/` (tfplugin5 and go-plugin's services) with protox, a pure-Rust protobuf
//! compiler, so no system `protoc` is needed, then generates prost messages and tonic servers and
//! clients (clients serve the integration tests).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let files = [
        "proto/tfplugin5.proto",
        "proto/plugin/grpc_broker.proto",
        "proto/plugin/grpc_stdio.proto",
        "proto/plugin/grpc_controller.proto",
    ];
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .build_transport(false)
        .generate_default_stubs(true)
        .emit_rerun_if_changed(false)
        .compile_fds(fds)?;
    Ok(())
}
