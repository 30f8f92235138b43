#!/usr/bin/env bash
# Tests of the local cluster harness (e2e/cluster.sh).
#   harness-test.sh             on the running cluster (`cluster.sh up` first), in a fresh namespace
#   harness-test.sh after-down  after `cluster.sh down`: nothing of the harness is left behind
# Prints PASS/FAIL per check and ends with "N passed, M failed"; exit 0 only if nothing failed.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
CLUSTER=$HERE/cluster.sh
CACHE=${DEPIN_CACHE:-$HOME/.cache/depin-operator}
RUN=$CACHE/cluster
BIN=$CACHE/k8s-1.20.2/bin
KCFG=$RUN/kubeconfig
IMAGE=localhost/busybox:1.35
PROBE_IMAGE=localhost/incluster-probe:dev
NODE_NAME=$(hostname | tr '[:upper:]' '[:lower:]')

passed=0 failed=0
k() { "$BIN/kubectl" --kubeconfig "$KCFG" "$@"; }
check() {   # check DESCRIPTION CMD...: run CMD, count and print PASS/FAIL
  local desc=$1; shift
  if "$@"; then echo "PASS: $desc"; passed=$((passed + 1))
  else echo "FAIL: $desc"; failed=$((failed + 1)); fi
}
note() { echo "  $*" >&2; }
retry() {   # retry SECONDS CMD...: until CMD succeeds
  local end=$((SECONDS + $1)); shift
  until "$@"; do ((SECONDS < end)) || return 1; sleep 1; done
}
summary() {
  echo "$passed passed, $failed failed"
  [[ $failed -eq 0 ]]
}

# --- after-down ----------------------------------------------------------------------------------
no_processes() {
  local left
  # Every harness process (daemons, shims, the DNS/PV loops) has the runtime dir or the k8s bin dir
  # on its command line.
  left=$(pgrep -af -- "$RUN" ; pgrep -af -- "$BIN/")
  [[ -z $left ]] || { note "left running:"; note "$left"; return 1; }
  local n other
  for n in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy containerd \
    containerd-shim-runc-v2 dnsmasq; do
    other=$(pgrep -af -- "^(\S*/)?$n( |\$)" | grep -v '<defunct>' || true)
    [[ -z $other ]] || note "note: an unrelated $n is running: $other"
  done
  return 0
}
no_mounts() {
  local m; m=$(awk -v r="$RUN" 'index($2, r) == 1' /proc/mounts)
  [[ -z $m ]] || { note "$m"; return 1; }
}
no_bridge() { ! ip link show cni0 >/dev/null 2>&1; }
no_rules() {
  local r; r=$( (iptables-save; ip6tables-save) 2>/dev/null | grep -E 'KUBE-|CNI-|depin-harness')
  [[ -z $r ]] || { note "$(head -5 <<<"$r")"; return 1; }
}
no_cgroups() { ! compgen -G '/sys/fs/cgroup/*/kubepods' >/dev/null; }
no_runtime_dir() { [[ ! -e $RUN ]]; }

after_down() {
  check "no harness processes remain (etcd, kube-*, containerd, shims, dnsmasq, loops)" no_processes
  check "no mounts under $RUN remain" no_mounts
  check "no cni0 bridge remains" no_bridge
  check "no KUBE-*/CNI-*/depin-harness iptables rules remain" no_rules
  check "no kubepods cgroups remain" no_cgroups
  check "the runtime dir $RUN is gone" no_runtime_dir
  summary
}

# --- on the running cluster ------------------------------------------------------------------------
NS=harness-$(date +%s)
CR=$NS-list-namespaces

cleanup() {
  k delete clusterrolebinding "$CR" --ignore-not-found >/dev/null 2>&1
  k delete clusterrole "$CR" --ignore-not-found >/dev/null 2>&1
  # Pods first: the namespace controller backs off (5 s, 10 s, ...) while pods are terminating.
  k -n "$NS" delete deploy,sts,pods --all --grace-period=1 --wait=true --timeout=60s >/dev/null 2>&1
  k delete namespace "$NS" --ignore-not-found --wait=true --timeout=90s >/dev/null 2>&1 \
    || note "warning: namespace $NS not gone after 90 s"
}

