#!/usr/bin/env bash
# Build the pinned Weaviate and Ollama servers (and the Distribution registry the image-copy test
# pushes into) from source into a bin directory (default <repo>/.venv/bin, where `holdfast up`
# looks first). The Go module proxy is the only way in for
# them on an offline workstation or CI; Go's build cache makes a re-run take seconds.
# Usage: scripts/install-services.sh [BIN_DIR]
# Idempotent: a binary whose version stamp matches its pin is left alone.
set -euo pipefail

# Weaviate 1.37.15 or newer: older BM25 (BlockMax WAND) pruned genuine top matches from terms
# still in the memtable and from freshly flushed segments, so keyword and hybrid results were
# worse right after an import than minutes later (weaviate/weaviate#11780, #12022; measured on
# the Python-docs fast subset: nDCG@10 0.896 right after the upload, 0.938 a few seconds on).
WEAVIATE_VERSION="v1.37.15"
# Ollama 0.12.x: its CPU backend is plain cgo. Go module zips drop vendor/ folders, so the three
# header-only libraries llama.cpp vendors come from packages instead: stb and nlohmann-json from
# Debian, miniaudio from the sources of the `miniaudio` Python package (same single header).
OLLAMA_VERSION="v0.12.6"
# llama.cpp's CPU kernels use what the compiler may assume: built for x86-64-v3 (AVX2, FMA, F16C,
# BMI2: every x86 server CPU of the last decade) a 756-token /v1/query generated in 4.5 s instead
# of 48 s with the plain build (Gemma 3 270M, this 2-core machine). The stamp names the baseline.
# A build machine without those features gets the portable x86-64 build; a bundle meant for
# older customer CPUs is built with OLLAMA_CPU_BASELINE=x86-64 (the Ansible llm role refuses a
# v3 build on a host that lacks them). Other architectures build without -march.
has_x86_64_v3() {
    local flags
    flags="$(grep -m1 -w '^flags' /proc/cpuinfo 2>/dev/null || true)"
    for f in avx avx2 fma f16c bmi1 bmi2 movbe; do
        [[ " ${flags} " == *" ${f} "* ]] || return 1
    done
}
if [[ -z "${OLLAMA_CPU_BASELINE:-}" ]]; then
    if [[ "$(uname -m)" != "x86_64" ]]; then
        OLLAMA_CPU_BASELINE="native-arch"
    elif has_x86_64_v3; then
        OLLAMA_CPU_BASELINE="x86-64-v3"
    else
        OLLAMA_CPU_BASELINE="x86-64"
        echo "install-services.sh: this CPU lacks AVX2/FMA; building the portable (slower) Ollama" >&2
    fi
fi
case "${OLLAMA_CPU_BASELINE}" in
    x86-64 | x86-64-v2 | x86-64-v3 | x86-64-v4) ollama_march="-march=${OLLAMA_CPU_BASELINE}" ;;
    native-arch) ollama_march="" ;;
    *) echo "install-services.sh: OLLAMA_CPU_BASELINE must be x86-64, x86-64-v2, x86-64-v3 or x86-64-v4" >&2; exit 1 ;;
esac
# "+stamped": builds before the version was linked in (they report 0.0.0) are rebuilt once.
OLLAMA_STAMP="${OLLAMA_VERSION}+${OLLAMA_CPU_BASELINE}+stamped"
# The release version and gin's release mode, linked in as upstream's release scripts do; a plain
# `go install` reports 0.0.0 (`ollama --version`, GET /api/version) and runs gin in debug mode.
OLLAMA_LDFLAGS="-X=github.com/ollama/ollama/version.Version=${OLLAMA_VERSION#v} -X=github.com/ollama/ollama/server.mode=release"
# The CNCF Distribution registry (`registry`), for tests only: the image-copy test of the Ansible
# kubernetes role pushes the bundle's images into it with skopeo, as into a customer's registry.
REGISTRY_VERSION="v3.1.2"
MINIAUDIO_SDIST="miniaudio==1.71"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin_dir="${1:-${repo_root}/.venv/bin}"
tools_dir="${repo_root}/.tools"
mkdir -p "${bin_dir}" "${tools_dir}"
bin_dir="$(cd "${bin_dir}" && pwd)"

