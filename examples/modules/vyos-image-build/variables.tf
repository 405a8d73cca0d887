variable "artifact_key" {
  type        = string
  description = "Artifact key, e.g. vyos-edge."
}

variable "artifact_format" {
  type        = string
  default     = "qcow2"
  description = "qcow2, raw or img."
}

variable "artifact_version" {
  type        = string
  default     = null
  description = "Artifact version; default: the VyOS version in the ISO."
}

variable "additional_formats" {
  type        = list(string)
  default     = []
  description = "Extra encodings: raw.xz, raw.zst, raw.gz, qcow2."
}

variable "source_iso_url" {
  type        = string
  description = "Official VyOS ISO URL."
}

variable "source_iso_mirror_url" {
  type        = string
  default     = null
  description = "Pinned mirror of the ISO."
}

variable "source_iso_sha256" {
  type        = string
  description = "sha256 of the ISO."
}

variable "rebuild_if_exists" {
  type        = bool
  default     = false
  description = "Rebuild even when a verified build is cached."
}

variable "hyops_state_instance" {
  type        = string
  default     = null
  description = "Write the HyOps state instance of this name after success."
}

variable "build_method" {
  type        = string
  default     = null
  description = "vyos-vm-images, packer or command (default: HYOPS_VYOS_ISO_BUILD_METHOD, else vyos-vm-images)."
}

variable "build_command" {
  type        = string
  default     = null
  description = "Build command for build_method = command."
}

variable "disk_size_gb" {
  type        = number
  default     = 10
  description = "Disk size in GiB."
}

variable "publish" {
  type        = bool
  default     = true
  description = "Publish the image (false: local build only)."
}

variable "repo_state_ref" {
  type        = string
  default     = null
  description = "HyOps object-repository state reference."
}

variable "repo_backend" {
  type        = string
  default     = null
  description = "gcs, s3, azure or file (default: from the repository state)."
}

variable "repo_bucket" {
  type        = string
  default     = null
  description = "Bucket override (a directory for file)."
}

variable "repo_prefix" {
  type        = string
  default     = null
  description = "Object name prefix."
}
