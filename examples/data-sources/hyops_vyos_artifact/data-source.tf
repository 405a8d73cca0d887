# From a manifest URL ...
data "hyops_vyos_artifact" "by_manifest" {
  manifest_url = "gs://my-artifacts/vyos/vyos-edge/1.5-rolling/0123456789abcdef/manifest.json"
}

# ... or from the HyOps state the image build wrote (hyops_state_instance).
data "hyops_vyos_artifact" "by_state" {
  artifact_state_ref = "core/shared/vyos-image-build#vyos_default_build"
  artifact_key       = "vyos-edge"
}
