# Packaged defaults for the VyOS packer templates (terraform-provider-hyops).
# Loaded by default; `build.packer_vars_file` replaces it. Timings are per VyOS release:
# raise them for slow hosts or TCG, lower them for fast KVM hosts.
boot_wait           = "45s"
installed_boot_wait = "60s"
prompt_wait         = "3s"
install_wait        = "120s"
memory_mb           = 2048
cpus                = 2
debian_release      = "bookworm"
