resource "hyops_vyos_image" "edge" {
  artifact_key          = "vyos-edge"
  source_iso_url        = "https://github.com/vyos/vyos-nightly-build/releases/download/2025.11.01-0021-rolling/vyos-2025.11.01-0021-rolling-generic-amd64.iso"
  source_iso_mirror_url = "https://mirror.example.net/vyos/vyos-2025.11.01-0021-rolling-generic-amd64.iso"
  source_iso_sha256     = "0000000000000000000000000000000000000000000000000000000000000000"
  additional_formats    = ["raw.xz"]

  build {
    method       = "packer"
    disk_size_gb = 10
    console      = "serial"
  }

  smoke_verify {
    required = true
  }

  publish {
    repo_state_ref = "org/gcp/object-repo#vyos_artifacts"
    prefix         = "vyos/"
  }

  timeouts {
    create = "2h"
  }
}
