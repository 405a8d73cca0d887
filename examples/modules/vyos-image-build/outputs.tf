# The same names as the HyOps state outputs of core/shared/vyos-image-build.

output "artifact_key" {
  value = hyops_vyos_image.this.artifact_key
}

output "artifact_url" {
  value = hyops_vyos_image.this.artifact_url
}

output "artifact_format" {
  value = hyops_vyos_image.this.artifact_format
}

output "artifact_version" {
  value = hyops_vyos_image.this.artifact_version
}

output "artifact_sha256" {
  value = hyops_vyos_image.this.artifact_sha256
}

output "artifact_local_path" {
  value = hyops_vyos_image.this.artifact_local_path
}

output "source_iso_url" {
  value = hyops_vyos_image.this.source_iso_url
}

output "manifest_url" {
  value = hyops_vyos_image.this.manifest_url
}

output "artifacts" {
  value = hyops_vyos_image.this.artifacts
}