node_ready() {
  [[ $(k get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}') == True ]]
}

# A service account is usable by pods (1.20: admission wants its token secret) once it has a secret.
sa_ready() { [[ -n $(k -n "$NS" get sa "$1" -o 'jsonpath={.secrets[0].name}' 2>/dev/null) ]]; }

apply_workloads() {
  k create namespace "$NS" >/dev/null && retry 60 sa_ready default || return 1
  k apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: $NS}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: $IMAGE
        imagePullPolicy: Never
        command: ["sh", "-c", "mkdir -p /www && echo hello-from-\$(hostname) > /www/index.html && exec httpd -f -v -p 8080 -h /www"]
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 2}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: $NS}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: $NS}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: client
    image: $IMAGE
    imagePullPolicy: Never
    command: ["sh", "-c", "echo harness-log-marker; exec sleep 3600"]
---
apiVersion: v1
kind: Service
metadata: {name: data, namespace: $NS}
spec:
  clusterIP: None
  selector: {app: data}
  ports: [{port: 8080}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: data, namespace: $NS}
spec:
  serviceName: data
  replicas: 1
  selector: {matchLabels: {app: data}}
  template:
    metadata: {labels: {app: data}}
    spec:
      terminationGracePeriodSeconds: 1
      securityContext: {runAsUser: 65532, runAsGroup: 65532, runAsNonRoot: true}
      containers:
      - name: data
        image: $IMAGE
        imagePullPolicy: Never
        command: ["sh", "-c", "echo written-by-\$(id -u) > /data/hello && exec sleep 3600"]
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 64Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: gpu, namespace: $NS}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: gpu
    image: $IMAGE
    imagePullPolicy: Never
    command: ["sleep", "3600"]
    resources:
      requests: {nvidia.com/gpu: 1}
      limits: {nvidia.com/gpu: 1}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: probe, namespace: $NS}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: $CR}
rules:
- apiGroups: [""]
  resources: [namespaces]
  verbs: [list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: $CR}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: $CR}
subjects:
- {kind: ServiceAccount, name: probe, namespace: $NS}
EOF
}

apply_probe() {
  retry 60 sa_ready probe || return 1
  k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: probe, namespace: $NS}
spec:
  serviceAccountName: probe
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: probe
    image: $PROBE_IMAGE
    imagePullPolicy: Never
    securityContext:
      readOnlyRootFilesystem: true
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL]}
EOF
}

deployment_running() {
  k -n "$NS" rollout status deploy/web --timeout=120s >/dev/null || return 1
  [[ $(k -n "$NS" get pods -l app=web -o 'jsonpath={.items[*].status.phase}') == "Running Running" ]]
}
client_ready() { k -n "$NS" wait --for=condition=Ready pod/client --timeout=120s >/dev/null; }
kexec() { timeout 30 "$BIN/kubectl" --kubeconfig "$KCFG" -n "$NS" exec client -- "$@" 2>&1; }
get_url() { local out; out=$(kexec wget -q -O - "$1") && grep -q hello-from-web <<<"$out"; }
pod_to_pod() {
  local ip; ip=$(k -n "$NS" get pods -l app=web -o 'jsonpath={.items[0].status.podIP}')
  [[ -n $ip ]] && get_url "http://$ip:8080/"
}
svc_fqdn() { retry 20 get_url "http://web.$NS.svc.cluster.local/"; }
svc_short() { retry 20 get_url "http://web/"; }
# fast_fail CMD...: CMD fails, and within 5 s (no hanging on something off the host)
fast_fail() {
  local t0; t0=$(date +%s%N)
  if kexec "$@" >/dev/null; then note "unexpectedly succeeded: $*"; return 1; fi
  local ms=$((($(date +%s%N) - t0) / 1000000))
  note "$* failed after ${ms} ms"
  ((ms < 5000))
}
egress_rule_present() {
  iptables -C FORWARD -i cni0 ! -o cni0 -m comment --comment depin-harness -j REJECT 2>/dev/null
}
sts_dns() {
  local ip; ip=$(k -n "$NS" get pod data-0 -o 'jsonpath={.status.podIP}')
  [[ -n $ip ]] && retry 20 eval 'kexec nslookup data-0.data.$NS.svc.cluster.local | grep -q "$ip"'
}

