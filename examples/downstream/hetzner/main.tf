# Turn the published image into a Hetzner Cloud snapshot with hcloud-upload-image
# (https://github.com/apricote/hcloud-upload-image), fed from the artifact contract.
# Needs Terraform >= 1.4 (terraform_data), HCLOUD_TOKEN in the environment and hcloud-upload-image on PATH.

terraform {
  required_providers {
    hyops = {
      source = "registry.terraform.io/hybridops/hyops"
    }
  }
}

data "hyops_vyos_artifact" "edge" {
  artifact_state_ref = "core/shared/vyos-image-build#vyos_default_build"
  artifact_key       = "vyos-edge"
}

locals {
  # Prefer the xz-compressed raw encoding when it was published; else the qcow2.
  xz  = lookup(data.hyops_vyos_artifact.edge.artifacts, "vyos-edge+raw.xz", null)
  url = local.xz != null ? local.xz.artifact_url : data.hyops_vyos_artifact.edge.artifact_url
  format_args = (local.xz != null ? "--compression xz" :
  "--format ${data.hyops_vyos_artifact.edge.artifact_format}")
}

resource "terraform_data" "hcloud_snapshot" {
  triggers_replace = [data.hyops_vyos_artifact.edge.artifact_sha256]

  provisioner "local-exec" {
    command = "hcloud-upload-image upload --image-url '${local.url}' ${local.format_args} --architecture x86 --description 'vyos ${data.hyops_vyos_artifact.edge.artifact_version}' --labels os=vyos,sha256=${substr(data.hyops_vyos_artifact.edge.artifact_sha256, 0, 32)}"
  }
}
