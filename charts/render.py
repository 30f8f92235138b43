#!/usr/bin/env python3
"""Renders the depin-operator chart with real Helm (helm-python-sdk, Helm v4 SDK) to YAML.

    python3 charts/render.py --namespace depin-system > operator.yaml
    python3 charts/render.py --values my.yaml --set replicas=2 --kube-version 1.20.2 \\
        --image localhost/depin-operator:dev --agent-image localhost/depin-agent:dev \\
        --create-namespace -o operator.yaml
    kubectl apply --server-side --field-manager=depin-e2e -f operator.yaml

Like `helm template`, without a helm binary: -f/--values files merge in order, --set wins
over them, then --kube-version, --image and --agent-image. Output: multi-document YAML in
Helm's install order (Namespace when asked, ServiceAccount, ConfigMaps, RBAC, Service,
Deployment, ..., custom resources last), each document headed by `# Source: <template>`;
NOTES.txt is left out. CRDs are not rendered (they are applied from crds/ with kubectl).

--kube-version sets the chart value kubeVersionOverride: offline rendering reports the
SDK's own Kubernetes version (v1.36), so pass the target cluster's version for clusters
older than 1.21 (the PodDisruptionBudget then uses policy/v1beta1).

Runs under any python3: without helm_python importable it installs the tools
(charts/setup.sh) and re-executes itself in their venv.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHART = HERE / "depin-operator"
VENV = Path(os.environ.get("DEPIN_CHART_VENV", Path.home() / ".cache" / "depin-operator" / "venv"))

try:
    import helm_python as helm
    import yaml
except ImportError:  # re-run inside the tools' venv, installing it on first use
    if __name__ != "__main__" or os.environ.get("DEPIN_RENDER_REEXEC"):
        raise
    subprocess.run(["bash", str(HERE / "setup.sh")], check=True, stdout=sys.stderr)
    os.environ["DEPIN_RENDER_REEXEC"] = "1"
    python = VENV / "bin" / "python"
    os.execv(python, [str(python), __file__, *sys.argv[1:]])

# Helm's install order (pkg/release/util/kind_sorter.go); unknown kinds (custom resources) last.
INSTALL_ORDER = [
    "PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
    "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass",
    "PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole",
    "ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding",
    "RoleBindingList", "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
    "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService",
    "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
]


def deep_merge(base: dict, override: dict) -> dict:
    """Merges values like `helm -f a -f b`: maps merge key by key, anything else replaces.
    Nulls are kept so Helm itself removes the defaults they override."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def image_values(ref: str) -> dict:
    """repository/tag values of an image reference ("host:5000/img:tag" -> host:5000/img, tag)."""
    repository, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:  # no tag, or the colon belonged to a registry port
        repository, tag = ref, ""
    return {"repository": repository, "tag": tag}


def load_values(files: list[str] = (), sets: list[str] = (), kube_version: str | None = None,
                image: str | None = None, agent_image: str | None = None) -> dict:
    values: dict = {}
    for path in files:
        doc = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(doc, dict):
            raise SystemExit(f"{path}: values must be a mapping")
        values = deep_merge(values, doc)
    for expr in sets:
        values = deep_merge(values, helm.parse_set_string(expr))
    if kube_version:
        values = deep_merge(values, {"kubeVersionOverride": kube_version.lstrip("v")})
    if image:
        values = deep_merge(values, {"image": image_values(image)})
    if agent_image:
        values = deep_merge(values, {"agentImage": image_values(agent_image)})
    return values


def render(values: dict | None = None, *, namespace: str = "depin-system", name: str = "depin-operator",
           chart: Path = CHART) -> list[tuple[str, str, dict]]:
    """Renders the chart; returns (template path, YAML text, parsed object) per document in
    install order. Raises helm_python.HelmValuesError for values the schema refuses and
    HelmRenderError for template failures."""
    helm.disable_logging()
    with helm.Chart.load(str(chart)) as loaded:
        manifests = loaded.render(values or {}, name=name, namespace=namespace, is_install=True)
    docs = []
    for source, text in sorted(manifests.items()):
        if source.endswith("NOTES.txt"):
            continue
        for part in split_documents(text):
            obj = yaml.safe_load(part)
            if obj:
                docs.append((source, part.strip("\n"), obj))
    rank = {kind: i for i, kind in enumerate(INSTALL_ORDER)}
    docs.sort(key=lambda d: rank.get(d[2].get("kind"), len(rank)))  # stable: template order within a kind
    return docs


def split_documents(text: str) -> list[str]:
    parts, current = [], []
    for line in text.splitlines():
        if line.rstrip() == "---":
            parts.append("\n".join(current))
            current = []
        else:
            current.append(line)
    parts.append("\n".join(current))
    return parts


def namespace_doc(namespace: str) -> str:
    return f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-f", "--values", action="append", default=[], metavar="FILE", help="values file (repeatable)")
    parser.add_argument("--set", action="append", default=[], metavar="K=V", help="value override (repeatable)")
    parser.add_argument("-n", "--namespace", default="depin-system", help="release namespace (default depin-system)")
    parser.add_argument("--name", default="depin-operator", help="release name (default depin-operator)")
    parser.add_argument("--kube-version", help="target Kubernetes version, e.g. 1.20.2 (sets kubeVersionOverride)")
    parser.add_argument("--image", help="operator image reference (sets image.repository and image.tag)")
    parser.add_argument("--agent-image", help="default agent image reference (sets agentImage.repository/tag)")
    parser.add_argument("--create-namespace", action="store_true", help="emit the Namespace object first")
    parser.add_argument("-o", "--output", help="write here instead of stdout")
    args = parser.parse_args()

    values = load_values(args.values, args.set, args.kube_version, args.image, args.agent_image)
    try:
        docs = render(values, namespace=args.namespace, name=args.name)
    except helm.HelmError as err:
        print(f"render.py: {err}", file=sys.stderr)
        return 1
    out = []
    if args.create_namespace:
        out.append("# Source: render.py --create-namespace\n" + namespace_doc(args.namespace))
    out += [f"# Source: {source}\n{text}" for source, text, _ in docs]
    text = "---\n" + "\n---\n".join(out) + "\n"
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
