# Offline in CI: scripts/build-packer.sh builds this plugin from the Go module proxy and
# installs it with `packer plugins install --path`, so `packer init` is never needed.
packer {
  required_version = ">= 1.11.0"
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = "~> 1.8"
    }
  }
}
