{{/* Names and labels shared by every object. */}}
{{- define "ripple.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ripple.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component: include "ripple.selector" (list $ "worker") */}}
{{- define "ripple.selector" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ $root.Chart.Name }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "ripple.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "ripple.secretName" -}}
{{- if .Values.secrets.existingSecret -}}
{{ .Values.secrets.existingSecret }}
{{- else if .Values.secrets.create -}}
{{ include "ripple.fullname" . }}-secrets
{{- end -}}
{{- end -}}

{{/* The environment every Ripple container gets. */}}
{{- define "ripple.env" -}}
- name: RIPPLE_CONFIG
  value: /etc/ripple/ripple.toml
- name: RIPPLE_KAFKA_BOOTSTRAP
  value: {{ .Values.kafka.bootstrap | quote }}
- name: RIPPLE_KAFKA_NAMESPACE
  value: {{ .Values.kafka.namespace | quote }}
- name: RIPPLE_KAFKA_PARTITIONS
  value: {{ .Values.kafka.partitions | quote }}
- name: RIPPLE_STACK_STATE_DIR
  value: /var/lib/ripple
# Metrics and health endpoints listen on every interface of the pod, not loopback.
- name: RIPPLE_BIND_HOST
  value: 0.0.0.0
- name: RIPPLE_ALERTMANAGER_URL
  value: {{ .Values.alertmanager.url | quote }}
- name: PYTHONUNBUFFERED
  value: "1"
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "ripple.envFrom" -}}
{{- $secret := include "ripple.secretName" . -}}
{{- if $secret }}
envFrom:
  - secretRef:
      name: {{ $secret }}
{{- end }}
{{- end -}}

{{/* Pod annotations: roll the pods when the TOML changes. */}}
{{- define "ripple.podAnnotations" -}}
checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end -}}

{{- define "ripple.configVolume" -}}
- name: config
  configMap:
    name: {{ include "ripple.fullname" . }}-config
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The config mount and the extra mounts of every Ripple container. */}}
{{- define "ripple.configMounts" -}}
- name: config
  mountPath: /etc/ripple
  readOnly: true
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end -}}
