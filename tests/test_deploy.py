"""deploy/: the Kubernetes manifests and the Containerfile hold together (nothing is built or
applied here: no container runtime, no cluster). They parse, the kustomization lists what is
there, the agent gets exactly its capabilities, the broker none, and every ``pxl …`` command
line in them is one the CLI accepts."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
CONTAINERFILE = DEPLOY / "Containerfile"
DOC = ROOT / "docs" / "deploy.md"

NAMESPACE = "pxl"
AGENT_CAPS = {"BPF", "PERFMON", "SYS_RESOURCE", "SYS_PTRACE"}
#: what Kubernetes substitutes for $(VAR) in the samples the CLI check parses
SAMPLE_ENV = {"NODE_NAME": "node-1", "POD_IP": "10.1.2.3"}
#: being added to the CLI with the broker: while one is missing its check is skipped, not failed
PENDING_COMMANDS = {"broker"}
PENDING_OPTIONS = {"--broker", "--advertise", "--state", "--deadline"}
#: what the agent needs beside its row budget (docs/deploy.md, pxl doctor: ~200 MB)
AGENT_OVERHEAD = 256 << 20


# ---- loading ---------------------------------------------------------------------------------

def _manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def _applied() -> list[dict[str, Any]]:
    """Every object ``kubectl apply -k`` creates."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    return [d for name in kustomization["resources"] for d in _docs(K8S / name)]


