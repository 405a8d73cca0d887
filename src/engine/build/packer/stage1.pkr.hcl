# Stage 1 of the packaged VyOS build (terraform-provider-hyops).
# Boots the VyOS ISO in qemu and answers `install image` on the KVM console through
# boot_command, then powers the VM off. The installed disk is the input of stage 2.
# Written for Debian's packer 1.6.6 (qemu builder built in, no required_plugins).
#
# Required by the provider (a custom template must declare them too):
#   source_iso_path, build_output_directory
# Prompt timings are release-specific scaffolding: every wait is a variable with a modest default,
# set in vyos.pkrvars.hcl or with -var. Debug knobs: serial_device (e.g. "file:/tmp/s1.log"),
# monitor_device (e.g. "unix:/tmp/s1.mon,server,nowait" for `screendump`), headless.

variable "source_iso_path" {
  type        = string
  description = "Verified local VyOS ISO."
}

variable "source_iso_checksum" {
  type        = string
  default     = "none"
  description = "Checksum of the ISO as packer spells it (sha256:HEX); the provider verified it already."
}

variable "build_output_directory" {
  type        = string
  description = "Directory packer creates for the installed disk (must not exist)."
}

variable "vm_name" {
  type    = string
  default = "vyos-stage1.qcow2"
}

variable "disk_size_gb" {
  type    = number
  default = 10
}

variable "console" {
  type        = string
  default     = "kvm"
  description = "Console selected during install image: kvm or serial."
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
  type        = string
  default     = ""
  description = "qemu -serial argument; empty: none."
}

variable "monitor_device" {
  type        = string
  default     = ""
  description = "qemu -monitor argument; empty: none."
}

variable "boot_wait" {
  type        = string
  default     = "45s"
  description = "From VM start until the live system's login prompt."
}

variable "prompt_wait" {
  type        = string
  default     = "3s"
  description = "Between two installer answers."
}

variable "partition_wait" {
  type        = string
  default     = "15s"
  description = "After confirming the disk, while the installer partitions it."
}

variable "install_wait" {
  type        = string
  default     = "120s"
  description = "While the installer copies the system to disk."
}

variable "vyos_password" {
  type      = string
  default   = "vyos"
  sensitive = true
}

variable "boot_command" {
  type        = list(string)
  default     = []
  description = "Overrides the generated install sequence when non-empty."
}

variable "shutdown_timeout" {
  type    = string
  default = "15m"
}

# Declared so one vars file (vyos.pkrvars.hcl) serves both stages; used by stage 2 only.
variable "installed_boot_wait" {
  type    = string
  default = "60s"
}

variable "debian_release" {
  type    = string
  default = "bookworm"
}

locals {
  console_key = var.console == "serial" ? "S" : "K"
  generated_boot_command = [
    "vyos<enter><wait${var.prompt_wait}>",
    "${var.vyos_password}<enter><wait${var.prompt_wait}>",
    "install image<enter><wait${var.prompt_wait}>",
    "y<enter><wait${var.prompt_wait}>",
    "<enter><wait${var.prompt_wait}>",
    "${var.vyos_password}<enter><wait${var.prompt_wait}>",
    "${var.vyos_password}<enter><wait${var.prompt_wait}>",
    "${local.console_key}<enter><wait${var.prompt_wait}>",
    "<enter><wait${var.prompt_wait}>",
    "y<enter><wait${var.partition_wait}>",
    "y<enter><wait${var.install_wait}>",
    "<enter><wait${var.prompt_wait}>",
    "sudo poweroff<enter>",
  ]
  boot_command = length(var.boot_command) > 0 ? var.boot_command : local.generated_boot_command
  debug_args = [
    for pair in [["-serial", var.serial_device], ["-monitor", var.monitor_device]] : pair
    if pair[1] != ""
  ]
}

source "qemu" "vyos_install" {
  iso_url          = var.source_iso_path
  iso_checksum     = var.source_iso_checksum
  output_directory = var.build_output_directory
  vm_name          = var.vm_name
  format           = "qcow2"
  disk_size        = "${var.disk_size_gb * 1024}M"
  disk_interface   = "virtio"
  net_device       = "virtio-net"
  accelerator      = var.qemu_accelerator
  memory           = var.memory_mb
  cpus             = var.cpus
  headless         = var.headless
  qemuargs         = local.debug_args
  communicator     = "none"
  boot_wait        = var.boot_wait
  boot_command     = local.boot_command
  shutdown_timeout = var.shutdown_timeout
}

build {
  sources = ["source.qemu.vyos_install"]
}
