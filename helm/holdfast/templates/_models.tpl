{{/*
The model store: its volume, and the init containers that fill it on first start.
Every pod that reads models mounts the store at /models (the gateway's HOLDFAST_MODELS_DIR); with
models.populate, its first init container copies the holdfast-models image's /models into it.
*/}}

{{/* "set" when a model store is configured (a claim or a node directory), else empty. */}}
{{- define "holdfast.modelStoreSet" -}}
{{- $s := .Values.modelStore }}
{{- if or (and (eq $s.type "pvc") $s.existingClaim) (and (eq $s.type "hostPath") $s.hostPath) }}set{{ end }}
{{- end }}

{{/* "set" when the pods fill the store from the models image, else empty. */}}
{{- define "holdfast.modelsPopulating" -}}
{{- if and .Values.models.populate (include "holdfast.modelStoreSet" .) }}set{{ end }}
{{- end }}

{{/*
The `models` volume. Read-only at the volume unless an init container of the pod writes to it
(populate, or Ollama's import: pass "writable" true); main containers mount it read-only.
Usage: include "holdfast.modelStoreVolume" (dict "context" $ "writable" false)
*/}}
{{- define "holdfast.modelStoreVolume" -}}
{{- $s := .context.Values.modelStore }}
{{- $writable := or .writable (include "holdfast.modelsPopulating" .context) }}
- name: models
  {{- if eq $s.type "pvc" }}
  persistentVolumeClaim:
    claimName: {{ $s.existingClaim }}
    {{- if not $writable }}
    readOnly: true
    {{- end }}
  {{- else }}
  hostPath:
    path: {{ $s.hostPath }}
    type: Directory
  {{- end }}
{{- end }}

{{/*
Copy the models image's files into the store unless its marker names this image already. Pods
that start together take turns through a lock directory (mkdir is atomic, also on NFS); one that
waits longer than LOCK_TIMEOUT_S takes over a lock left by a pod that died while copying. The
marker is written last, so a pod only skips the copy once every file is complete.
*/}}
{{- define "holdfast.modelsPopulateScript" -}}
set -eu
marker=/target/.holdfast-models
lock=/target/.holdfast-models.lock
have() { [ -f "$marker" ] && [ "$(cat "$marker")" = "$MODELS_VERSION" ]; }
if have; then echo "models: $MODELS_VERSION already in the store"; exit 0; fi
waited=0
until mkdir "$lock" 2>/dev/null; do
  if have; then echo "models: $MODELS_VERSION copied by another pod"; exit 0; fi
  if [ "$waited" -ge "$LOCK_TIMEOUT_S" ]; then
    echo "models: taking over $lock (held ${waited}s)"; rmdir "$lock" || true; waited=0; continue
  fi
  sleep 5; waited=$((waited + 5))
done
trap 'rmdir "$lock"' EXIT
if have; then echo "models: $MODELS_VERSION copied by another pod"; exit 0; fi
echo "models: copying $MODELS_VERSION into the store"
rm -f "$marker"
cp -R /models/. /target/
printf '%s\n' "$MODELS_VERSION" >"$marker.tmp"
mv "$marker.tmp" "$marker"
echo "models: done"
{{- end }}

{{/*
The populate init container (a one-item list), or nothing without models.populate.
Usage: include "holdfast.modelsPopulate" $
*/}}
{{- define "holdfast.modelsPopulate" -}}
{{- if include "holdfast.modelsPopulating" . }}
{{- $m := .Values.models }}
{{- $image := include "holdfast.image" (dict "context" . "image" $m.image "key" "models.image" "defaultTag" .Chart.AppVersion) }}
{{- $version := $m.image.digest | default (printf "%s:%s" $m.image.repository ($m.image.tag | default .Chart.AppVersion)) }}
{{- $c := dict "name" "models-populate" "image" $image "imagePullPolicy" $m.image.pullPolicy }}
{{- $_ := set $c "command" (list "/bin/sh" "-c" (include "holdfast.modelsPopulateScript" .)) }}
{{- $_ = set $c "env" (list (dict "name" "MODELS_VERSION" "value" (toString $version)) (dict "name" "LOCK_TIMEOUT_S" "value" (toString (int $m.populateLockTimeoutSeconds)))) }}
{{- $_ = set $c "volumeMounts" (list (dict "name" "models" "mountPath" "/target")) }}
{{- $_ = set $c "resources" $m.populateResources }}
{{- $_ = set $c "securityContext" $m.populateSecurityContext }}
{{- toYaml (list $c) }}
{{- end }}
{{- end }}

{{/*
Import llm.ollama.model into Ollama's models directory from the Modelfile (its FROM a GGUF of the
store), with a temporary `ollama serve` on localhost; skipped when the same Modelfile was imported
already (a copy of it is kept beside the models).
*/}}
{{- define "holdfast.ollamaImportScript" -}}
set -eu
stamp="$OLLAMA_MODELS/.$MODEL.Modelfile"
mkdir -p "$OLLAMA_MODELS"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(cat /etc/ollama/Modelfile)" ]; then
  echo "ollama: $MODEL already imported from this Modelfile"; exit 0
fi
/usr/local/bin/ollama serve &
pid=$!
waited=0
until /usr/local/bin/ollama list >/dev/null 2>&1; do
  if [ "$waited" -ge "$START_TIMEOUT_S" ]; then echo "ollama: no answer after ${waited}s"; exit 1; fi
  sleep 1; waited=$((waited + 1))
done
/usr/local/bin/ollama create "$MODEL" -f /etc/ollama/Modelfile
cp /etc/ollama/Modelfile "$stamp"
kill "$pid"
wait "$pid" || true
echo "ollama: $MODEL imported"
{{- end }}
