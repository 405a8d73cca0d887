terraform {
  required_providers {
    hyops = {
      source = "registry.terraform.io/hybridops/hyops"
    }
  }
}

# Everything is optional. Credentials are best left to the environment
# (HYOPS_VYOS_GCS_SA_JSON or HYOPS_VYOS_GCS_SA_JSON_FILE) so they never reach configuration or state.
provider "hyops" {
  cache_dir           = "/var/cache/hybridops/vyos"
  max_parallel_builds = 1
}
