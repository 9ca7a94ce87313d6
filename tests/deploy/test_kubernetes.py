"""deploy/kubernetes/: every manifest validates (kubernetes-validate, offline, strict, a
pinned Kubernetes version), the ConfigMaps hold settings scrubgate loads, probes and
scraping reach admin endpoints that need no token, and the pods are locked down."""

from __future__ import annotations

import copy
import re
import shlex
import tomllib
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

import pytest
import yaml

from proxy.settings import LoadedSettings, SettingsError, load_settings
from tests.deploy.support import DEPLOY, REPO, http_status, in_ci, running_scrubgate

KUBERNETES_VERSION = "1.33.0"
KUBERNETES = DEPLOY / "kubernetes"
MANIFESTS = sorted(KUBERNETES.rglob("*.yaml"))
SECRETS = {"SCRUBGATE_HASH_KEY": "k" * 32, "SCRUBGATE_ADMIN_TOKEN": "test-admin-token"}
SETTINGS_DIR = "/etc/scrubgate"
SPOOL = "/var/lib/scrubgate/spool"


def kubernetes_validate() -> ModuleType:
    try:
        import kubernetes_validate
    except ImportError:
        message = "kubernetes-validate is not installed (pip install -e '.[test]')"
        if in_ci():
            pytest.fail(f"{message}; CI must install it", pytrace=False)
        pytest.skip(message)
    return kubernetes_validate


def documents(path: Path) -> list[dict]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def resources(kind: str) -> list[dict]:
    return [
        document for path in MANIFESTS for document in documents(path) if document["kind"] == kind
    ]


def resource(kind: str, name: str) -> dict:
    (found,) = (item for item in resources(kind) if item["metadata"]["name"] == name)
    return found


WORKLOADS = [
    ("Deployment", "product"),
    ("Deployment", "scrubgate-gateway"),
    ("StatefulSet", "scrubgate-gateway"),
]


def pod_spec(kind: str, name: str) -> dict:
    return resource(kind, name)["spec"]["template"]["spec"]


def scrubgate_container(spec: dict) -> dict:
    (container,) = (
        container
        for container in [*spec.get("initContainers", []), *spec["containers"]]
        if container["name"] == "scrubgate"
    )
    return container


def settings_of(
    spec: dict, tmp_path: Path, environ: dict[str, str] | None = None
) -> LoadedSettings:
    """The settings a pod runs with: its ConfigMap's config.yaml, loaded for real."""
    (volume,) = (volume for volume in spec["volumes"] if volume["name"] == "settings")
    configmap = resource("ConfigMap", volume["configMap"]["name"])
    path = tmp_path / "config.yaml"
    path.write_text(configmap["data"]["config.yaml"])
    return load_settings(path, environ=SECRETS if environ is None else environ)


# --- every manifest ----------------------------------------------------------------------


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda path: str(path.relative_to(KUBERNETES)))
def test_manifest_is_valid_for_the_pinned_kubernetes_version(manifest):
    validator = kubernetes_validate()
    found = documents(manifest)
    assert found, f"{manifest} holds no resource"
    for document in found:
        where = f"{document['kind']}/{document['metadata']['name']}"
        try:
            validator.validate(document, KUBERNETES_VERSION, strict=True)
        except validator.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            pytest.fail(f"{manifest.name}: {where}: {path}: {error.message}", pytrace=False)


def test_validation_is_strict_about_misspelt_fields():
    validator = kubernetes_validate()
    deployment = copy.deepcopy(resource("Deployment", "product"))
    container = scrubgate_container(deployment["spec"]["template"]["spec"])
    container["securityContext"]["readOnlyRootFileSystem"] = True
    with pytest.raises(validator.ValidationError):
        validator.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_the_examples_cover_what_a_deployment_needs():
    kinds = {document["kind"] for path in MANIFESTS for document in documents(path)}
    assert kinds >= {
        "ConfigMap",
        "Secret",
        "Deployment",
        "StatefulSet",
        "Service",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "PodDisruptionBudget",
    }


# --- settings ----------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "name"), WORKLOADS)
def test_configmap_settings_load_and_watch_for_changes(kind, name, tmp_path):
    spec = pod_spec(kind, name)
    settings = settings_of(spec, tmp_path)
    assert settings.reload.watch
    assert (
        settings.admin.host == "0.0.0.0"
        and settings.admin.token == SECRETS["SCRUBGATE_ADMIN_TOKEN"]
    )
    container = scrubgate_container(spec)
    assert container["args"][:3] == ["run", "--config", f"{SETTINGS_DIR}/config.yaml"]
    # A directory mount, not subPath: only then does an edited ConfigMap reach the pod.
    (mount,) = (mount for mount in container["volumeMounts"] if mount["name"] == "settings")
    assert mount["mountPath"] == SETTINGS_DIR and "subPath" not in mount


