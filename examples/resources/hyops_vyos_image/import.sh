#!/usr/bin/env bash
# Import an already published image by its manifest URL (gs://, s3://, az://, https:// or file://).
terraform import hyops_vyos_image.edge gs://my-artifacts/vyos/vyos-edge/1.5-rolling/0123456789abcdef/manifest.json
