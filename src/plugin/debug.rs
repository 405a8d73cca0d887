//! Debug (reattach) mode: the provider runs on its own, e.g. under a debugger, and Terraform
//! attaches to it through `TF_REATTACH_PROVIDERS` instead of launching it.
//!
//! Owns the reattach line's format. Reattached providers run without TLS (Terraform has no
//! certificate to pin), so debug mode serves plaintext on the private unix socket.

use super::handshake::Address;

/// The provider source address Terraform must know the reattached provider by.
pub const PROVIDER_ADDRESS: &str = "registry.terraform.io/hybridops/hyops";

/// The shell line (`TF_REATTACH_PROVIDERS='{…}'`) that attaches Terraform to this process.
pub fn reattach_line(provider_address: &str, version: u32, pid: u32, address: &Address) -> String {
    let config = serde_json::json!({
        provider_address: {
            "Protocol": "grpc",
            "ProtocolVersion": version,
            "Pid": pid,
            "Test": true,
            "Addr": { "Network": address.network(), "String": address.address() },
        }
    });
    format!("TF_REATTACH_PROVIDERS='{config}'\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reattach_line_is_terraform_reattach_json() {
        let line = reattach_line(
            PROVIDER_ADDRESS,
            5,
            42,
            &Address::Unix("/tmp/d/p.sock".into()),
        );
        let json = line
            .strip_prefix("TF_REATTACH_PROVIDERS='")
            .and_then(|s| s.strip_suffix("'\n"))
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        let p = &v[PROVIDER_ADDRESS];
        assert_eq!(p["Protocol"], "grpc");
        assert_eq!(p["ProtocolVersion"], 5);
        assert_eq!(p["Pid"], 42);
        assert_eq!(p["Test"], true);
        assert_eq!(p["Addr"]["Network"], "unix");
        assert_eq!(p["Addr"]["String"], "/tmp/d/p.sock");
    }
}