@pytest.mark.parametrize(("kind", "name"), WORKLOADS)
def test_secrets_come_from_the_secret_through_the_variables_the_settings_name(kind, name, tmp_path):
    spec = pod_spec(kind, name)
    secret = resource("Secret", "scrubgate-secrets")
    references = {
        entry["name"]: entry["valueFrom"]["secretKeyRef"]
        for entry in scrubgate_container(spec)["env"]
        if "valueFrom" in entry
    }
    assert set(references) == set(SECRETS)
    for reference in references.values():
        assert reference["name"] == "scrubgate-secrets"
        assert reference["key"] in secret["stringData"]
    settings = settings_of(spec, tmp_path)
    assert settings.raw["hashing"]["key_env"] == "SCRUBGATE_HASH_KEY"
    assert settings.raw["admin"]["token_env"] == "SCRUBGATE_ADMIN_TOKEN"


def test_an_empty_secret_keeps_scrubgate_from_starting(tmp_path):
    with pytest.raises(SettingsError) as caught:
        settings_of(pod_spec("Deployment", "product"), tmp_path, environ={})
    messages = " ".join(problem.message for problem in caught.value.problems)
    assert "SCRUBGATE_HASH_KEY is not set" in messages
    assert "needs token_file or token_env" in messages


# --- probes, scraping, security ----------------------------------------------------------