def _one(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in _applied() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def _workloads() -> list[dict[str, Any]]:
    return [d for d in _applied() if d["kind"] in ("DaemonSet", "Deployment")]


def _containers() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [(f"{w['kind']}/{w['metadata']['name']}/{c['name']}", w, c)
            for w in _workloads() for c in w["spec"]["template"]["spec"]["containers"]]


def _pod(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = _pod(workload)["containers"]
    assert len(containers) == 1
    return containers[0]


def _instructions() -> list[tuple[str, str]]:
    """The Containerfile as (INSTRUCTION, rest) pairs, continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in CONTAINERFILE.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def _entrypoint() -> list[str]:
    entry = [rest for keyword, rest in _instructions() if keyword == "ENTRYPOINT"]
    assert entry, "the Containerfile has no ENTRYPOINT"
    return json.loads(entry[-1])


def _argv(container: dict[str, Any]) -> list[str]:
    """What the container runs: command (else the image's ENTRYPOINT), then args."""
    command = container.get("command") or _entrypoint()
    return [str(a) for a in [*command, *container.get("args", [])]]


def _option(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.partition("=")[2]
    return None


_QUANTITY = re.compile(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?")
_UNITS = {None: 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40,
          "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def _bytes(quantity: str | int) -> int:
    m = _QUANTITY.fullmatch(str(quantity))
    assert m, f"not a memory quantity: {quantity!r}"
    return int(float(m.group(1)) * _UNITS[m.group(2)])


# ---- the manifests -------------------------------------------------------------------------

@pytest.mark.parametrize("path", sorted(K8S.glob("*.yaml")), ids=lambda p: p.name)
def test_every_document_parses(path: Path) -> None:
    docs = _docs(path)
    assert docs, f"{path.name} holds no document"
    for doc in docs:
        assert isinstance(doc, dict) and doc.get("apiVersion") and doc.get("kind"), \
            f"{path.name}: every document needs apiVersion and kind"


def test_kustomization_lists_exactly_the_manifests() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed)), "a resource is listed twice"
    present = {p.name for p in _manifest_files() if not p.name.endswith(".example.yaml")}
    assert set(listed) == present
    # the example secret's placeholder token must never be applied by `kubectl apply -k`
    assert not [name for name in listed if name.endswith(".example.yaml")]


def test_one_namespace() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    assert kustomization.get("namespace") == NAMESPACE
    assert _one("Namespace", NAMESPACE)
    for path in _manifest_files():
        for doc in _docs(path):
            if doc["kind"] != "Namespace":
                assert doc["metadata"].get("namespace") == NAMESPACE, \
                    f"{path.name}: {doc['kind']} {doc['metadata']['name']}"


def test_selectors_match_their_pods() -> None:
    for w in _workloads():
        labels = w["spec"]["template"]["metadata"]["labels"]
        assert w["spec"]["selector"]["matchLabels"].items() <= labels.items(), w["metadata"]["name"]


def test_agent_daemonset_privileges() -> None:
    ds = _one("DaemonSet", "pxl-agent")
    pod, c = _pod(ds), _container(ds)
    assert pod.get("hostPID") is True, "the agent must see the host's processes in /proc"
    assert not pod.get("hostNetwork"), "pod networking is enough for the agent"
    sc = c["securityContext"]
    assert sc.get("privileged") is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert set(sc["capabilities"]["add"]) == AGENT_CAPS
    assert len(sc["capabilities"]["add"]) == len(AGENT_CAPS)
    assert sc.get("allowPrivilegeEscalation") is False
    assert sc.get("readOnlyRootFilesystem") is True
    # pxl's loader refuses to load BPF unless euid is 0 (collectors/loader.py)
    assert sc.get("runAsUser") == 0
    assert not pod.get("securityContext", {}).get("runAsNonRoot")


def test_agent_host_paths_are_read_only() -> None:
    ds = _one("DaemonSet", "pxl-agent")
    host = {v["name"]: v["hostPath"]["path"] for v in _pod(ds)["volumes"] if "hostPath" in v}
    assert "/sys/kernel/btf" in host.values()
    assert "/sys/kernel/tracing" in host.values()
    mounts = {m["name"]: m for m in _container(ds)["volumeMounts"]}
    for name, path in host.items():
        assert name in mounts, f"host path {path} is declared but not mounted"
        assert mounts[name].get("readOnly") is True, f"host path {path} must be mounted read-only"
        assert mounts[name].get("mountPropagation", "None") == "None"


def test_agent_budget_fits_its_memory_limit() -> None:
    c = _container(_one("DaemonSet", "pxl-agent"))
    budget = _option(_argv(c), "--budget-mb")
    assert budget is not None, "without --budget-mb the agent sizes its store from the host"
    limit = _bytes(c["resources"]["limits"]["memory"])
    assert (int(budget) << 20) + AGENT_OVERHEAD <= limit
    assert _bytes(c["resources"]["requests"]["memory"]) <= limit


def test_agent_reaches_the_broker_service() -> None:
    agent = _container(_one("DaemonSet", "pxl-agent"))
    svc = _one("Service", "pxl-broker")
    host, _, port = (_option(_argv(agent), "--broker") or "").rpartition(":")
    assert host in (svc["metadata"]["name"], f"{svc['metadata']['name']}.{NAMESPACE}",
                    f"{svc['metadata']['name']}.{NAMESPACE}.svc")
    assert int(port) in [p["port"] for p in svc["spec"]["ports"]]


def test_broker_runs_as_non_root_with_nothing() -> None:
    deploy = _one("Deployment", "pxl-broker")
    assert deploy["spec"]["replicas"] == 1
    pod, c = _pod(deploy), _container(deploy)
    merged = {**pod.get("securityContext", {}), **c.get("securityContext", {})}
    assert merged.get("runAsNonRoot") is True
    assert merged.get("runAsUser", 0) != 0
    sc = c["securityContext"]
    assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add")
    assert sc.get("privileged") is False
    assert sc.get("allowPrivilegeEscalation") is False
    assert sc.get("readOnlyRootFilesystem") is True
    assert not pod.get("hostPID") and not pod.get("hostNetwork")
    assert not [v for v in pod.get("volumes", []) if "hostPath" in v]


def test_broker_service() -> None:
    svc = _one("Service", "pxl-broker")
    deploy = _one("Deployment", "pxl-broker")
    assert svc["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert svc["spec"]["selector"].items() <= deploy["spec"]["template"]["metadata"]["labels"].items()
    ports = {p["name"]: p for p in svc["spec"]["ports"]}
    assert ports["grpc"]["port"] == 7071
    container_ports = _container(deploy)["ports"]
    target = ports["grpc"].get("targetPort", 7071)
    assert [p for p in container_ports if target in (p["containerPort"], p.get("name"))]
    listen = _option(_argv(_container(deploy)), "--listen")
    assert listen is not None and listen.endswith(":7071")


@pytest.mark.parametrize("name,workload,container", _containers(),
                         ids=[name for name, _, _ in _containers()])
def test_container_wiring(name: str, workload: dict[str, Any], container: dict[str, Any]) -> None:
    env = {e["name"]: e for e in container.get("env", [])}
    # Kubernetes leaves $(VAR) as text when VAR is not in the container's env
    for arg in _argv(container):
        for var in re.findall(r"(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)", arg):
            assert var in env, f"{name}: $({var}) is not defined in env"
    # the token comes from the secret the docs tell you to create
    ref = env["PXL_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert (ref["name"], ref["key"]) == ("pxl-token", "token")
    assert not ref.get("optional"), "no pod may start without a token"
    # a read-only root needs a writable /tmp (libbpf's object copy, Python's temp files), and the
    # broker's --state directory must be a volume
    mounted = {m["mountPath"] for m in container.get("volumeMounts", []) if not m.get("readOnly")}
    if container["securityContext"].get("readOnlyRootFilesystem"):
        assert "/tmp" in mounted, f"{name}: read-only root but no writable /tmp"
        state = _option(_argv(container), "--state")
        if state:
            assert str(Path(state).parent) in mounted, f"{name}: --state {state} is not writable"
    # the readiness probe checks the port the process listens on
    listen = _option(_argv(container), "--listen")
    probe = container["readinessProbe"]["tcpSocket"]["port"]
    ports = {p.get("name"): p["containerPort"] for p in container["ports"]}
    assert listen and int(listen.rpartition(":")[2]) == ports.get(probe, probe)
    assert listen.startswith("0.0.0.0:"), f"{name}: must listen on the pod's address"


def test_example_secret_matches() -> None:
    [secret] = _docs(K8S / "secret-token.example.yaml")
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == "pxl-token"
    assert secret["metadata"]["namespace"] == NAMESPACE
    assert set(secret.get("stringData", {})) | set(secret.get("data", {})) == {"token"}


@pytest.mark.parametrize("name,workload,container", _containers(),
                         ids=[name for name, _, _ in _containers()])
def test_command_line_is_accepted_by_the_cli(name: str, workload: dict[str, Any],
                                             container: dict[str, Any]) -> None:
    from pxl.cli import main

    argv = _argv(container)
    assert argv[0] == "pxl", f"{name}: runs {argv[0]!r}, not pxl"
    substituted = [re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: SAMPLE_ENV[m.group(1)], a)
                   for a in argv]
    sub, args = substituted[1], substituted[2:]
    command = main.commands.get(sub)
    if command is None:
        if sub in PENDING_COMMANDS:
            pytest.skip(f"`pxl {sub}` is not in the CLI yet (being added); this check runs once "
                        "it is")
        pytest.fail(f"{name}: pxl has no command {sub!r}")
    known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
    missing = {a.partition("=")[0] for a in args if a.startswith("-")} - known
    if missing and missing <= PENDING_OPTIONS:
        pytest.skip(f"`pxl {sub}` has no {', '.join(sorted(missing))} option yet (being added); "
                    "this check runs once it has")
    try:
        ctx = command.make_context(f"pxl {sub}", list(args))
    except click.ClickException as exc:
        pytest.fail(f"{name}: pxl {shlex.join(args)}: {exc.format_message()}")
    if sub == "agent":
        assert ctx.params["node"] == SAMPLE_ENV["NODE_NAME"]
        assert ctx.params["budget_mb"] >= 16


# ---- the Containerfile -----------------------------------------------------------------------

def test_containerfile_base_and_entrypoint() -> None:
    bases = [rest.split()[0] for keyword, rest in _instructions() if keyword == "FROM"]
    assert bases and all(b == "python:3.11-slim-bookworm" for b in bases), bases
    assert _entrypoint() == ["pxl"]


def test_containerfile_installs_the_project() -> None:
    runs = [rest for keyword, rest in _instructions() if keyword == "RUN"]
    installs = [cmd for run in runs for cmd in re.split(r"&&|;", run)
                if re.search(r"\bpip install\b", cmd)]
    assert [cmd for cmd in installs if "." in shlex.split(cmd)], \
        "no `pip install .` of the source tree"


def test_containerfile_copies_what_the_build_needs() -> None:
    copied: set[str] = set()
    for keyword, rest in _instructions():
        if keyword not in ("COPY", "ADD"):
            continue
        words = shlex.split(rest)
        if any(w.startswith("--from") for w in words):
            continue  # from another stage, not from the repository
        sources = [w for w in words if not w.startswith("--")][:-1]
        for src in sources:
            assert (ROOT / src).exists(), f"the Containerfile copies {src}, which is not in the repo"
            copied.add(src.rstrip("/"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert {"pyproject.toml", project["project"]["readme"]} <= copied
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages <= copied, f"packages not copied into the image: {packages - copied}"
    # the BPF objects go in as package data: nothing in the image compiles them
    assert "bpf/*.bpf.o" in project["tool"]["setuptools"]["package-data"]["collectors"]
    assert sorted((ROOT / "collectors" / "bpf").glob("*.bpf.o"))


# ---- the docs --------------------------------------------------------------------------------

def test_docs_explain_every_capability_and_the_commands() -> None:
    text = DOC.read_text(encoding="utf-8")
    for cap in AGENT_CAPS:
        assert f"CAP_{cap}" in text, f"docs/deploy.md does not say why the agent needs CAP_{cap}"
    assert "docker build -f deploy/Containerfile" in text
    assert "kubectl apply -k deploy/kubernetes" in text
