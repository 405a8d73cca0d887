# A module wrapping hyops_vyos_image whose inputs keep the HyOps module input names and whose outputs
# mirror the HyOps state contract of core/shared/vyos-image-build.

terraform {
  required_providers {
    hyops = {
      source = "registry.terraform.io/hybridops/hyops"
    }
  }
}

resource "hyops_vyos_image" "this" {
  artifact_key          = var.artifact_key
  artifact_format       = var.artifact_format
  artifact_version      = var.artifact_version
  additional_formats    = var.additional_formats
  source_iso_url        = var.source_iso_url
  source_iso_mirror_url = var.source_iso_mirror_url
  source_iso_sha256     = var.source_iso_sha256
  rebuild_if_exists     = var.rebuild_if_exists
  hyops_state_instance  = var.hyops_state_instance

  build {
    method       = var.build_method
    command      = var.build_command
    disk_size_gb = var.disk_size_gb
  }

  dynamic "publish" {
    for_each = var.publish ? [1] : []
    content {
      repo_state_ref = var.repo_state_ref
      backend        = var.repo_backend
      bucket         = var.repo_bucket
      prefix         = var.repo_prefix
    }
  }
}
