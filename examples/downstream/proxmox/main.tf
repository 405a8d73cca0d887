# Seed a Proxmox VE node with the published image and make a VM template from it
# (bpg/proxmox). The node downloads the image itself and verifies the sha256 from the contract.

terraform {
  required_providers {
    hyops = {
      source = "registry.terraform.io/hybridops/hyops"
    }
    proxmox = {
      source = "bpg/proxmox"
    }
  }
}

variable "node_name" {
  type    = string
  default = "pve"
}

data "hyops_vyos_artifact" "edge" {
  artifact_state_ref = "core/shared/vyos-image-build#vyos_default_build"
  artifact_key       = "vyos-edge"
}

resource "proxmox_virtual_environment_download_file" "vyos" {
  node_name          = var.node_name
  datastore_id       = "local"
  content_type       = "import"
  url                = data.hyops_vyos_artifact.edge.artifact_url
  file_name          = "vyos-${data.hyops_vyos_artifact.edge.artifact_version}.qcow2"
  checksum           = data.hyops_vyos_artifact.edge.artifact_sha256
  checksum_algorithm = "sha256"
  overwrite          = false
}

resource "proxmox_virtual_environment_vm" "vyos_template" {
  node_name = var.node_name
  name      = "vyos-${data.hyops_vyos_artifact.edge.artifact_version}"
  template  = true

  cpu {
    cores = 2
  }

  memory {
    dedicated = 2048
  }

  disk {
    datastore_id = "local-lvm"
    interface    = "virtio0"
    import_from  = proxmox_virtual_environment_download_file.vyos.id
  }

  network_device {
    bridge = "vmbr0"
  }

  serial_device {}

  agent {
    enabled = true
  }

  initialization {
    datastore_id = "local-lvm"
  }
}