@pytest.mark.parametrize(("kind", "name"), WORKLOADS)
def test_probes_and_scrape_annotations_use_the_admin_port(kind, name, tmp_path):
    workload = resource(kind, name)
    spec = pod_spec(kind, name)
    container = scrubgate_container(spec)
    admin_port = settings_of(spec, tmp_path).admin.port
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports["admin"] == admin_port
    assert container["livenessProbe"]["httpGet"] == {"path": "/-/healthy", "port": "admin"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/-/ready", "port": "admin"}
    assert container["startupProbe"]["httpGet"] == {"path": "/-/ready", "port": "admin"}
    annotations = workload["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(admin_port)
    assert annotations["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize(("kind", "name"), WORKLOADS)
def test_probe_and_scrape_endpoints_answer_without_the_token_and_reload_needs_it(
    kind, name, tmp_path
):
    """The ConfigMap's settings, served for real (on loopback, ports 0): what the kubelet
    and Prometheus call works without a token; what changes state does not."""
    spec = pod_spec(kind, name)
    (volume,) = (volume for volume in spec["volumes"] if volume["name"] == "settings")
    raw = yaml.safe_load(resource("ConfigMap", volume["configMap"]["name"])["data"]["config.yaml"])
    for listener in raw["listeners"]:
        listener.update(host="127.0.0.1", port=0)
    raw["admin"].update(host="127.0.0.1", port=0)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    with running_scrubgate(path, SECRETS) as ports:
        admin = f"http://127.0.0.1:{ports['admin']}"
        for endpoint in ("/-/healthy", "/-/ready", "/metrics"):
            assert http_status(admin + endpoint) == 200, endpoint
        assert http_status(admin + "/-/reload", method="POST") == 401
        token = {"Authorization": f"Bearer {SECRETS['SCRUBGATE_ADMIN_TOKEN']}"}
        assert http_status(admin + "/-/reload", method="POST", headers=token) == 200


def dockerfile_user() -> tuple[int, int]:
    (line,) = (
        line for line in (REPO / "Dockerfile").read_text().splitlines() if line.startswith("USER ")
    )
    uid, gid = line.split()[1].split(":")
    return int(uid), int(gid)


@pytest.mark.parametrize(("kind", "name"), WORKLOADS)
def test_scrubgate_runs_locked_down(kind, name):
    spec = pod_spec(kind, name)
    container = scrubgate_container(spec)
    context = {**spec.get("securityContext", {}), **container["securityContext"]}
    assert context["runAsNonRoot"] is True
    assert (context["runAsUser"], context["runAsGroup"]) == dockerfile_user()
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    # With a read-only root, the spool and /tmp are the only writable places.
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    assert mounts[SPOOL] == "spool" and mounts["/tmp"] == "tmp"
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert container["image"] == f"scrubgate:{version}"


# --- sidecar -----------------------------------------------------------------------------


def test_sidecar_product_sends_every_channel_to_the_sidecar(tmp_path):
    spec = pod_spec("Deployment", "product")
    (listener,) = settings_of(spec, tmp_path).listeners
    assert listener.host == "127.0.0.1"
    (product,) = spec["containers"]
    urls = [entry["value"] for entry in product["env"]]
    assert urls
    for url in urls:
        parts = urlsplit(url)
        assert (parts.scheme, parts.hostname, parts.port) == ("http", "127.0.0.1", listener.port)
    # A native sidecar: started (and ready) before the product, stopped after it.
    container = scrubgate_container(spec)
    assert container in spec["initContainers"] and container["restartPolicy"] == "Always"
    (spool,) = (volume for volume in spec["volumes"] if volume["name"] == "spool")
    assert "emptyDir" in spool


# --- spool -------------------------------------------------------------------------------

_QUANTITY = re.compile(r"^(\d+)(Ki|Mi|Gi|Ti|)$")
_BINARY_UNITS = {"": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity_bytes(quantity: str) -> int:
    """A Kubernetes storage quantity in binary units ("5Gi") as bytes."""
    found = _QUANTITY.match(quantity)
    assert found, f"write {quantity!r} in bytes, Ki, Mi, Gi or Ti"
    number, unit = found.groups()
    return int(number) * _BINARY_UNITS[unit]


def spool_capacity(workload: dict) -> int:
    """The bytes the spool volume of each pod of ``workload`` holds."""
    for claim in workload["spec"].get("volumeClaimTemplates", []):
        if claim["metadata"]["name"] == "spool":
            return quantity_bytes(claim["spec"]["resources"]["requests"]["storage"])
    spec = workload["spec"]["template"]["spec"]
    (volume,) = (volume for volume in spec["volumes"] if volume["name"] == "spool")
    return quantity_bytes(volume["emptyDir"]["sizeLimit"])


@pytest.mark.parametrize(("kind", "name"), WORKLOADS)
def test_the_spool_volume_holds_a_full_spool_with_headroom(kind, name, tmp_path):
    """A full spool plus the files being written fits: an emptyDir past its sizeLimit
    gets the pod evicted, and a full claim fails the writes."""
    workload = resource(kind, name)
    settings = settings_of(workload["spec"]["template"]["spec"], tmp_path)
    assert settings.spool.directory == SPOOL
    spooled = settings.spool.max_bytes * settings.workers
    assert spool_capacity(workload) >= spooled * 1.2


# --- gateway -----------------------------------------------------------------------------

GATEWAY = KUBERNETES / "gateway"
DURABLE = GATEWAY / "durable-spool"
GATEWAY_NAME = "scrubgate-gateway"


def applied(arguments: list[str]) -> list[Path]:
    """The files ``kubectl apply -f ARGUMENT ...`` reads: a file, or the manifests directly
    in a directory (without -R, not those in its subdirectories)."""
    files: list[Path] = []
    for argument in arguments:
        path = REPO / argument
        files += sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    return files


def durable_apply_arguments() -> list[str]:
    """The -f arguments of the kubectl apply command in durable-spool/README.md."""
    (block,) = re.findall(r"```sh\n(.*?)```", (DURABLE / "README.md").read_text(), re.DOTALL)
    words = shlex.split(block.replace("\\\n", " "))
    assert words[:2] == ["kubectl", "apply"], block
    flags, arguments = words[2::2], words[3::2]
    assert set(flags) == {"-f"}, block
    return arguments


VARIANTS = {
    "deployment": ("Deployment", applied(["deploy/kubernetes/gateway/"])),
    "durable-spool": ("StatefulSet", applied(durable_apply_arguments())),
}


def variant_resource(variant: str, kind: str, name: str = GATEWAY_NAME) -> dict:
    """The one ``kind`` named ``name`` among the files the variant applies."""
    (found,) = (
        document
        for path in VARIANTS[variant][1]
        for document in documents(path)
        if (document["kind"], document["metadata"]["name"]) == (kind, name)
    )
    return found


def test_the_durable_variant_swaps_the_deployment_and_its_autoscaler_for_durable_spool():
    default, durable = (set(files) for _, files in VARIANTS.values())
    replaced = {GATEWAY / "deployment.yaml", GATEWAY / "hpa.yaml"}
    assert replaced <= default
    assert durable == (default - replaced) | set(DURABLE.glob("*.yaml"))
    assert {path.parent for path in default} == {GATEWAY}


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_gateway_variant_applies_one_complete_gateway(variant):
    kind, files = VARIANTS[variant]
    found = sorted(
        (document["kind"], document["metadata"]["name"])
        for path in files
        for document in documents(path)
    )
    assert found == sorted(
        [
            ("ConfigMap", "scrubgate-gateway-settings"),
            (kind, GATEWAY_NAME),
            ("HorizontalPodAutoscaler", GATEWAY_NAME),
            ("NetworkPolicy", "product-egress"),
            ("NetworkPolicy", GATEWAY_NAME),
            ("PodDisruptionBudget", GATEWAY_NAME),
            ("Service", GATEWAY_NAME),
        ]
    )


@pytest.mark.parametrize("variant", VARIANTS)
def test_gateway_service_autoscaler_and_budget_select_the_gateway_pods(variant, tmp_path):
    kind, _ = VARIANTS[variant]
    gateway = variant_resource(variant, kind)
    labels = gateway["spec"]["template"]["metadata"]["labels"]
    assert gateway["spec"]["selector"]["matchLabels"] == labels
    spec = gateway["spec"]["template"]["spec"]
    (listener,) = settings_of(spec, tmp_path).listeners
    assert listener.host == "0.0.0.0"

    service = variant_resource(variant, "Service")
    assert service["spec"]["selector"] == labels
    (port,) = service["spec"]["ports"]
    ports = {port["name"]: port["containerPort"] for port in scrubgate_container(spec)["ports"]}
    assert ports[port["targetPort"]] == listener.port

    autoscaler = variant_resource(variant, "HorizontalPodAutoscaler")
    target = autoscaler["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == ("apps/v1", kind, GATEWAY_NAME)
    assert 2 <= autoscaler["spec"]["minReplicas"] < autoscaler["spec"]["maxReplicas"]

    budget = variant_resource(variant, "PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"] == labels
    assert budget["spec"]["minAvailable"] < autoscaler["spec"]["minReplicas"]


def test_default_gateway_spool_is_an_emptydir_per_pod():
    gateway = resource("Deployment", GATEWAY_NAME)
    spec = gateway["spec"]["template"]["spec"]
    (spool,) = (volume for volume in spec["volumes"] if volume["name"] == "spool")
    assert set(spool) == {"name", "emptyDir"} and "medium" not in spool["emptyDir"]
    # A rollout adds a pod before it removes one: capacity never drops below the replicas.
    assert gateway["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_durable_gateway_spool_is_a_claim_per_replica():
    gateway = resource("StatefulSet", GATEWAY_NAME)
    (claim,) = gateway["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "spool"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert gateway["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"] == "Retain"
    spec = gateway["spec"]["template"]["spec"]
    assert "spool" not in {volume["name"] for volume in spec["volumes"]}
    assert spec["securityContext"]["fsGroup"] == dockerfile_user()[1]


def test_durable_gateway_runs_the_default_gateways_pod_but_for_the_spool_volume():
    default = copy.deepcopy(resource("Deployment", GATEWAY_NAME)["spec"]["template"])
    durable = resource("StatefulSet", GATEWAY_NAME)["spec"]["template"]
    volumes = default["spec"]["volumes"]
    volumes[:] = [volume for volume in volumes if volume["name"] != "spool"]
    assert default == durable


DNS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]


def policy(name: str) -> dict:
    (found,) = (
        document
        for document in documents(KUBERNETES / "gateway" / "networkpolicy.yaml")
        if document["metadata"]["name"] == name
    )
    return found["spec"]


def test_product_pods_cannot_reach_anything_outside_the_cluster():
    spec = policy("product-egress")
    product_labels = resource("Deployment", "product")["spec"]["template"]["metadata"]["labels"]
    assert spec["podSelector"]["matchLabels"].items() <= product_labels.items()
    assert spec["policyTypes"] == ["Egress"]
    rules = spec["egress"]
    assert {"ports": DNS} in rules
    for rule in rules:
        for peer in rule.get("to", []):
            # Pods only (any namespace): no ipBlock, so no address outside the cluster.
            assert set(peer) <= {"namespaceSelector", "podSelector"}, peer


@pytest.mark.parametrize("variant", VARIANTS)
def test_only_the_gateway_may_reach_the_vendor_and_only_product_pods_may_use_it(variant, tmp_path):
    spec = variant_resource(variant, "NetworkPolicy")["spec"]
    gateway = variant_resource(variant, VARIANTS[variant][0])
    assert spec["podSelector"]["matchLabels"] == gateway["spec"]["template"]["metadata"]["labels"]
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    (listener,) = settings_of(gateway["spec"]["template"]["spec"], tmp_path).listeners
    telemetry, metrics = spec["ingress"]
    assert telemetry["ports"] == [{"protocol": "TCP", "port": listener.port}]
    (source,) = telemetry["from"]
    assert source["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "product"}
    assert metrics["ports"] == [{"protocol": "TCP", "port": 9090}]
    dns, vendor = spec["egress"]
    assert dns == {"ports": DNS}
    assert vendor["ports"] == [{"protocol": "TCP", "port": 443}]
    (block,) = vendor["to"]
    assert block["ipBlock"]["cidr"] == "0.0.0.0/0"
    assert set(block["ipBlock"]["except"]) == {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"}
