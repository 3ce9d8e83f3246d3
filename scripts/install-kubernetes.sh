#!/usr/bin/env bash
# Build a single-node Kubernetes from the Go module proxy into a bin directory (default
# <repo>/.venv/bin), for the integration test that installs the Helm chart on a real cluster:
# kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy and kubectl from
# k8s.io/kubernetes, etcd from go.etcd.io/etcd/server/v3, CoreDNS for cluster DNS; containerd,
# runc, the CNI plugins, conntrack and iptables from Debian. Nothing here comes from an image
# registry or a download site.
# Usage: scripts/install-kubernetes.sh [BIN_DIR]
# Idempotent: a binary whose version stamp matches its pin is left alone. Go's build cache makes a
# rebuild take about a minute; the first build takes 15-25 minutes on two cores.
set -euo pipefail

KUBERNETES_VERSION="v1.33.5"
# The staging modules (k8s.io/api, client-go, ...) at the versions published with that release.
STAGING_VERSION="v0.33.5"
ETCD_VERSION="v3.5.21"
COREDNS_VERSION="v1.12.1"
KUBE_COMMANDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin_dir="${1:-${repo_root}/.venv/bin}"
tools_dir="${repo_root}/.tools"
src_root="${tools_dir}/kubernetes-src"
mkdir -p "${bin_dir}" "${src_root}"
bin_dir="$(cd "${bin_dir}" && pwd)"

command -v go >/dev/null || { echo "install-kubernetes.sh: Go >= 1.26 is required" >&2; exit 1; }

bash "${repo_root}/scripts/apt-install.sh" --for install-kubernetes.sh \
    containerd runc containernetworking-plugins conntrack iptables iproute2

stamp_ok() { [[ -x "${bin_dir}/$1" && "$(cat "${bin_dir}/.$1.version" 2>/dev/null)" == "$2" ]]; }

# A writable copy of module@version's source (the module cache is read-only), its go.mod patched
# by the sed script given; prints the folder.
module_source() { # module, version, sed script
    local module="$1" version="$2" patch="$3"
    local dest="${src_root}/$(basename "${module%/v3}")-${version}"
    if [[ ! -f "${dest}/.patched" ]]; then
        local dir
        dir="$(GOFLAGS=-mod=mod go mod download -json "${module}@${version}" \
            | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
        rm -rf "${dest}"
        cp -r "${dir}" "${dest}"
        chmod -R u+w "${dest}"
        # The module is built outside its repository: no workspace, no vendor folder.
        rm -rf "${dest}/vendor" "${dest}/go.work" "${dest}/go.work.sum"
        sed -i -E "${patch}" "${dest}/go.mod"
        touch "${dest}/.patched"
    fi
    echo "${dest}"
}

go_build() { # name, source dir, package, ldflags
    local name="$1" dir="$2" pkg="$3" ldflags="$4"
    local log="${tools_dir}/build-${name}.log"
    echo "building ${name} (first time: several minutes)…"
    if ! (cd "${dir}" && GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 \
        go build -trimpath -ldflags "${ldflags}" -o "${bin_dir}/${name}" "${pkg}") >"${log}" 2>&1; then
        tail -n 30 "${log}" >&2
        echo "install-kubernetes.sh: building ${name} failed; full log in ${log}" >&2
        exit 1
    fi
}

missing=()
for cmd in "${KUBE_COMMANDS[@]}"; do
    stamp_ok "${cmd}" "${KUBERNETES_VERSION}" || missing+=("${cmd}")
done
if ((${#missing[@]} == 0)); then
    echo "Kubernetes ${KUBERNETES_VERSION} already installed"
else
    # The repository builds its staging modules from ./staging through replace lines, which a
    # module download does not carry: require their published releases instead.
    src="$(module_source k8s.io/kubernetes "${KUBERNETES_VERSION}" \
        "s#^(\s+k8s\.io/[a-z0-9-]+) v0\.0\.0\$#\1 ${STAGING_VERSION}#; /=> \.\/staging\//d")"
    # The release's version, as its own build scripts link it in; a plain build reports
    # v0.0.0-master, which Helm's kubeVersion check refuses.
    minor="${KUBERNETES_VERSION#v1.}"
    minor="${minor%%.*}"
    kube_ldflags="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        kube_ldflags+=" -X ${pkg}.gitVersion=${KUBERNETES_VERSION} -X ${pkg}.gitMajor=1"
        kube_ldflags+=" -X ${pkg}.gitMinor=${minor} -X ${pkg}.gitTreeState=clean"
    done
    for cmd in "${missing[@]}"; do
        go_build "${cmd}" "${src}" "./cmd/${cmd}" "${kube_ldflags}"
        echo "${KUBERNETES_VERSION}" >"${bin_dir}/.${cmd}.version"
    done
fi

if stamp_ok etcd "${ETCD_VERSION}"; then
    echo "etcd ${ETCD_VERSION} already installed"
else
    # etcd's server module points its sibling modules at ../ folders; use their releases.
    src="$(module_source go.etcd.io/etcd/server/v3 "${ETCD_VERSION}" '/=> \.\.\//d')"
    go_build etcd "${src}" . "-s -w"
    echo "${ETCD_VERSION}" >"${bin_dir}/.etcd.version"
fi

if stamp_ok coredns "${COREDNS_VERSION}"; then
    echo "coredns ${COREDNS_VERSION} already installed"
else
    src="$(module_source github.com/coredns/coredns "${COREDNS_VERSION}" '')"
    go_build coredns "${src}" . "-s -w"
    echo "${COREDNS_VERSION}" >"${bin_dir}/.coredns.version"
fi
