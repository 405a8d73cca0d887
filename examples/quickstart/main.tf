# Quickstart: builds a VyOS-shaped disk image from the bundled fixture ISO with the `command` method
# (qemu-img only, no KVM, no root) and publishes it to a local directory used as an object repository.
# Runs anywhere: no cloud account, no network. `scripts/quickstart.sh` applies it.

terraform {
  required_providers {
    hyops = {
      source = "registry.terraform.io/hybridops/hyops"
    }
  }
}

provider "hyops" {
  cache_dir = abspath("${path.root}/.hyops-cache")
}

resource "hyops_vyos_image" "quickstart" {
  artifact_key       = "vyos-quickstart"
  source_iso_url     = "file://${abspath("${path.module}/vyos-fixture.iso")}"
  source_iso_sha256  = "d4733478c22bff28c4174fd096d0000ff171ea02c4de0eed4410fd5baddd4bf8"
  additional_formats = ["raw.zst"]

  build {
    method       = "command"
    disk_size_gb = 2
    # The builder writes the image to $HYOPS_VYOS_ARTIFACT_LOCAL_PATH; the provider then smoke-verifies,
    # normalizes, hashes and publishes it.
    command = <<-EOT
      set -euo pipefail
      qemu-img convert -f raw -O qcow2 "$HYOPS_VYOS_SOURCE_ISO_PATH" "$HYOPS_VYOS_ARTIFACT_LOCAL_PATH"
      qemu-img resize -q "$HYOPS_VYOS_ARTIFACT_LOCAL_PATH" "$${HYOPS_VYOS_DISK_SIZE_GB}G"
    EOT
  }

  publish {
    backend = "file"
    bucket  = abspath("${path.root}/object-repo")
    prefix  = "images/"
  }
}

output "artifact_url" {
  value = hyops_vyos_image.quickstart.artifact_url
}

output "artifact_sha256" {
  value = hyops_vyos_image.quickstart.artifact_sha256
}

output "manifest_url" {
  value = hyops_vyos_image.quickstart.manifest_url
}

output "contract" {
  value = jsondecode(hyops_vyos_image.quickstart.contract_json)
}