probe_build_and_load() {
  local target=${CARGO_TARGET_DIR:-$REPO/target}
  (cd "$REPO" && cargo build -q -p depin-e2e --bin incluster-probe) || return 1
  bash "$CLUSTER" load-image incluster-probe:dev "$target/debug/incluster-probe"
}
probe_ok() {
  local phase="" end=$((SECONDS + 120))
  while ((SECONDS < end)); do
    phase=$(k -n "$NS" get pod probe -o 'jsonpath={.status.phase}')
    [[ $phase == Succeeded || $phase == Failed ]] && break
    sleep 1
  done
  local logs; logs=$(k -n "$NS" logs probe 2>&1)
  note "probe ($phase): $(tr '\n' ' ' <<<"$logs")"
  [[ $phase == Succeeded ]] && grep -q '^namespaces: [1-9]' <<<"$logs" && grep -q 'denied (403)' <<<"$logs"
}

sts_volume() {
  retry 120 eval '[[ $(k -n "$NS" get pod data-0 -o "jsonpath={.status.phase}" 2>/dev/null) == Running ]]' || return 1
  local pvc; pvc=$(k -n "$NS" get pvc data-data-0 -o 'jsonpath={.status.phase} {.spec.volumeName}')
  note "pvc data-data-0: $pvc"
  [[ $pvc == "Bound pvc-"* ]] || return 1
  [[ $(k -n "$NS" exec data-0 -- cat /data/hello) == written-by-65532 ]] || return 1
  grep -qx written-by-65532 "$RUN/volumes/${pvc#Bound }/hello"
}
pv_reclaimed() {
  local pv; pv=$(k -n "$NS" get pvc data-data-0 -o 'jsonpath={.spec.volumeName}')
  [[ -n $pv ]] || return 1
  k -n "$NS" delete sts data --wait=true --timeout=60s >/dev/null || return 1
  k -n "$NS" delete pvc data-data-0 --wait=true --timeout=60s >/dev/null || return 1
  retry 30 eval '! k get pv "$pv" >/dev/null 2>&1 && [[ ! -e $RUN/volumes/$pv ]]'
}

logs_work() { k -n "$NS" logs client | grep -qx harness-log-marker; }
exec_works() {
  local out rc
  out=$(k -n "$NS" exec client -- sh -c 'echo exec-ok; exit 3' 2>/dev/null); rc=$?
  [[ $out == exec-ok && $rc == 3 ]]
}
gpu_scheduled() {
  [[ $(k get node "$NODE_NAME" -o 'jsonpath={.status.allocatable.nvidia\.com/gpu}') -ge 1 ]] || return 1
  k -n "$NS" wait --for=condition=Ready pod/gpu --timeout=120s >/dev/null
}

on_cluster() {
  [[ -f $KCFG ]] || { echo "FAIL: no cluster ($KCFG missing; run e2e/cluster.sh up)"; echo "0 passed, 1 failed"; return 1; }
  local t0=$SECONDS
  trap cleanup EXIT
  check "node $NODE_NAME is Ready" node_ready
  check "incluster-probe builds and loads as $PROBE_IMAGE" probe_build_and_load
  apply_workloads || { echo "FAIL: applying the test workloads"; failed=$((failed + 1)); summary; return; }
  apply_probe
  check "Deployment web (busybox) reaches Running" deployment_running
  check "client pod is Ready" client_ready
  check "pod-to-pod: wget to a web pod IP" pod_to_pod
  check "pod-to-Service by DNS: web.$NS.svc.cluster.local" svc_fqdn
  check "pod-to-Service by DNS: short name web" svc_short
  check "an unknown non-cluster name fails fast" fast_fail wget -q -O - http://no-such-host.example.com/
  # Checked by inspecting the rule, never by sending a packet off the host: a test must not
  # generate the very traffic the rule exists to stop.
  check "pod traffic off the host is rejected (FORWARD rule present)" egress_rule_present
  check "in-cluster client lists namespaces, RBAC denies secrets (403)" probe_ok
  check "StatefulSet PVC Bound and its non-root pod writes to it" sts_volume
  check "StatefulSet pod DNS: data-0.data.$NS.svc.cluster.local" sts_dns
  check "kubectl logs" logs_work
  check "kubectl exec (output and exit code)" exec_works
  check "a pod requesting nvidia.com/gpu: 1 schedules and runs" gpu_scheduled
  check "released PV and its directory are deleted" pv_reclaimed
  note "tests took $((SECONDS - t0)) s; deleting namespace $NS"
  cleanup
  trap - EXIT
  summary
}

case "${1:-}" in
  after-down) after_down ;;
  "") on_cluster ;;
  *) echo "usage: $0 [after-down]" >&2; exit 2 ;;
esac
