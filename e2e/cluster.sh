#!/usr/bin/env bash
# A real single-node Kubernetes 1.20 cluster built from Debian packages only.
# Recipe and traps: shared/research/real-node.md. See `cluster.sh help`.
set -euo pipefail

CACHE=${DEPIN_CACHE:-$HOME/.cache/depin-operator}
K8S_VERSION=1.20.2
SRC=$CACHE/k8s-src
BIN=$CACHE/k8s-$K8S_VERSION/bin
log() { echo "[cluster $(date +%T)] $*" >&2; }
die() { log "error: $*"; exit 1; }

PKGS=(dpkg-dev golang-go rsync etcd-server containerd runc containernetworking-plugins iptables
  conntrack socat umoci dnsmasq-base openssl golang-github-modern-go-reflect2-dev
  golang-github-json-iterator-go-dev busybox-static gcc libc6-dev curl ca-certificates iproute2 procps
  jq util-linux)

deps() {
  local missing=()
  for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [[ ${#missing[@]} -eq 0 ]] && return
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # An install interrupted earlier (a killed run) leaves dpkg refusing every install
  # until it is finished; finishing it is idempotent and quick when nothing is pending.
  dpkg --configure -a >/dev/null 2>&1 || true
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Debian's kubernetes source carries its own vendor tree; we need the deb-src entry to fetch it.
fetch_source() {
  [[ -f $SRC/.fetched ]] && return
  # grep -c reads all input: `grep -q` would end the pipe early (SIGPIPE under pipefail).
  if ! apt-cache showsrc kubernetes 2>/dev/null | grep -c "^Version: 1.20" >/dev/null; then
    cat > /etc/apt/sources.list.d/depin-src.sources <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt-get update -qq
  fi
  rm -rf "$SRC"; mkdir -p "$SRC"
  (cd "$SRC" && apt-get source -qq kubernetes >/dev/null 2>&1)
  local tree; tree=$(find "$SRC" -maxdepth 1 -type d -name 'kubernetes-*' | head -1)
  [[ -n $tree ]] || die "apt-get source kubernetes produced no tree in $SRC"
  mv "$tree" "$SRC/tree"
  # The vendored reflect2 (1.0.1) crashes the apiserver under Go >= 1.18; Debian's 1.0.2 and
  # the matching json-iterator 1.1.12 do not.
  local gc=/usr/share/gocode/src/github.com
  rsync -a --delete "$gc/modern-go/reflect2/" "$SRC/tree/vendor/github.com/modern-go/reflect2/"
  rsync -a --delete "$gc/json-iterator/go/" "$SRC/tree/vendor/github.com/json-iterator/go/"
  touch "$SRC/.fetched"
}

BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
build() {
  local b ok=1
  for b in "${BINARIES[@]}"; do [[ -x $BIN/$b ]] || ok=0; done
  [[ $ok == 1 && -f $BIN/pause.c ]] && return
  deps; fetch_source
  log "building Kubernetes $K8S_VERSION (cold: ~10 min on 2 cores)"
  local t0=$SECONDS
  ( cd "$SRC/tree"
    export GOPATH=$PWD/.go CGO_ENABLED=0 HOME=${HOME:-/root}
    mkdir -p .go/src/k8s.io
    [[ -L .go/src/k8s.io/kubernetes ]] || ln -s ../../.. .go/src/k8s.io/kubernetes
    make WHAT="$(printf 'cmd/%s ' "${BINARIES[@]}")" > "$SRC/build.log" 2>&1 \
      || { tail -30 "$SRC/build.log" >&2; exit 1; }
    mkdir -p "$BIN"
    for b in "${BINARIES[@]}"; do cp "_output/local/bin/linux/amd64/$b" "$BIN/"; done
    cp build/pause/linux/pause.c "$BIN/pause.c" )
  log "built in $((SECONDS - t0)) s"
}


# ---------------------------------------------------------------------------------------------
# The cluster. Everything it creates lives under $RUN except what the components hard-code
# (HOST_DIRS below), iptables rules (KUBE-*, CNI-*, one "depin-harness" rule), cgroups (kubepods),
# the cni0 bridge and a few sysctls; `down` undoes all of those.
RUN=$CACHE/cluster
PKI=$RUN/pki
LOGS=$RUN/logs
PIDS=$RUN/pids
KCFG=$RUN/kubeconfig
IMG=$CACHE/images
SOCK=$RUN/containerd/containerd.sock
ETCD_PORT=12379 ETCD_PEER_PORT=12380 API_PORT=16443
SVC_CIDR=10.96.0.0/16 SVC_IP=10.96.0.1 CLUSTER_CIDR=10.244.0.0/16 POD_CIDR=10.244.0.0/24
PAUSE_IMAGE=localhost/pause:3.4.1
BUSYBOX_IMAGE=localhost/busybox:1.35
NODE_NAME=$(hostname | tr '[:upper:]' '[:lower:]')   # the kubelet's default node name
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Order matters: `up` starts them in this order, `status` lists them in it.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler dnsmasq dns-sync
  pv-provisioner containerd kubelet kube-proxy)
# A token of each component's command line, to tell our process from a recycled PID.
declare -A MATCH=([etcd]=etcd [kube-apiserver]=kube-apiserver
  [kube-controller-manager]=kube-controller-manager [kube-scheduler]=kube-scheduler
  [dnsmasq]=dnsmasq [dns-sync]=_dns-sync [pv-provisioner]=_pv-provisioner
  [containerd]=containerd [kubelet]=kubelet [kube-proxy]=kube-proxy)
# sysctls the kubelet and kube-proxy change; recorded at the first `up`, restored by `down`.
SYSCTLS=(net.ipv4.ip_forward net.ipv4.conf.all.route_localnet net.bridge.bridge-nf-call-iptables
  net.bridge.bridge-nf-call-ip6tables vm.overcommit_memory vm.panic_on_oom kernel.panic
  kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
# Hard-coded host paths the node components create (kubelet: logs, device-plugins socket; CNI:
# result cache; containerd: shim sockets; mount(8): utab). `down` removes those that were absent.
HOST_DIRS=(/var/log/pods /var/log/containers /var/lib/kubelet /var/lib/cni /run/containerd /run/mount
  /usr/libexec/kubernetes)

kc() { "$BIN/kubectl" --kubeconfig "$KCFG" "$@"; }
ctrk() { ctr --address "$SOCK" -n k8s.io "$@"; }
# api METHOD PATH [curl args]: the API with the admin token, verifying the server with our CA.
api() {
  local m=$1 p=$2; shift 2
  curl -sS --fail --max-time 20 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $(<"$PKI/admin.token")" \
    -X "$m" "https://127.0.0.1:$API_PORT$p" "$@"
}

node_ip() {
  if [[ -n ${DEPIN_NODE_IP:-} ]]; then echo "$DEPIN_NODE_IP"; return; fi
  # `ip route get` only consults the routing table; nothing is sent.
  local ip; ip=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -1)
  [[ -n $ip ]] || ip=$(ip -4 -o addr show scope global | awk '$2 != "cni0" {sub("/.*", "", $4); print $4; exit}')
  [[ -n $ip ]] || die "cannot find the node address (set DEPIN_NODE_IP)"
  echo "$ip"
}

# --- process bookkeeping -----------------------------------------------------------------------
running() {   # PID is alive and not a zombie
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [[ -n $st && $st != Z ]]
}
pid_of() { [[ -f $PIDS/$1.pid ]] && cat "$PIDS/$1.pid"; }
alive() {
  local pid; pid=$(pid_of "$1" 2>/dev/null) || return 1
  [[ -n $pid ]] && running "$pid" && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "${MATCH[$1]}"
}
# spawn NAME CMD...: a daemon in its own session (survives the calling shell), log and pid file.
spawn() {
  local name=$1; shift
  log "starting $name"
  setsid "$@" > "$LOGS/$name.log" 2>&1 < /dev/null 9>&- &
  echo $! > "$PIDS/$name.pid"
}
fail() {   # fail COMPONENT MESSAGE: print the component's log tail and stop
  local c=$1; shift
  log "error: $*"
  if [[ -f $LOGS/$c.log ]]; then
    echo "----- last 40 lines of $LOGS/$c.log -----" >&2
    tail -n 40 "$LOGS/$c.log" >&2
    echo "-----" >&2
  fi
  exit 1
}
# wait_for COMPONENT SECONDS DESCRIPTION CMD...: poll CMD; fail early if the component died.
wait_for() {
  local c=$1 t=$2 what=$3; shift 3
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    [[ -z $c ]] || alive "$c" || fail "$c" "$c exited while waiting for $what"
    ((SECONDS < end)) || fail "$c" "timed out after ${t}s waiting for $what"
    sleep 0.3
  done
}
# stop NAME...: TERM (the whole session for the loops), wait up to 15 s, then KILL.
stop() {
  local n pid pids=()
  for n in "$@"; do
    if alive "$n"; then
      pid=$(pid_of "$n"); pids+=("$pid")
      case $n in dns-sync|pv-provisioner) kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" ;;
        *) kill -TERM "$pid" 2>/dev/null || true ;; esac
    fi
  done
  local end=$((SECONDS + 15))
  for pid in "${pids[@]}"; do
    while running "$pid" && ((SECONDS < end)); do sleep 0.1; done
    running "$pid" && { log "killing $pid"; kill -KILL "$pid" 2>/dev/null || true; }
  done
  for n in "$@"; do rm -f "$PIDS/$n.pid"; done
}

# --- one-time material: host state, PKI, kubeconfig, configs, images ---------------------------
record_host_state() {
  [[ -f $RUN/host-state ]] && return
  { for s in "${SYSCTLS[@]}"; do v=$(sysctl -n "$s" 2>/dev/null) && printf 'sysctl %s %s\n' "$s" "${v//$'\t'/ }"; done
    for d in "${HOST_DIRS[@]}"; do [[ -e $d ]] && printf 'existed %s\n' "$d"; done
  } > "$RUN/host-state.tmp"
  mv "$RUN/host-state.tmp" "$RUN/host-state"
}

gen_pki() {
  [[ -f $PKI/.done ]] && return
  log "generating CA, serving certificate, service-account keys and admin token"
  rm -rf "$PKI"; mkdir -p "$PKI"; chmod 700 "$PKI"
  local ip=$1
  ( cd "$PKI"
    cat > openssl.cnf <<EOF
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = IP:127.0.0.1,IP:$ip,IP:$SVC_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
EOF
    openssl req -x509 -new -nodes -newkey rsa:2048 -sha256 -days 3650 -keyout ca.key -out ca.crt \
      -subj "/CN=depin-local-ca" -config openssl.cnf -extensions ca 2>/dev/null
    openssl req -new -nodes -newkey rsa:2048 -keyout apiserver.key -out apiserver.csr \
      -subj "/CN=kube-apiserver" -config openssl.cnf 2>/dev/null
    openssl x509 -req -sha256 -days 3650 -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -out apiserver.crt -extfile openssl.cnf -extensions server 2>/dev/null
    openssl req -new -nodes -newkey rsa:2048 -keyout kubelet-client.key -out kubelet-client.csr \
      -subj "/O=system:masters/CN=kube-apiserver-kubelet-client" -config openssl.cnf 2>/dev/null
    openssl x509 -req -sha256 -days 3650 -in kubelet-client.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -out kubelet-client.crt -extfile openssl.cnf -extensions client 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    od -An -N24 -tx1 /dev/urandom | tr -d ' \n' > admin.token
    printf '%s,admin,admin,"system:masters"\n' "$(<admin.token)" > tokens.csv
    echo "$ip" > node-ip
    touch .done ) || die "certificate generation failed"
  chmod 600 "$PKI"/*.key "$PKI/admin.token" "$PKI/tokens.csv"
}

write_kubeconfig() {
  umask 077
  cat > "$KCFG.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: depin-local
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(base64 -w0 < "$PKI/ca.crt")
users:
- name: depin-admin
  user:
    token: $(<"$PKI/admin.token")
contexts:
- name: depin-local
  context:
    cluster: depin-local
    user: depin-admin
    namespace: default
current-context: depin-local
EOF
  mv "$KCFG.tmp" "$KCFG"
  umask 022
}

write_configs() {
  local ip=$1
  mkdir -p "$RUN"/{containerd,cni/net.d,cni/ipam,kubelet/root,kubelet/pki,kubelet/volume-plugins,dns,volumes,etcd}
  chmod 700 "$RUN/etcd"
  cat > "$RUN/containerd/config.toml" <<EOF
version = 2
root = "$RUN/containerd/root"
state = "$RUN/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = "$SOCK"

[plugins."io.containerd.internal.v1.opt"]
  path = "$RUN/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # CAP_SYS_RESOURCE may be missing from the bounding set: without this runc fails with
  # "failed to update /proc/self/oom_score_adj: Permission denied" (the sandbox asks for -998).
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$RUN/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$RUN/cni/net.d"
  # No pulls: images come from "cluster.sh load-image"; any pull goes nowhere instead of off-host.
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
    endpoint = ["http://127.0.0.1:1"]
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."*"]
    endpoint = ["http://127.0.0.1:1"]
EOF
  cat > "$RUN/cni/net.d/10-bridge.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "podnet",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$RUN/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  # Pods with dnsPolicy Default (and hostNetwork pods) get this too: nothing resolves off-host.
  echo "nameserver $ip" > "$RUN/kubelet/resolv.conf"
  cat > "$RUN/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failSwapOn: false
address: $ip
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: $PKI/ca.crt
authorization:
  mode: Webhook
clusterDomain: cluster.local
clusterDNS: [$ip]
resolvConf: $RUN/kubelet/resolv.conf
podCIDR: $POD_CIDR
nodeStatusUpdateFrequency: 4s
serializeImagePulls: false
evictionHard:
  memory.available: "50Mi"
  nodefs.available: "1%"
  nodefs.inodesFree: "1%"
  imagefs.available: "1%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
EOF
}

# umoci_image LAYOUT TAG ROOTFS_FILLER CONFIG_ARGS...: build one OCI image tar ($LAYOUT.tar).
umoci_image() {
  local layout=$1 tag=$2 filler=$3; shift 3
  rm -rf "$layout" "$layout.bundle"
  umoci init --layout "$layout" >/dev/null
  umoci new --image "$layout:$tag" >/dev/null
  umoci unpack --image "$layout:$tag" "$layout.bundle" >/dev/null
  "$filler" "$layout.bundle/rootfs"
  umoci repack --image "$layout:$tag" "$layout.bundle" >/dev/null
  umoci config --image "$layout:$tag" --os linux --architecture amd64 "$@" >/dev/null
  umoci gc --layout "$layout" >/dev/null
  tar -C "$layout" -cf "$layout.tar.tmp" . && mv "$layout.tar.tmp" "$layout.tar"
  rm -rf "$layout" "$layout.bundle"
}
fill_pause() { install -m755 "$IMG/pause.bin" "$1/pause"; }
fill_busybox() {
  local r=$1 a
  mkdir -p "$r"/{bin,etc,root} "$r/tmp"
  install -m755 /bin/busybox "$r/bin/busybox"
  for a in $(/bin/busybox --list); do [[ $a == busybox ]] || ln -sf busybox "$r/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\ndepin:x:65532:65532:depin:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$r/etc/passwd"
  printf 'root:x:0:\ndepin:x:65532:\nnobody:x:65534:\n' > "$r/etc/group"
  chmod 1777 "$r/tmp"
}
# The pause and busybox images are cached outside the runtime dir (they only depend on the host).
build_base_images() {
  mkdir -p "$IMG"
  if [[ ! -f $IMG/pause.tar ]]; then
    gcc -Os -Wall -Werror -static -DVERSION=v3.4.1-depin -o "$IMG/pause.bin" "$BIN/pause.c" && strip "$IMG/pause.bin" \
      || die "compiling pause.c failed"
    umoci_image "$IMG/pause" 3.4.1 fill_pause --config.entrypoint /pause
  fi
  if [[ ! -f $IMG/busybox.tar ]]; then
    umoci_image "$IMG/busybox" 1.35 fill_busybox --config.cmd /bin/sh --config.env PATH=/bin
  fi
}
import_base_images() {
  local have; have=$(ctrk images ls -q 2>/dev/null)
  grep -qxF "$PAUSE_IMAGE" <<<"$have" || ctrk images import --base-name localhost/pause "$IMG/pause.tar" >/dev/null \
    || fail containerd "importing the pause image failed"
  grep -qxF "$BUSYBOX_IMAGE" <<<"$have" || ctrk images import --base-name localhost/busybox "$IMG/busybox.tar" >/dev/null \
    || fail containerd "importing the busybox image failed"
}

# --- background loops (run as `cluster.sh _dns-sync RUN` / `_pv-provisioner RUN`) ---------------
# Cluster DNS without CoreDNS: dnsmasq serves FILE; this keeps FILE equal to the Services.
DNS_JQ='
  (($ep[0].items // []) | map({key: (.metadata.namespace + "/" + .metadata.name), value: .}) | from_entries) as $eps
  | .items[] | .metadata.name as $n | .metadata.namespace as $ns
  | "\($n).\($ns).svc.cluster.local \($n).\($ns).svc" as $names
  | (.spec.clusterIP // "") as $cip
  | if $cip == "None" then
      ($eps[$ns + "/" + $n].subsets // [])[] | (.addresses // [])[]
      | "\(.ip) \($names)",
        (if .hostname then "\(.ip) \(.hostname).\($n).\($ns).svc.cluster.local \(.hostname).\($n).\($ns).svc" else empty end)
    elif $cip != "" then "\($cip) \($names)"
    else empty end'
dns_sync_loop() {
  set +e
  local d=$RUN/dns
  while [[ -d $RUN ]]; do
    if api GET /api/v1/services > "$d/svc.json" 2>/dev/null && api GET /api/v1/endpoints > "$d/ep.json" 2>/dev/null \
      && jq -r --slurpfile ep "$d/ep.json" "$DNS_JQ" "$d/svc.json" 2>"$d/jq.err" | sort -u > "$d/hosts.new" \
      && ! cmp -s "$d/hosts.new" "$d/hosts"; then
      mv "$d/hosts.new" "$d/hosts"
      alive dnsmasq && kill -HUP "$(pid_of dnsmasq)"
      echo "[dns-sync $(date +%T)] $(wc -l < "$d/hosts") names"
    fi
    sleep 1
  done
}

# PVC provisioner for StorageClass "standard": hostPath PVs under $RUN/volumes.
PVC_JQ='
  ([$pv[0].items[] | .spec.claimRef.uid // empty]) as $claimed
  | .items[] | select(.status.phase == "Pending" and (.spec.volumeName // "") == "")
  | select((.spec.storageClassName // "standard") == "standard")
  | select((.spec.volumeMode // "Filesystem") == "Filesystem")
  | select(.metadata.uid as $u | $claimed | index($u) | not)
  | {apiVersion: "v1", kind: "PersistentVolume",
     metadata: {name: ("pvc-" + .metadata.uid),
       labels: {"depin.dev/hostpath": "true"},
       annotations: {"pv.kubernetes.io/provisioned-by": "depin.dev/hostpath"}},
     spec: {capacity: {storage: (.spec.resources.requests.storage // "1Gi")},
       accessModes: (.spec.accessModes // ["ReadWriteOnce"]), volumeMode: "Filesystem",
       persistentVolumeReclaimPolicy: "Delete", storageClassName: "standard",
       claimRef: {apiVersion: "v1", kind: "PersistentVolumeClaim", namespace: .metadata.namespace,
         name: .metadata.name, uid: .metadata.uid},
       hostPath: {path: ($root + "/pvc-" + .metadata.uid), type: "Directory"}}}'
PV_GONE_JQ='
  .items[] | select(.metadata.annotations["pv.kubernetes.io/provisioned-by"] == "depin.dev/hostpath")
  | select(.status.phase == "Released" or .status.phase == "Failed")
  | "\(.metadata.name) \(.spec.hostPath.path)"'
pv_loop() {
  set +e
  local d=$RUN/volumes/.state pv dir name path
  mkdir -p "$d"
  while [[ -d $RUN ]]; do
    if api GET /api/v1/persistentvolumeclaims > "$d/pvc.json" 2>/dev/null && api GET /api/v1/persistentvolumes > "$d/pv.json" 2>/dev/null; then
      while IFS= read -r pv; do
        [[ -n $pv ]] || continue
        dir=$(jq -r .spec.hostPath.path <<<"$pv"); name=$(jq -r .metadata.name <<<"$pv")
        mkdir -p "$dir" && chmod 0777 "$dir"
        if api POST /api/v1/persistentvolumes -H 'Content-Type: application/json' -d "$pv" >/dev/null; then
          echo "[pv $(date +%T)] created $name for $(jq -r '.spec.claimRef.namespace + "/" + .spec.claimRef.name' <<<"$pv")"
        fi
      done < <(jq -c --slurpfile pv "$d/pv.json" --arg root "$RUN/volumes" "$PVC_JQ" "$d/pvc.json")
      while read -r name path; do
        [[ -n $name ]] || continue
        if api DELETE "/api/v1/persistentvolumes/$name" >/dev/null; then
          [[ $path == "$RUN/volumes/pvc-"* ]] && rm -rf -- "$path"
          echo "[pv $(date +%T)] deleted released $name"
        fi
      done < <(jq -r "$PV_GONE_JQ" "$d/pv.json")
    fi
    sleep 1
  done
}

# --- subcommands -------------------------------------------------------------------------------
node_ready() {
  [[ $(kc get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}
# Ready as reported by the kubelet after SINCE (RFC 3339): after a restart the stored status is stale.
node_ready_since() {
  local s; s=$(kc get node "$NODE_NAME" \
    -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}' 2>/dev/null)
  [[ ${s%% *} == True && ! ${s#* } < $1 ]]
}
all_alive() { local c; for c in "${COMPONENTS[@]}"; do alive "$c" || return 1; done; }
sa_token_ready() { kc -n default get sa default -o 'jsonpath={.secrets[0].name}' 2>/dev/null | grep -q .; }
api_ready() { [[ $(api GET /readyz 2>/dev/null) == ok ]]; }
dns_ready() { grep -q " kubernetes.default.svc.cluster.local " "$RUN/dns/hosts" 2>/dev/null; }

STORAGECLASS='apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: depin.dev/hostpath
reclaimPolicy: Delete
volumeBindingMode: Immediate'

up() {
  local t0=$SECONDS build_state=cached b ip
  for b in "${BINARIES[@]}"; do [[ -x $BIN/$b ]] || build_state=cold; done
  deps
  build
  ip=$(node_ip)
  if all_alive && node_ready; then
    log "already up (nothing to do); node $NODE_NAME at $ip"
    echo "$KCFG"
    return 0
  fi
  if [[ -f $PKI/node-ip && $(<"$PKI/node-ip") != "$ip" ]]; then
    die "the node address changed ($(<"$PKI/node-ip") -> $ip); run '$0 down' first"
  fi
  mkdir -p "$RUN" "$LOGS" "$PIDS"
  record_host_state
  gen_pki "$ip"
  write_kubeconfig
  write_configs "$ip"
  build_base_images
  # The loops run from a copy, not the checkout (rename: a running loop keeps its old file).
  cp "${BASH_SOURCE[0]}" "$RUN/cluster.sh.tmp" && mv "$RUN/cluster.sh.tmp" "$RUN/cluster.sh"
  sysctl -qw net.ipv4.ip_forward=1
  sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true

  alive etcd || spawn etcd etcd --name depin --data-dir "$RUN/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "depin=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-token depin-local
  wait_for etcd 30 "etcd health" curl -sf "http://127.0.0.1:$ETCD_PORT/health"

  alive kube-apiserver || spawn kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=0.0.0.0 --secure-port="$API_PORT" --insecure-port=0 --advertise-address="$ip" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" --token-auth-file="$PKI/tokens.csv" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --service-cluster-ip-range="$SVC_CIDR" --allow-privileged=true \
    --kubelet-client-certificate="$PKI/kubelet-client.crt" --kubelet-client-key="$PKI/kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP,Hostname --profiling=false --v=1
  wait_for kube-apiserver 90 "kube-apiserver /readyz" api_ready

  alive kube-controller-manager || spawn kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig="$KCFG" --leader-elect=false --port=0 --secure-port=0 \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --use-service-account-credentials=true \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --allocate-node-cidrs=true --cluster-cidr="$CLUSTER_CIDR" --node-cidr-mask-size=24 \
    --service-cluster-ip-range="$SVC_CIDR" --flex-volume-plugin-dir="$RUN/kubelet/volume-plugins" \
    --profiling=false --v=1
  alive kube-scheduler || spawn kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$KCFG" \
    --leader-elect=false --bind-address=127.0.0.1 --port=0 --secure-port=0 --profiling=false --v=1

  # Cluster DNS: dnsmasq on the node address, authoritative for cluster.local, no upstream at all
  # (--local=/#/ answers NXDOMAIN for every name not in FILE, so foreign names fail fast).
  touch "$RUN/dns/hosts"
  alive dnsmasq || spawn dnsmasq dnsmasq --keep-in-foreground --conf-file=/dev/null --user=root \
    --listen-address="$ip" --bind-interfaces --port=53 --no-resolv --no-hosts --no-poll \
    --addn-hosts="$RUN/dns/hosts" --local=/cluster.local/ --local=/#/ --domain-needed \
    --log-facility=- --pid-file="$RUN/dns/dnsmasq.pid"
  alive dns-sync || spawn dns-sync bash "$RUN/cluster.sh" _dns-sync "$RUN"
  alive pv-provisioner || spawn pv-provisioner bash "$RUN/cluster.sh" _pv-provisioner "$RUN"

  alive containerd || spawn containerd containerd --config "$RUN/containerd/config.toml"
  wait_for containerd 30 "the containerd socket" ctr --address "$SOCK" version
  import_base_images

  local kubelet_since; kubelet_since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  alive kubelet || spawn kubelet "$BIN/kubelet" --config="$RUN/kubelet/config.yaml" --kubeconfig="$KCFG" \
    --container-runtime=remote --container-runtime-endpoint="unix://$SOCK" \
    --image-service-endpoint="unix://$SOCK" --pod-infra-container-image="$PAUSE_IMAGE" \
    --root-dir="$RUN/kubelet/root" --cert-dir="$RUN/kubelet/pki" --node-ip="$ip" \
    --volume-plugin-dir="$RUN/kubelet/volume-plugins" --v=1
  alive kube-proxy || spawn kube-proxy "$BIN/kube-proxy" --kubeconfig="$KCFG" \
    --hostname-override="$NODE_NAME" --proxy-mode=iptables --cluster-cidr="$CLUSTER_CIDR" \
    --conntrack-max-per-core=0 --conntrack-tcp-timeout-established=0 --conntrack-tcp-timeout-close-wait=0 \
    --metrics-bind-address=127.0.0.1:10249 --healthz-bind-address=127.0.0.1:10256
  # Pods may talk to each other, to Services and to the node, never off the host.
  iptables -C FORWARD -i cni0 ! -o cni0 -m comment --comment depin-harness -j REJECT 2>/dev/null \
    || iptables -I FORWARD 1 -i cni0 ! -o cni0 -m comment --comment depin-harness -j REJECT

  kc apply -f - <<<"$STORAGECLASS" >/dev/null || fail kube-apiserver "creating StorageClass standard failed"
  wait_for kubelet 120 "node $NODE_NAME Ready" node_ready_since "$kubelet_since"
  gpu 1 >/dev/null
  wait_for kube-controller-manager 60 "the default service-account token" sa_token_ready
  wait_for dns-sync 30 "the DNS hosts file" dns_ready
  for b in "${COMPONENTS[@]}"; do alive "$b" || fail "$b" "$b is not running"; done
  log "cluster up in $((SECONDS - t0)) s (k8s build: $build_state); node $NODE_NAME $ip, API https://127.0.0.1:$API_PORT"
  log "kubeconfig: $KCFG   (e.g. $0 kubectl get pods -A)"
  echo "$KCFG"
}

gpu() {
  local n=${1:-1}
  [[ $n =~ ^[0-9]+$ ]] || die "usage: $0 gpu [N]"
  api PATCH "/api/v1/nodes/$NODE_NAME/status" -H 'Content-Type: application/merge-patch+json' \
    -d "{\"status\":{\"capacity\":{\"nvidia.com/gpu\":\"$n\"},\"allocatable\":{\"nvidia.com/gpu\":\"$n\"}}}" >/dev/null \
    || die "patching node $NODE_NAME status failed"
  kc label node "$NODE_NAME" nvidia.com/gpu.present=true --overwrite >/dev/null || die "labelling node failed"
  log "node $NODE_NAME advertises nvidia.com/gpu: $n"
}

down() {
  local t0=$SECONDS
  stop dns-sync pv-provisioner kubelet kube-proxy kube-scheduler kube-controller-manager
  # Pods: kill every process in the kubepods cgroups, then the shims, then containerd.
  local pids p
  pids=$(cat /sys/fs/cgroup/*/kubepods/cgroup.procs /sys/fs/cgroup/*/kubepods/*/cgroup.procs \
    /sys/fs/cgroup/*/kubepods/*/*/cgroup.procs /sys/fs/cgroup/*/kubepods/*/*/*/cgroup.procs 2>/dev/null | sort -un || true)
  for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
  stop containerd
  for p in $(pgrep -f -- "containerd-shim-runc-v2 .*-address $SOCK" || true); do kill -KILL "$p" 2>/dev/null || true; done
  stop kube-apiserver etcd dnsmasq
  local end=$((SECONDS + 10))
  while pgrep -f -- "$RUN" >/dev/null && ((SECONDS < end)); do sleep 0.2; done
  # Anything still alive now (a kubelet slow to exit) would re-create its iptables chains
  # after the cleanup below: make sure it is gone first.
  if pgrep -f -- "$RUN" >/dev/null; then
    log "killing components that did not stop in 10 s: $(pgrep -f -- "$RUN" | tr '\n' ' ')"
    pkill -KILL -f -- "$RUN" || true
    end=$((SECONDS + 5))
    while pgrep -f -- "$RUN" >/dev/null && ((SECONDS < end)); do sleep 0.2; done
  fi
  [[ -x $BIN/kube-proxy ]] && "$BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
  local t attempt
  # Checked again after a pause: a component that was still winding down can re-create its
  # canary chains once; seen once after a long test run.
  # The rules are read into a variable first: `save | grep -q` under pipefail fails with
  # SIGPIPE once the output is larger than a pipe buffer, which skipped the cleanup.
  local rules
  for attempt in 1 2 3; do
    for t in iptables ip6tables; do
      rules=$($t-save 2>/dev/null || true)
      if grep -qE 'KUBE-|CNI-|depin-harness' <<<"$rules"; then
        grep -vE 'KUBE-|CNI-|depin-harness' <<<"$rules" | $t-restore || log "warning: $t cleanup failed"
      fi
    done
    sleep 1
    rules=$({ iptables-save; ip6tables-save; } 2>/dev/null || true)
    grep -qE 'KUBE-|CNI-|depin-harness' <<<"$rules" || break
    log "iptables rules re-appeared (attempt $attempt); processes: $(pgrep -af -- "$BIN/" | cut -c1-80 | tr '\n' ';')"
  done
  local m
  for m in $(awk -v r="$RUN/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  ip link del cni0 2>/dev/null || true
  for t in 1 2 3 4 5; do
    find /sys/fs/cgroup/*/kubepods -depth -type d -exec rmdir {} \; 2>/dev/null || true
    compgen -G '/sys/fs/cgroup/*/kubepods' >/dev/null || break
    sleep 0.5
  done
  if [[ -f $RUN/host-state ]]; then
    local kind k v
    while read -r kind k v; do
      case $kind in sysctl) sysctl -qw "$k=$v" 2>/dev/null || true ;; esac
    done < "$RUN/host-state"
    for k in "${HOST_DIRS[@]}"; do
      grep -qxF "existed $k" "$RUN/host-state" || rm -rf -- "$k"
    done
  fi
  if awk -v r="$RUN/" 'index($2, r) == 1 {found=1} END {exit !found}' /proc/mounts; then
    die "mounts under $RUN remain; not deleting it"
  fi
  rm -rf -- "$RUN"
  log "down in $((SECONDS - t0)) s"
}

