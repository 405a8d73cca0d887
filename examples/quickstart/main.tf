# Quickstart: builds a VyOS-shaped disk image from the bootable fixture ISO with the `command` method
# (qemu-img only, no root), proves it boots before publishing it — QEMU boots it with a fresh
# NoCloud seed and the provider waits for the login prompt on the serial console, the QEMU guest
# agent's answer and cloud-init's instance-id — and publishes it to a local directory used as an
# object repository. Runs on any Linux machine with qemu-system-x86_64: no cloud account, no network.
# `scripts/quickstart.sh` builds the fixture ISO (test-fixtures/boot/build-fixture.sh) and applies
# this with -var fixture_iso=… -var fixture_iso_sha256=….

terraform {
  required_providers {
    hyops = {
      source = "registry.terraform.io/hybridops/hyops"
    }
  }
}

variable "fixture_iso" {
  type        = string
  description = "Path of the bootable fixture ISO (built by test-fixtures/boot/build-fixture.sh)."
}

variable "fixture_iso_sha256" {
  type        = string
  description = "sha256 of fixture_iso (the build script writes it next to the ISO)."
}

variable "boot_accelerator" {
  type        = string
  default     = "auto"
  description = "auto: KVM when usable, else TCG (allowed below); or kvm / tcg."
}

provider "hyops" {
  cache_dir = abspath("${path.root}/.hyops-cache")
}

resource "hyops_vyos_image" "quickstart" {
  artifact_key       = "vyos-quickstart"
  source_iso_url     = "file://${abspath(var.fixture_iso)}"
  source_iso_sha256  = var.fixture_iso_sha256
  additional_formats = ["raw.zst"]

  build {
    method       = "command"
    disk_size_gb = 2
    console      = "serial"
    # This example accepts TCG software emulation when KVM is missing or hangs (slow, but it
    # works on any Linux machine). A production build would leave allow_tcg off.
    allow_tcg = true
    # The builder writes the image to $HYOPS_VYOS_ARTIFACT_LOCAL_PATH; the provider then smoke-verifies
    # (qemu-img checks, then the boot), normalizes, hashes and publishes it.
    command = <<-EOT
      set -euo pipefail
      qemu-img convert -f raw -O qcow2 "$HYOPS_VYOS_SOURCE_ISO_PATH" "$HYOPS_VYOS_ARTIFACT_LOCAL_PATH"
      qemu-img resize -q "$HYOPS_VYOS_ARTIFACT_LOCAL_PATH" "$${HYOPS_VYOS_DISK_SIZE_GB}G"
    EOT
  }

  smoke_verify {
    boot {
      # The command method does not boot-verify by default; this example does.
      enabled     = true
      accelerator = var.boot_accelerator
      timeout     = "5m"
    }
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

output "verification" {
  value = jsondecode(hyops_vyos_image.quickstart.contract_json).verification
}

output "contract" {
  value = jsondecode(hyops_vyos_image.quickstart.contract_json)
}
