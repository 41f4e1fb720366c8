{{/* The chart's name. */}}
{{- define "sluice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name, the prefix of every object. */}}
{{- define "sluice.fullname" -}}
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

{{/* Labels of every object. */}}
{{- define "sluice.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component (pass a dict: ctx, component). */}}
{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The service account's name. */}}
{{- define "sluice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sluice.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference. */}}
{{- define "sluice.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Secret holding the cluster secret. */}}
{{- define "sluice.clusterSecretName" -}}
{{- default (printf "%s-cluster" (include "sluice.fullname" .)) .Values.clusterSecret.existingSecret }}
{{- end }}

{{/* The Secret holding the scheduler's config file. */}}
{{- define "sluice.configSecretName" -}}
{{- default (printf "%s-config" (include "sluice.fullname" .)) .Values.scheduler.existingConfigSecret }}
{{- end }}

{{/* The scheduler's client Service, and the Service executors register at. */}}
{{- define "sluice.clientService" -}}
{{- printf "%s-scheduler" (include "sluice.fullname" .) }}
{{- end }}
{{- define "sluice.clusterService" -}}
{{- printf "%s-scheduler-cluster" (include "sluice.fullname" .) }}
{{- end }}

{{/* Refuses contradictory settings. */}}
{{- define "sluice.validate" -}}
{{- if and .Values.aws.credentials.existingSecret (hasKey .Values.serviceAccount.annotations "eks.amazonaws.com/role-arn") }}
{{- fail "aws.credentials.existingSecret and an IRSA role (serviceAccount.annotations) exclude each other: pick one" }}
{{- end }}
{{- if not (has .Values.catalog (list "embedded" "glue")) }}
{{- fail (printf "catalog must be embedded or glue, not %q" .Values.catalog) }}
{{- end }}
{{- if and .Values.scheduler.insecureNoAuth .Values.scheduler.existingConfigSecret }}
{{- fail "scheduler.insecureNoAuth is for clusters without users: drop it when giving scheduler.existingConfigSecret" }}
{{- end }}
{{- end }}

{{/* Environment shared by every Sluice container: AWS, logs, traces, the cluster secret. */}}
{{- define "sluice.env" -}}
- name: SLUICE_LOG
  value: {{ .Values.logLevel | quote }}
- name: AWS_REGION
  value: {{ .Values.aws.region | quote }}
{{- with .Values.aws.s3Endpoint }}
- name: AWS_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.aws.glueEndpoint }}
- name: AWS_ENDPOINT_URL_GLUE
  value: {{ . | quote }}
{{- end }}
{{- with .Values.aws.credentials.existingSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.aws.credentials.accessKeyIdKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.aws.credentials.secretAccessKeyKey }}
{{- end }}
{{- with .Values.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
- name: SLUICE_CLUSTER_SECRET_FILE
  value: /etc/sluice/cluster/{{ .Values.clusterSecret.key }}
{{- end }}
