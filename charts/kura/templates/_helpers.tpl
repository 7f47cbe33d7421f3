{{/* Chart name, for the app.kubernetes.io/name label. */}}
{{- define "kura.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the prefix of every object this release creates. Cluster-scoped objects
(ClusterRole, ClusterRoleBinding) carry it too, so two releases never collide.
*/}}
{{- define "kura.fullname" -}}
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

{{- define "kura.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "kura.labels" -}}
helm.sh/chart: {{ include "kura.chart" . }}
{{ include "kura.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: kura
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the operator Pods. */}}
{{- define "kura.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kura.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kura.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kura.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The operator image, also the image of the instance Pods' kura-copy init container. A digest
pins it; otherwise the tag (default: the chart's appVersion).
*/}}
{{- define "kura.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
The operator's rules, generated from the controllers' RBAC markers (files/rbac-rules.yaml,
kept equal to the generated role by the chart tests).
*/}}
{{- define "kura.rules" -}}
{{- .Files.Get "files/rbac-rules.yaml" | fromYamlArray | toYaml }}
{{- end }}

{{/* Namespace used by the sample in NOTES.txt: one the operator watches. */}}
{{- define "kura.sampleNamespace" -}}
{{- if .Values.watchNamespaces }}{{ first .Values.watchNamespaces }}{{ else }}default{{ end }}
{{- end }}
