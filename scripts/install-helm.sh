#!/usr/bin/env bash
# Install the pinned Helm CLI into a bin directory, built from source with the Go toolchain
# (the Go module proxy is the only way in for Helm on an offline workstation or CI).
# Usage: scripts/install-helm.sh [BIN_DIR]   (default: <repo>/.venv/bin)
# Idempotent: skips the build when BIN_DIR/helm already reports the pinned version.
set -euo pipefail

HELM_VERSION="v3.22.0"
# Kubernetes version Helm assumes when no cluster is reachable (helm template/lint). Helm's own
# Makefile derives it from its k8s.io/client-go dependency (v0.37.x -> 1.37) at build time.
HELM_K8S_MAJOR="1"
HELM_K8S_MINOR="37"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin_dir="${1:-${repo_root}/.venv/bin}"
mkdir -p "${bin_dir}"
bin_dir="$(cd "${bin_dir}" && pwd)"

if [[ -x "${bin_dir}/helm" ]] \
    && [[ "$("${bin_dir}/helm" version --short 2>/dev/null)" == "${HELM_VERSION}" ]]; then
    echo "helm ${HELM_VERSION} already installed in ${bin_dir}, nothing to do"
    exit 0
fi

if ! command -v go >/dev/null 2>&1; then
    echo "install-helm.sh: the Go toolchain is required to build helm ${HELM_VERSION}" >&2
    exit 1
fi

ldflags="-w -s"
ldflags+=" -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in pkg/lint/rules pkg/chartutil; do
    ldflags+=" -X helm.sh/helm/v3/${pkg}.k8sVersionMajor=${HELM_K8S_MAJOR}"
    ldflags+=" -X helm.sh/helm/v3/${pkg}.k8sVersionMinor=${HELM_K8S_MINOR}"
done

# Go's download and build chatter is kept for the failure case only.
log="$(mktemp)"
trap 'rm -f "${log}"' EXIT
if ! CGO_ENABLED=0 GOBIN="${bin_dir}" \
    go install -trimpath -ldflags "${ldflags}" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" \
    >"${log}" 2>&1; then
    cat "${log}" >&2
    echo "install-helm.sh: building helm ${HELM_VERSION} failed" >&2
    exit 1
fi
echo "helm ${HELM_VERSION} built from source and installed in ${bin_dir}"
