# Publish to Google Cloud Storage, state first: the bucket comes from the HyOps object-repository
# state (org/gcp/object-repo), the credential from the environment:
#   export HYOPS_VYOS_GCS_SA_JSON_FILE=/secure/path/sa.json   # or HYOPS_VYOS_GCS_SA_JSON='{...}'
#   terraform apply -var iso_sha256=...

terraform {
  required_providers {
    hyops = {
      source = "registry.terraform.io/hybridops/hyops"
    }
  }
}

variable "iso_url" {
  type        = string
  description = "Official VyOS ISO URL (provenance)."
}

variable "iso_mirror_url" {
  type        = string
  default     = null
  description = "Pinned mirror of the ISO to download from."
}

variable "iso_sha256" {
  type        = string
  description = "sha256 of the ISO."
}

provider "hyops" {}

resource "hyops_vyos_image" "edge" {
  artifact_key          = "vyos-edge"
  source_iso_url        = var.iso_url
  source_iso_mirror_url = var.iso_mirror_url
  source_iso_sha256     = var.iso_sha256
  additional_formats    = ["raw.xz"]
  hyops_state_instance  = "vyos_default_build"

  build {
    method = "packer"
  }

  publish {
    repo_state_ref = "org/gcp/object-repo#vyos_artifacts"
    prefix         = "vyos/"
  }
}

output "artifact_url" {
  value = hyops_vyos_image.edge.artifact_url
}

output "artifact_sha256" {
  value = hyops_vyos_image.edge.artifact_sha256
}
