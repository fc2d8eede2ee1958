{{/* Names, labels and the checks every template relies on. */}}

{{- define "rolescope.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rolescope.fullname" -}}
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

{{- define "rolescope.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: stable for the life of a release (a Deployment selector is immutable). */}}
{{- define "rolescope.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rolescope.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "rolescope.labels" -}}
helm.sh/chart: {{ include "rolescope.chart" . }}
{{ include "rolescope.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: rolescope
{{- end }}

{{/* Labels of one component: call with (dict "ctx" $ "component" "server"). */}}
{{- define "rolescope.componentLabels" -}}
{{ include "rolescope.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "rolescope.componentSelector" -}}
{{ include "rolescope.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "rolescope.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rolescope.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "rolescope.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{- define "rolescope.rolesConfigMap" -}}
{{- default (printf "%s-roles" (include "rolescope.fullname" .)) .Values.roles.existingConfigMap }}
{{- end }}

{{- define "rolescope.apiKeysSecret" -}}
{{- default (printf "%s-api-keys" (include "rolescope.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{- define "rolescope.apiKeysSecretKey" -}}
{{- if .Values.auth.existingSecret }}{{ .Values.auth.existingSecretKey }}{{ else }}api-keys{{ end }}
{{- end }}

{{- define "rolescope.serviceUrl" -}}
{{- printf "%s://%s.%s.svc:%d" (ternary "https" "http" .Values.tls.enabled) (include "rolescope.fullname" .) .Release.Namespace (int .Values.service.port) }}
{{- end }}

{{/* The Secret with the serving certificate (tls.crt, tls.key): cert-manager's or an existing one. */}}
{{- define "rolescope.tlsSecret" -}}
{{- if .Values.tls.certManager.enabled }}{{ include "rolescope.fullname" . }}-tls{{ else }}{{ .Values.tls.existingSecret }}{{ end }}
{{- end }}

{{- define "rolescope.clientCASecret" -}}
{{- .Values.tls.clientCA.existingSecret | default (include "rolescope.tlsSecret" .) }}
{{- end }}

{{- define "rolescope.clientCAKey" -}}
{{- if .Values.tls.clientCA.existingSecret }}{{ .Values.tls.clientCA.key }}{{ else }}ca.crt{{ end }}
{{- end }}

{{/* "redis" when a Redis URL (or a Secret holding one) is given, "sqlite" otherwise. */}}
{{- define "rolescope.store" -}}
{{- if or .Values.sessionStore.redis.url .Values.sessionStore.redis.existingSecret }}redis{{ else }}sqlite{{ end }}
{{- end }}

{{/* The most replicas the service can run at once, counting the autoscaler. */}}
{{- define "rolescope.maxReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ max .Values.autoscaling.maxReplicas .Values.autoscaling.minReplicas }}{{ else }}{{ .Values.replicaCount }}{{ end }}
{{- end }}

{{/* Refuse combinations that would lose or corrupt data, with the value to change. */}}
{{- define "rolescope.validate" -}}
{{- $replicas := include "rolescope.maxReplicas" . | int }}
{{- if and (gt $replicas 1) (eq (include "rolescope.store" .) "sqlite") }}
{{- fail (printf "rolescope: %d replicas cannot share the SQLite session store (one file on a ReadWriteOnce volume, one writer). Set sessionStore.redis.url to an existing Redis, or use replicaCount: 1 without autoscaling." $replicas) }}
{{- end }}
{{- if and .Values.tls.enabled (not .Values.tls.certManager.enabled) (not .Values.tls.existingSecret) }}
{{- fail "rolescope: tls.enabled needs a certificate: set tls.certManager.enabled with tls.certManager.issuerRef.name, or tls.existingSecret (a kubernetes.io/tls Secret)." }}
{{- end }}
{{- if and .Values.tls.enabled .Values.tls.certManager.enabled (not .Values.tls.certManager.issuerRef.name) }}
{{- fail "rolescope: tls.certManager.enabled needs tls.certManager.issuerRef.name (the Issuer or ClusterIssuer that signs the certificate)." }}
{{- end }}
{{- if and .Values.tls.clientCA.enabled (not .Values.tls.enabled) }}
{{- fail "rolescope: tls.clientCA.enabled needs tls.enabled (client certificates are checked in the TLS handshake)." }}
{{- end }}
{{- if and .Values.loadtest.enabled (eq .Values.loadtest.traffic.source "configMap") (not .Values.loadtest.traffic.configMap) }}
{{- fail "rolescope: loadtest.traffic.source is configMap but loadtest.traffic.configMap names no ConfigMap." }}
{{- end }}
{{- if and .Values.loadtest.enabled (eq .Values.loadtest.traffic.source "volume") (not .Values.loadtest.traffic.claimName) }}
{{- fail "rolescope: loadtest.traffic.source is volume but loadtest.traffic.claimName names no PersistentVolumeClaim." }}
{{- end }}
{{- end }}

{{/* The container security settings every workload carries; profiling adds SYS_PTRACE only to its sidecar. */}}
{{- define "rolescope.containerSecurity" -}}
{{ toYaml .Values.securityContext }}
{{- end }}

{{- define "rolescope.podSecurity" -}}
{{ toYaml .Values.podSecurityContext }}
{{- end }}

{{- define "rolescope.otelResource" -}}
{{- $attrs := list "k8s.namespace.name=$(POD_NAMESPACE)" "k8s.pod.name=$(POD_NAME)" (printf "service.version=%s" (.Values.image.tag | default .Chart.AppVersion)) }}
{{- range $key, $value := .Values.telemetry.resourceAttributes }}
{{- $attrs = append $attrs (printf "%s=%s" $key $value) }}
{{- end }}
{{- join "," $attrs }}
{{- end }}

{{/*
The py-spy sidecar (values-profiling.yaml only). CAP_SYS_PTRACE only takes effect for
uid 0 (Kubernetes grants no ambient capabilities), so this one container runs as root;
it still cannot escalate, writes only to /profiles and /tmp, and serves no traffic.
*/}}
{{- define "rolescope.profilerSidecar" -}}
- name: py-spy
  image: {{ include "rolescope.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command: ["sleep", "infinity"]
  resources:
    {{- toYaml .Values.profiling.resources | nindent 4 }}
  securityContext:
    runAsNonRoot: false
    runAsUser: 0
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    capabilities:
      drop: [ALL]
      add: [SYS_PTRACE]
    seccompProfile:
      type: RuntimeDefault
  volumeMounts:
    - name: profiles
      mountPath: /profiles
    - name: tmp
      mountPath: /tmp
{{- end }}

{{- define "rolescope.loadApiKeySecretKey" -}}
{{- if .Values.auth.existingSecret }}{{ .Values.auth.existingSecretKey }}{{ else }}load-api-key{{ end }}
{{- end }}

{{/* How many load processes share the traffic: each replays its own slice of the sessions. */}}
{{- define "rolescope.loadProcesses" -}}
{{- if .Values.loadtest.autoscaling.enabled }}{{ .Values.loadtest.autoscaling.maxReplicas }}{{ else }}{{ .Values.loadtest.workers }}{{ end }}
{{- end }}

{{/* Settings every Locust process reads (loadtests/load_config.py, ROLESCOPE_LOAD_*). */}}
{{- define "rolescope.loadEnv" -}}
- name: ROLESCOPE_LOAD_PROCESSES
  value: {{ include "rolescope.loadProcesses" . | quote }}
- name: ROLESCOPE_LOAD_USERS
  value: {{ .Values.loadtest.users | quote }}
- name: ROLESCOPE_LOAD_SPAWN_RATE
  value: {{ .Values.loadtest.spawnRate | quote }}
{{- if ne .Values.loadtest.traffic.source "image" }}
- name: ROLESCOPE_LOAD_TRAFFIC
  value: {{ printf "/traffic/%s" .Values.loadtest.traffic.file | quote }}
{{- end }}
{{- if .Values.auth.enabled }}
- name: ROLESCOPE_LOAD_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "rolescope.apiKeysSecret" . }}
      key: {{ include "rolescope.loadApiKeySecretKey" . }}
{{- end }}
{{- if include "rolescope.loadOverTls" . }}
# The release's own service over TLS: trust its CA and, with client certificates required, present
# the serving certificate (cert-manager issues it for client auth too).
- name: ROLESCOPE_LOAD_TARGET
  value: {{ include "rolescope.loadTlsTarget" . | quote }}
{{- end }}
{{- range $name, $value := .Values.loadtest.env }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end }}

{{/* Non-empty when the load generator targets this release's HTTPS service with no target options of its own. */}}
{{- define "rolescope.loadOverTls" -}}
{{- if and .Values.tls.enabled (not .Values.loadtest.host) (not (hasKey .Values.loadtest.env "ROLESCOPE_LOAD_TARGET")) }}true{{ end }}
{{- end }}

{{- define "rolescope.loadTlsTarget" -}}
{{- $target := dict "ca_file" "/etc/rolescope/tls/ca.crt" }}
{{- if .Values.tls.clientCA.enabled }}
{{- $_ := set $target "client_cert" "/etc/rolescope/tls/tls.crt" }}
{{- $_ := set $target "client_key" "/etc/rolescope/tls/tls.key" }}
{{- end }}
{{- toJson $target }}
{{- end }}

{{- define "rolescope.loadVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- if eq .Values.loadtest.traffic.source "configMap" }}
- name: traffic
  configMap:
    name: {{ .Values.loadtest.traffic.configMap }}
{{- else if eq .Values.loadtest.traffic.source "volume" }}
- name: traffic
  persistentVolumeClaim:
    claimName: {{ .Values.loadtest.traffic.claimName }}
    readOnly: true
{{- end }}
{{- if include "rolescope.loadOverTls" . }}
- name: tls
  secret:
    secretName: {{ include "rolescope.tlsSecret" . }}
{{- end }}
{{- end }}

{{- define "rolescope.loadVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if ne .Values.loadtest.traffic.source "image" }}
- name: traffic
  mountPath: /traffic
  readOnly: true
{{- end }}
{{- if include "rolescope.loadOverTls" . }}
- name: tls
  mountPath: /etc/rolescope/tls
  readOnly: true
{{- end }}
{{- end }}

{{- define "rolescope.loadHost" -}}
{{- default (include "rolescope.serviceUrl" .) .Values.loadtest.host }}
{{- end }}

{{/*
A probe of `path`: HTTP, HTTPS with TLS on, and the TCP port with client certificates required
(kubelet cannot present one, so an HTTPS probe would be refused at the handshake).
*/}}
{{- define "rolescope.probe" -}}
{{- $tls := .ctx.Values.tls }}
{{- if and $tls.enabled $tls.clientCA.enabled -}}
tcpSocket:
  port: http
{{- else -}}
httpGet:
  path: {{ .path }}
  port: http
  scheme: {{ ternary "HTTPS" "HTTP" $tls.enabled }}
{{- end }}
{{- end }}
