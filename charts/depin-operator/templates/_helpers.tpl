{{/* Chart name, overridable. */}}
{{- define "depin-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name when it already contains the chart name. */}}
{{- define "depin-operator.fullname" -}}
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

{{/* Labels on every object. */}}
{{- define "depin-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "depin-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: depin
{{- end }}

{{/* The immutable subset used in selectors. */}}
{{- define "depin-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "depin-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "depin-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "depin-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag of an image value; an empty tag means the appVersion. Call with (list $ .Values.x). */}}
{{- define "depin-operator.image" -}}
{{- $root := index . 0 }}
{{- $image := index . 1 }}
{{- printf "%s:%s" $image.repository (default $root.Chart.AppVersion $image.tag) }}
{{- end }}

{{/* Port of a host:port listen address ("0.0.0.0:8080", "[::]:8080" -> 8080). */}}
{{- define "depin-operator.port" -}}
{{- $port := splitList ":" . | last }}
{{- if not (regexMatch "^[0-9]+$" $port) }}
{{- fail (printf "listen address %q has no numeric port" .) }}
{{- end }}
{{- $port }}
{{- end }}

{{/* The Kubernetes version rendered for: kubeVersionOverride, else what Helm reports. */}}
{{- define "depin-operator.kubeVersion" -}}
{{- default .Capabilities.KubeVersion.Version .Values.kubeVersionOverride }}
{{- end }}

{{/*
Whether a monitoring.coreos.com object is rendered: `enabled` true/false, or "auto" when
the cluster serves the API. Call with (list $ .Values.monitoring.x "Kind").
*/}}
{{- define "depin-operator.monitoringEnabled" -}}
{{- $root := index . 0 }}
{{- $enabled := index . 1 }}
{{- $kind := index . 2 }}
{{- if eq (toString $enabled) "auto" }}
{{- if $root.Capabilities.APIVersions.Has (printf "monitoring.coreos.com/v1/%s" $kind) }}true{{ end }}
{{- else if $enabled }}true{{ end }}
{{- end }}

{{/* The verifier endpoint agents are told to use. */}}
{{- define "depin-operator.verifierEndpoint" -}}
{{- if .Values.operator.verifierEndpoint }}
{{- .Values.operator.verifierEndpoint }}
{{- else }}
{{- printf "http://%s.%s.svc.%s:%s" (include "depin-operator.fullname" .) .Release.Namespace .Values.clusterDomain (include "depin-operator.port" .Values.operator.grpcAddr) }}
{{- end }}
{{- end }}

{{/* Pod-level settings of the demo simulators: the operator's pod security context, no API token. */}}
{{- define "depin-operator.simPod" -}}
{{- $root := index . 0 -}}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
automountServiceAccountToken: false
{{- end }}