command -v go >/dev/null || { echo "install-services.sh: Go >= 1.26 is required" >&2; exit 1; }

stamp_ok() { [[ -x "${bin_dir}/$1" && "$(cat "${bin_dir}/.$1.version" 2>/dev/null)" == "$2" ]]; }

build() { # name, module@version, extra env...
    local name="$1" target="$2"; shift 2
    local log="${tools_dir}/build-${name}.log"
    echo "building ${name} from ${target} (first time: several minutes)…"
    if ! env "$@" GOBIN="${bin_dir}" go install -trimpath "${target}" >"${log}" 2>&1; then
        tail -n 30 "${log}" >&2
        echo "install-services.sh: building ${name} failed; full log in ${log}" >&2
        exit 1
    fi
}

# Debian packages, all in one apt-get run (scripts/apt-install.sh installs only the missing ones).
packages=()
# `ip` for the loopback-only network namespace the offline test runs the stack in.
command -v ip >/dev/null || packages+=(iproute2)
# `systemd-analyze verify` for the units the Ansible roles render (the offline install test).
command -v systemd-analyze >/dev/null || packages+=(systemd)
# skopeo: the Ansible kubernetes role copies the bundle's images into a registry with it
command -v skopeo >/dev/null || packages+=(skopeo)
# headers the Ollama build needs (see above)
stamp_ok ollama "${OLLAMA_STAMP}" || packages+=(libstb-dev nlohmann-json3-dev)
bash "${repo_root}/scripts/apt-install.sh" --for install-services.sh "${packages[@]}"

if stamp_ok weaviate-server "${WEAVIATE_VERSION}"; then
    echo "weaviate-server ${WEAVIATE_VERSION} already installed"
else
    build weaviate-server "github.com/weaviate/weaviate/cmd/weaviate-server@${WEAVIATE_VERSION}" \
        CGO_ENABLED=0
    echo "${WEAVIATE_VERSION}" >"${bin_dir}/.weaviate-server.version"
fi

if stamp_ok ollama "${OLLAMA_STAMP}"; then
    echo "ollama ${OLLAMA_STAMP} already installed"
else
    include_dir="${tools_dir}/include"
    if [[ ! -f "${include_dir}/miniaudio/miniaudio.h" ]]; then
        sdist_dir="$(mktemp -d)"
        python3 -m pip download --quiet --no-deps --no-binary :all: -d "${sdist_dir}" \
            "${MINIAUDIO_SDIST}"
        mkdir -p "${include_dir}/miniaudio"
        tar -xzf "${sdist_dir}"/miniaudio-*.tar.gz -C "${sdist_dir}"
        cp "${sdist_dir}"/miniaudio-*/miniaudio/miniaudio.h "${include_dir}/miniaudio/"
        rm -rf "${sdist_dir}"
    fi
    build ollama "github.com/ollama/ollama@${OLLAMA_VERSION}" \
        CGO_ENABLED=1 "CGO_CPPFLAGS=-I${include_dir}" \
        "CGO_CFLAGS=-O3 ${ollama_march}" "CGO_CXXFLAGS=-O3 ${ollama_march}" \
        "GOFLAGS='-ldflags=${OLLAMA_LDFLAGS}'"
    echo "${OLLAMA_STAMP}" >"${bin_dir}/.ollama.version"
fi

if stamp_ok registry "${REGISTRY_VERSION}"; then
    echo "registry ${REGISTRY_VERSION} already installed"
else
    build registry "github.com/distribution/distribution/v3/cmd/registry@${REGISTRY_VERSION}" \
        CGO_ENABLED=0
    echo "${REGISTRY_VERSION}" >"${bin_dir}/.registry.version"
fi
