{{/*
Names and labels. The object names are fixed (clipper-operator), as
`clipper operator manifests` writes them: the operator and its tests look the
ServiceAccount up by that name, and one install owns one namespace.
*/}}
{{- define "clipper.name" -}}clipper-operator{{- end -}}

{{/* The labels that select the operator's pod: never change them (immutable). */}}
{{- define "clipper.selectorLabels" -}}
app.kubernetes.io/name: clipper-operator
app.kubernetes.io/part-of: clipper
{{- end -}}

{{- define "clipper.labels" -}}
{{ include "clipper.selectorLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "clipper.tag" -}}{{ .Values.image.tag | default .Chart.AppVersion }}{{- end -}}

{{- define "clipper.image" -}}
{{ printf "%s:%s" .Values.image.repository (include "clipper.tag" .) }}
{{- end -}}

{{/* Cluster-wide when no namespace is given, or any is a glob (it may match
namespaces that do not exist yet, which no Role can cover). */}}
{{- define "clipper.clusterWide" -}}
{{- $glob := false -}}
{{- range .Values.watchNamespaces -}}
{{- if regexMatch "[*?\\[]" . -}}{{- $glob = true -}}{{- end -}}
{{- end -}}
{{- if or (empty .Values.watchNamespaces) $glob -}}true{{- end -}}
{{- end -}}

{{/*
The operator's rules, each for a call it really makes: see
operator/builders/install.py (namespaced_rules, discovery_rules, operator_rules),
which tests/helm/test_one_source.py compares these with.
*/}}
{{- define "clipper.namespacedRules" -}}
- apiGroups: [clipper.dev]
  resources: [clipperapps, modeldeployments]
  verbs: [get, list, watch]
- apiGroups: [clipper.dev]
  resources: [clipperapps/status, modeldeployments/status]
  verbs: [get, update]
# Granted on, never used: each frontend's Role patches its own app's status.
- apiGroups: [clipper.dev]
  resources: [clipperapps/status]
  verbs: [patch]
- apiGroups: [clipper.dev]
  resources: [clipperapps/finalizers, modeldeployments/finalizers]
  verbs: [update]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, create, patch, watch, delete]
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, create, patch, watch, delete]
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get, list, create, patch, watch]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, list, create, patch, watch]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, create, patch, watch]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, create, patch, watch, delete]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
- apiGroups: [kopf.dev]
  resources: [kopfpeerings]
  verbs: [get, list, watch, patch]
{{- end -}}

{{- define "clipper.discoveryRules" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get, list, watch]
{{- end -}}
