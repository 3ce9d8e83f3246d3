{{/*
Names, labels and images. Nothing else lives here (guard rails are in validate.yaml).
*/}}

{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "holdfast.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release + chart name (the release name alone when it already holds the chart name). */}}
{{- define "holdfast.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Full name of one component's objects.
Usage: include "holdfast.componentName" (dict "context" $ "component" "weaviate")
*/}}
{{- define "holdfast.componentName" -}}
{{- printf "%s-%s" (include "holdfast.fullname" .context | trunc 50 | trimSuffix "-") .component }}
{{- end }}

{{/* Chart name and version, for the helm.sh/chart label. */}}
{{- define "holdfast.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels of one component. These never change across upgrades.
Usage: include "holdfast.selectorLabels" (dict "context" $ "component" "gateway")
*/}}
{{- define "holdfast.selectorLabels" -}}
app.kubernetes.io/name: {{ include "holdfast.name" .context }}
app.kubernetes.io/instance: {{ .context.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Common labels of one component's objects.
Usage: include "holdfast.labels" (dict "context" $ "component" "gateway")
*/}}
{{- define "holdfast.labels" -}}
helm.sh/chart: {{ include "holdfast.chart" .context }}
{{ include "holdfast.selectorLabels" . }}
app.kubernetes.io/version: {{ .context.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .context.Release.Service }}
app.kubernetes.io/part-of: holdfast
{{- with .context.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Image reference: [global.imageRegistry | image.registry]/repository[:tag][@digest].
The tag defaults to `defaultTag` (the chart's appVersion for Holdfast's own images); `latest` is refused.
In config.environment production the reference must be <global.imageRegistry>/...@sha256:...: an
empty global.imageRegistry or a missing digest fails, naming the value to set (`key`, the image's
values path, e.g. "gateway.image").
Usage: include "holdfast.image" (dict "context" $ "image" .Values.gateway.image "key" "gateway.image" "defaultTag" .Chart.AppVersion)
       keys "tag" and "digest", when present, replace the image's own (TEI's CPU variant), and
       "digestKey" the value named for a missing digest.
*/}}
{{- define "holdfast.image" -}}
{{- $registry := .context.Values.global.imageRegistry | default .image.registry | trimSuffix "/" }}
{{- $tag := .image.tag }}
{{- if hasKey . "tag" }}{{ $tag = .tag }}{{ end }}
{{- $tag = $tag | default .defaultTag | toString }}
{{- $digest := .image.digest }}
{{- if hasKey . "digest" }}{{ $digest = .digest }}{{ end }}
{{- $key := .key | default .image.repository }}
{{- if eq $tag "latest" }}
{{- fail (printf "%s.tag: the tag `latest` is not allowed; pin a version tag or a digest" $key) }}
{{- end }}
{{- if and (not $tag) (not $digest) }}
{{- fail (printf "%s: set a tag or a digest" $key) }}
{{- end }}
{{- if eq (toString .context.Values.config.environment) "production" }}
{{- if not .context.Values.global.imageRegistry }}
{{- fail "global.imageRegistry: production pulls every image from your own registry; set it to the registry (host[/path]) the bundle's images were copied into, or set config.environment: development" }}
{{- end }}
{{- if not (regexMatch "^sha256:[0-9a-f]{64}$" (toString $digest)) }}
{{- fail (printf "%s: production pins every image by digest; set it to the image's sha256:... (the bundle's manifest.json lists them), or set config.environment: development" (.digestKey | default (printf "%s.digest" $key))) }}
{{- end }}
{{- end }}
{{- $ref := .image.repository }}
{{- if $registry }}{{ $ref = printf "%s/%s" $registry $ref }}{{ end }}
{{- if $tag }}{{ $ref = printf "%s:%s" $ref $tag }}{{ end }}
{{- if $digest }}{{ $ref = printf "%s@%s" $ref $digest }}{{ end }}
{{- $ref }}
{{- end }}

{{/* imagePullSecrets of every pod, from global.imagePullSecrets (names or {name: ...} entries). */}}
{{- define "holdfast.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ if kindIs "string" . }}{{ . }}{{ else }}{{ .name }}{{ end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Gateway pods: "multiple" when more than one can run at once (replicas > 1, or autoscaling with
maxReplicas > 1), else empty.
*/}}
{{- define "holdfast.gatewayMultiple" -}}
{{- $gw := .Values.gateway }}
{{- $max := int $gw.replicas }}
{{- if $gw.autoscaling.enabled }}{{ $max = int $gw.autoscaling.maxReplicas }}{{ end }}
{{- if gt $max 1 }}multiple{{ end }}
{{- end }}

{{/*
The shared rate-limit store (limits.storage_url): "set" when the gateway pods get one, from
gateway.rateLimitStore, an env HOLDFAST_LIMITS__STORAGE_URL in gateway.extraEnv, or
config.limits.storage_url (development), else empty.
*/}}
{{- define "holdfast.rateLimitStoreSet" -}}
{{- $set := .Values.gateway.rateLimitStore.existingSecret }}
{{- range .Values.gateway.extraEnv }}
{{- if eq (toString .name) "HOLDFAST_LIMITS__STORAGE_URL" }}{{ $set = "extraEnv" }}{{ end }}
{{- end }}
{{- with .Values.config.limits }}
{{- if .storage_url }}{{ $set = "config" }}{{ end }}
{{- end }}
{{- if $set }}set{{ end }}
{{- end }}
