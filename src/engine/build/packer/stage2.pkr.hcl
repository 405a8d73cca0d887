# Stage 2 of the packaged VyOS build (terraform-provider-hyops).
# Boots the disk installed by stage 1, enables DHCP and SSH on the console through boot_command
# (running config only, never saved), then over SSH installs cloud-init and the guest agent,
# optionally a VyOS cloud-init module (cc_vyos.py) registered under cloud_config_modules, cleans
# cloud-init state, removes builder-specific ethernet config and fails if cloud-init is missing;
# then sanitizes the template (sanitize.sh: ssh host keys, machine-id, cloud-init state, ethernet
# hw-id, `service ssh` and the build password) right before shutdown.
# Written for Debian's packer 1.6.6 (qemu builder built in, no required_plugins).
#
# Required by the provider (a custom template must declare them too):
#   source_disk_path, build_output_directory

variable "source_disk_path" {
  type        = string
  description = "The qcow2 disk produced by stage 1."
}

variable "build_output_directory" {
  type        = string
  description = "Directory packer creates for the final image (must not exist)."
}

variable "vm_name" {
  type    = string
  default = "vyos.qcow2"
}

variable "disk_size_gb" {
  type    = number
  default = 10
}

variable "qemu_accelerator" {
  type    = string
  default = "kvm"
}

variable "memory_mb" {
  type    = number
  default = 2048
}

variable "cpus" {
  type    = number
  default = 2
}

variable "headless" {
  type    = bool
  default = true
}

variable "serial_device" {
  type    = string
  default = ""
}

variable "monitor_device" {
  type    = string
  default = ""
}

variable "installed_boot_wait" {
  type        = string
  default     = "60s"
  description = "From VM start until the installed system's login prompt."
}

variable "prompt_wait" {
  type    = string
  default = "3s"
}

variable "commit_wait" {
  type        = string
  default     = "15s"
  description = "After `commit` of the DHCP+SSH configuration."
}

variable "vyos_password" {
  type      = string
  default   = "vyos"
  sensitive = true
}

variable "installed_boot_command" {
  type        = list(string)
  default     = []
  description = "Overrides the generated DHCP+SSH sequence when non-empty."
}

variable "lock_build_password" {
  type        = bool
  default     = true
  description = "Lock the build user's password in the saved config (sanitize.sh item 5); access then comes from cloud-init."
}

variable "ssh_timeout" {
  type    = string
  default = "10m"
}

variable "cloud_init" {
  type    = bool
  default = true
}

variable "cloud_init_datasources" {
  type    = string
  default = "NoCloud,ConfigDrive"
}

variable "guest_agent" {
  type    = string
  default = "qemu"
}

variable "cc_vyos_path" {
  type        = string
  default     = ""
  description = "Optional VyOS cloud-init module (cc_vyos.py) to install; empty: none."
}

variable "debian_mirror" {
  type    = string
  default = "http://deb.debian.org/debian"
}

variable "debian_release" {
  type        = string
  default     = "bookworm"
  description = "Debian release the VyOS image is based on (1.4/1.5: bookworm)."
}

# Declared so one vars file (vyos.pkrvars.hcl) serves both stages; used by stage 1 only.
variable "boot_wait" {
  type    = string
  default = "45s"
}

variable "install_wait" {
  type    = string
  default = "120s"
}

locals {
  generated_boot_command = [
    "vyos<enter><wait${var.prompt_wait}>",
    "${var.vyos_password}<enter><wait${var.prompt_wait}>",
    "configure<enter><wait${var.prompt_wait}>",
    "set interfaces ethernet eth0 address dhcp<enter><wait${var.prompt_wait}>",
    "set service ssh<enter><wait${var.prompt_wait}>",
    "commit<enter><wait${var.commit_wait}>",
    "exit<enter><wait${var.prompt_wait}>",
  ]
  boot_command = length(var.installed_boot_command) > 0 ? var.installed_boot_command : local.generated_boot_command
  debug_args = [
    for pair in [["-serial", var.serial_device], ["-monitor", var.monitor_device]] : pair
    if pair[1] != ""
  ]
  cc_vyos_source = var.cc_vyos_path != "" ? var.cc_vyos_path : "${path.root}/cc_vyos_none.py"
}

source "qemu" "vyos_provision" {
  iso_url          = var.source_disk_path
  iso_checksum     = "none"
  disk_image       = true
  use_backing_file = false
  output_directory = var.build_output_directory
  vm_name          = var.vm_name
  format           = "qcow2"
  disk_compression = true
  disk_size        = "${var.disk_size_gb * 1024}M"
  disk_interface   = "virtio"
  net_device       = "virtio-net"
  accelerator      = var.qemu_accelerator
  memory           = var.memory_mb
  cpus             = var.cpus
  headless         = var.headless
  qemuargs         = local.debug_args
  boot_wait        = var.installed_boot_wait
  boot_command     = local.boot_command
  communicator     = "ssh"
  ssh_username     = "vyos"
  ssh_password     = var.vyos_password
  ssh_timeout      = var.ssh_timeout
  shutdown_command = "sudo poweroff"
}

build {
  sources = ["source.qemu.vyos_provision"]

  provisioner "file" {
    source      = local.cc_vyos_source
    destination = "/tmp/cc_vyos.py"
  }

  provisioner "shell" {
    script          = "${path.root}/provision.sh"
    execute_command = "chmod +x {{ .Path }}; {{ .Vars }} sudo -E /bin/bash {{ .Path }}"
    environment_vars = [
      "HYOPS_CLOUD_INIT=${var.cloud_init}",
      "HYOPS_CLOUD_INIT_DS=${var.cloud_init_datasources}",
      "HYOPS_GUEST_AGENT=${var.guest_agent}",
      "HYOPS_DEBIAN_MIRROR=${var.debian_mirror}",
      "HYOPS_DEBIAN_RELEASE=${var.debian_release}",
    ]
  }

  # Last: template sanitation (ssh host keys, machine-id, cloud-init state, builder ethernet
  # config, ssh service and the build password). See sanitize.sh.
  provisioner "shell" {
    script          = "${path.root}/sanitize.sh"
    execute_command = "chmod +x {{ .Path }}; {{ .Vars }} sudo -E /bin/bash {{ .Path }}"
    environment_vars = [
      "HYOPS_LOCK_BUILD_PASSWORD=${var.lock_build_password}",
      "HYOPS_BUILD_USER=vyos",
    ]
  }
}