status() {
  local c ok=0 ip
  for c in "${COMPONENTS[@]}"; do
    if alive "$c"; then printf '  %-24s running (pid %s)\n' "$c" "$(pid_of "$c")"
    else printf '  %-24s NOT running\n' "$c"; ok=1; fi
  done
  if [[ -f $KCFG ]] && node_ready; then echo "  node $NODE_NAME: Ready"
  else echo "  node $NODE_NAME: NOT Ready"; ok=1; fi
  ip=$(node_ip 2>/dev/null || echo '?')
  echo "  node address $ip, API https://127.0.0.1:$API_PORT (and https://$ip:$API_PORT), DNS $ip:53"
  echo "  kubeconfig: $KCFG"
  return $ok
}

# load-image NAME:TAG BINARY...: an OCI image with the binaries in /usr/local/bin and the shared
# libraries they need, imported into containerd as localhost/NAME:TAG (no registry).
LOAD_BINS=()
fill_app() {
  local r=$1 b lib
  mkdir -p "$r/usr/local/bin" "$r/etc/ssl/certs" "$r/tmp"
  chmod 1777 "$r/tmp"
  for b in "${LOAD_BINS[@]}"; do
    install -m755 "$b" "$r/usr/local/bin/$(basename "$b")"
    if ldd "$b" >/dev/null 2>&1; then
      for lib in $(ldd "$b" | grep -o '/[^ ]*'); do
        [[ -e $r$lib ]] && continue
        mkdir -p "$r$(dirname "$lib")"
        cp -L "$lib" "$r$lib"
      done
    fi
  done
  printf 'root:x:0:0:root:/root:/sbin/nologin\ndepin:x:65532:65532:depin:/tmp:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n' > "$r/etc/passwd"
  printf 'root:x:0:\ndepin:x:65532:\nnobody:x:65534:\n' > "$r/etc/group"
  [[ -f /etc/ssl/certs/ca-certificates.crt ]] && cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/"
}
load_image() {
  [[ $# -ge 2 && $1 == *:* ]] || die "usage: $0 load-image NAME:TAG BINARY [BINARY...]"
  local ref=$1 name=${1%:*} tag=${1##*:} b; shift
  for b in "$@"; do [[ -f $b && -x $b ]] || die "not an executable file: $b"; done
  alive containerd || die "containerd is not running (run '$0 up' first)"
  LOAD_BINS=("$@")
  local t0=$SECONDS work
  work=$(mktemp -d "$RUN/img.XXXXXX")
  umoci_image "$work/oci" "$tag" fill_app --config.entrypoint "/usr/local/bin/$(basename "$1")" \
    --config.user 65532:65532 --config.workingdir / \
    --config.env PATH=/usr/local/bin:/usr/bin:/bin --config.env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
  ctrk images import --base-name "localhost/$name" "$work/oci.tar" >/dev/null || { rm -rf "$work"; die "import failed"; }
  rm -rf "$work"
  log "loaded localhost/$ref ($((SECONDS - t0)) s)"
}

usage() {
  cat <<EOF
usage: $0 COMMAND
  deps                         install the Debian packages the harness needs
  build                        build Kubernetes $K8S_VERSION from Debian's source (cached in $BIN)
  up                           start the single-node cluster (idempotent; recovers after a crash)
  down                         stop everything and restore the machine (the build cache stays)
  status                       components, node readiness, kubeconfig (exit 0 only if all is up)
  kubeconfig                   print the admin kubeconfig path
  kubectl ARGS...              run kubectl $K8S_VERSION against the cluster
  kubectl-path                 print the path of that kubectl binary
  load-image NAME:TAG BIN...   package binaries as image localhost/NAME:TAG and import it
  gpu [N]                      advertise nvidia.com/gpu: N (default 1) on the node
  test [after-down]            run e2e/harness-test.sh
env: DEPIN_CACHE (default ~/.cache/depin-operator), DEPIN_NODE_IP (default: the source address of the default route)
EOF
}

if [[ ${1:-} == _dns-sync || ${1:-} == _pv-provisioner ]]; then
  RUN=$2 PKI=$2/pki PIDS=$2/pids
fi
case "${1:-help}" in
  deps) deps ;;
  build) build ;;
  up|down)
    mkdir -p "$CACHE"
    exec 9> "$CACHE/.cluster.lock"
    flock -w 900 9 || die "another up/down is running"
    "$1" ;;
  status) status ;;
  kubeconfig) [[ -f $KCFG ]] || die "no cluster (run '$0 up')"; echo "$KCFG" ;;
  kubectl) shift; exec "$BIN/kubectl" --kubeconfig "$KCFG" "$@" ;;
  kubectl-path) [[ -x $BIN/kubectl ]] || die "kubectl not built (run '$0 build')"; echo "$BIN/kubectl" ;;
  load-image) shift; load_image "$@" ;;
  gpu) shift; gpu "$@" ;;
  test) shift; exec bash "$HERE/harness-test.sh" "$@" ;;
  _dns-sync) dns_sync_loop ;;
  _pv-provisioner) pv_loop ;;
  help|-h|--help) usage ;;
  *) usage >&2; exit 2 ;;
esac
