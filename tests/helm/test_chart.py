"""The Helm chart, rendered offline with Helm's own Go SDK (helm-python-sdk).

Every case renders the default values and each `ci/*-values.yaml`. Core objects
are validated against the Kubernetes schemas in strict mode; the Prometheus
Operator CRDs (ServiceMonitor, PrometheusRule) have no schema there and are
skipped explicitly — the PrometheusRule's content goes through promtool instead.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml
from rolescope import helm_assets

ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / helm_assets.CHART
KUBERNETES_VERSION = "1.30.0"
CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "Certificate"}
WORKLOAD_KINDS = {"Deployment", "Job", "Pod"}
CASES = helm_assets.values_files(ROOT)


@cache
def _documents(case: str) -> tuple[dict[str, Any], ...]:
    return tuple(helm_assets.render_documents(ROOT, helm_assets.load_values(CASES[case])))


def _all_documents() -> list[tuple[str, dict[str, Any]]]:
    return [(case, doc) for case in CASES for doc in _documents(case)]


def _one(case: str, kind: str, name_suffix: str = "") -> dict[str, Any]:
    found = [d for d in _documents(case) if d["kind"] == kind and d["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, f"{case}: expected one {kind} *{name_suffix}, found {len(found)}"
    return found[0]


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return dict(doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"])


def _render_error(values: dict[str, Any]) -> str:
    with pytest.raises(helm_python.HelmError) as caught:
        helm_assets.render(ROOT, values)
    return str(caught.value)


def test_every_values_case_is_exercised() -> None:
    assert {"default", "redis", "monitoring", "loadtest", "profiling"} <= set(CASES)


@pytest.mark.parametrize("case", list(CASES))
def test_helm_lint_reports_no_errors(case: str) -> None:
    report = helm_python.lint(CHART_DIR, helm_assets.load_values(CASES[case]))
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 3] == []


def test_every_object_carries_the_kubernetes_labels() -> None:
    for case, doc in _all_documents():
        labels = doc["metadata"]["labels"]
        for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
                    "app.kubernetes.io/managed-by", "app.kubernetes.io/component", "helm.sh/chart"):
            assert key in labels, f"{case}: {doc['kind']}/{doc['metadata']['name']} has no {key}"


def test_core_objects_pass_strict_kubernetes_validation() -> None:
    skipped: set[str] = set()
    validated = 0
    for case, doc in _all_documents():
        if doc["kind"] in CRD_KINDS:
            skipped.add(doc["kind"])  # CRDs: no schema in kubernetes-validate
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{case}: {doc['kind']}/{doc['metadata']['name']} at {path}: {exc.message}")
        validated += 1
    assert skipped == CRD_KINDS
    assert validated > 30


def test_the_prometheus_rule_holds_every_generated_group_and_passes_promtool(tmp_path: Path) -> None:
    rule = _one("monitoring", "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    sources = sorted((ROOT / "alerts/generated").glob("*.yaml"))
    expected = [g for path in sources for g in yaml.safe_load(path.read_text())["groups"]]
    assert expected, "alerts/generated holds no rules: run `make golden`"
    assert rule["spec"]["groups"] == expected
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is not installed: run `make system-deps`"
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    result = subprocess.run([promtool, "check", "rules", str(rules_file)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_config_maps_hold_exactly_the_generated_dashboards() -> None:
    sources = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "dashboards").glob("*.json")}
    enabled = [case for case in CASES
               if helm_assets.load_values(CASES[case]).get("dashboards", {}).get("enabled", True)]
    assert {"default", "monitoring"} <= set(enabled)
    for case in CASES:
        maps = [d for d in _documents(case) if d["metadata"]["labels"].get("grafana_dashboard") == "1"]
        if case not in enabled:
            assert maps == [], case
            continue
        rendered: dict[str, str] = {}
        for config_map in maps:
            assert len(config_map["data"]) == 1
            rendered.update(config_map["data"])
        assert set(rendered) == set(sources), case
        for name, text in rendered.items():
            assert json.loads(text) == json.loads(sources[name]), f"{case}: {name}"


def test_dashboard_label_and_namespace_are_configurable() -> None:
    docs = helm_assets.render_documents(
        ROOT, {"dashboards": {"label": "dash", "labelValue": "yes", "namespace": "grafana"}})
    maps = [d for d in docs if "dash" in d["metadata"]["labels"]]
    assert len(maps) == len(list((ROOT / "dashboards").glob("*.json")))
    assert all(m["metadata"]["labels"]["dash"] == "yes" and m["metadata"]["namespace"] == "grafana"
               for m in maps)


def test_the_chart_copies_of_generated_assets_equal_their_sources() -> None:
    assert helm_assets.stale_assets(ROOT) == [], "run `make golden` to refresh helm/rolescope/files/"


@pytest.mark.parametrize("case", list(CASES))
def test_rendered_output_matches_the_golden_file(case: str) -> None:
    golden = helm_assets.golden_path(ROOT, case)
    assert golden.exists(), f"{golden} is missing: run `make golden`"
    assert golden.read_text(encoding="utf-8") == helm_assets.golden_text(ROOT, CASES[case]), (
        f"{golden.name} is out of date: run `make golden` and review the diff"
    )


def test_golden_output_does_not_change_with_the_chart_version() -> None:
    text = "helm.sh/chart: rolescope-0.1.0\nimage: x:0.1.0"
    assert helm_assets.normalise(text, "0.1.0") == "helm.sh/chart: rolescope-CHART_VERSION\nimage: x:0.1.0"


def test_every_workload_carries_the_security_settings() -> None:
    checked = 0
    for case, doc in _all_documents():
        if doc["kind"] not in WORKLOAD_KINDS:
            continue
        where = f"{case}: {doc['kind']}/{doc['metadata']['name']}"
        pod = _pod_spec(doc)
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        assert pod["automountServiceAccountToken"] is False, where
        for container in pod["containers"]:
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False, where
            assert ctx["readOnlyRootFilesystem"] is True, where
            assert ctx["capabilities"]["drop"] == ["ALL"], where
            assert ctx["seccompProfile"]["type"] == "RuntimeDefault", where
            # Only the opt-in profiler may add a capability, and only SYS_PTRACE.
            if container["name"] == "py-spy":
                assert case == "profiling" and ctx["capabilities"]["add"] == ["SYS_PTRACE"], where
            else:
                assert ctx["runAsNonRoot"] is True and "add" not in ctx["capabilities"], where
            assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"]), where
            assert "limits" in container["resources"], where
        checked += 1
    assert checked >= 10


def test_the_profiling_values_file_only_adds_the_ptrace_sidecar() -> None:
    values = helm_assets.load_values(CHART_DIR / "values-profiling.yaml")
    deployment = next(d for d in helm_assets.render_documents(ROOT, values) if d["kind"] == "Deployment")
    pod = _pod_spec(deployment)
    assert pod["shareProcessNamespace"] is True
    assert [c["name"] for c in pod["containers"]] == ["server", "py-spy"]
    default_server = _pod_spec(_one("default", "Deployment"))["containers"][0]
    assert pod["containers"][0]["securityContext"] == default_server["securityContext"]


def test_the_service_runs_with_probes_store_and_telemetry_settings() -> None:
    deployment = _one("default", "Deployment")
    pod = _pod_spec(deployment)
    server = pod["containers"][0]
    env = {e["name"]: e for e in server["env"]}
    assert server["args"][:2] == ["serve", "--config"] and "--db" in server["args"]
    assert server["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert server["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert env["ROLESCOPE_STORE"]["value"] == "sqlite"
    assert env["ROLESCOPE_API_KEYS"]["valueFrom"]["secretKeyRef"]["name"] == "demo-rolescope-api-keys"
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env
    shutdown = float(env["ROLESCOPE_SHUTDOWN_TIMEOUT_S"]["value"])
    pre_stop = server["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > shutdown + pre_stop
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "demo-rolescope-data"
    roles = _one("default", "ConfigMap", "-roles")
    assert set(roles["data"]) == {p.name for p in (ROOT / "examples").glob("*.yaml")}


def test_several_replicas_run_on_redis_with_the_otel_variables() -> None:
    pod = _pod_spec(_one("redis", "Deployment"))
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["ROLESCOPE_STORE"]["value"] == "redis"
    assert env["ROLESCOPE_REDIS_URL"]["value"] == "redis://redis-master.redis.svc:6379/0"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == "http://otel-collector.observability.svc:4318"
    assert env["OTEL_TRACES_SAMPLER_ARG"]["value"] == "0.05"
    assert "--db" not in pod["containers"][0]["args"]
    assert not [d for d in _documents("redis") if d["kind"] == "PersistentVolumeClaim"]


@pytest.mark.parametrize(
    "values",
    [{"replicaCount": 3}, {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 4}}],
    ids=["replicas", "autoscaling"],
)
def test_several_replicas_on_sqlite_are_refused_with_a_clear_message(values: dict[str, Any]) -> None:
    message = _render_error(values)
    assert "cannot share the SQLite session store" in message and "sessionStore.redis.url" in message


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"replicaCount": "three"}, "/replicaCount"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"securityContext": {"readOnlyRootFilesystem": False}}, "/securityContext/readOnlyRootFilesystem"),
        ({"auth": {"apiKeys": ["short"]}}, "/auth/apiKeys/0"),
        ({"replicaCont": 2}, "replicaCont"),
        ({"loadtest": {"runTime": "ten minutes"}}, "/loadtest/runTime"),
        ({"sessionStore": {"redis": {"url": "http://redis:6379"}}}, "/sessionStore/redis/url"),
    ],
)
def test_the_schema_rejects_a_bad_value_naming_it(values: dict[str, Any], expected: str) -> None:
    assert expected in _render_error(values)


def test_load_test_runs_a_headless_master_job_with_workers_and_metrics() -> None:
    job = _one("loadtest", "Job")
    master = _pod_spec(job)["containers"][0]
    args = master["args"]
    assert args[:2] == ["-f", "/app/loadtests/locustfile.py"]
    assert {"--master", "--headless"} <= set(args)
    assert args[args.index("--expect-workers") + 1] == "2"
    assert args[args.index("--host") + 1] == "http://demo-rolescope.rolescope.svc:8080"
    env = {e["name"]: e for e in master["env"]}
    assert env["ROLESCOPE_LOAD_METRICS_PORT"]["value"] == "9646"
    assert env["ROLESCOPE_LOAD_TRAFFIC"]["value"] == "/traffic/traffic.jsonl"
    assert env["ROLESCOPE_LOAD_PROCESSES"]["value"] == "6"
    worker = _one("loadtest", "Deployment", "-load-worker")
    assert "replicas" not in worker["spec"]  # the HPA owns the count
    assert _one("loadtest", "HorizontalPodAutoscaler", "-load-worker")["spec"]["maxReplicas"] == 6
    volumes = {v["name"]: v for v in _pod_spec(worker)["volumes"]}
    assert volumes["traffic"]["configMap"]["name"] == "shadow-traffic"
    monitor = _one("loadtest", "ServiceMonitor", "-load")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


def test_helm_test_hook_does_a_chat_round_trip_with_the_release_key() -> None:
    pod = _one("default", "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = pod["spec"]["containers"][0]["args"][0]
    assert "/v1/chat" in script and "/v1/sessions/" in script
    compile(script, "helm-test", "exec")
    secret = _one("default", "Secret")
    keys = base64.b64decode(secret["data"]["api-keys"]).decode()
    assert len(keys) >= 16 and "," not in keys


def test_the_network_policy_admits_the_load_generator_and_scrapers() -> None:
    policy = _one("redis", "NetworkPolicy")
    peers = [peer for rule in policy["spec"]["ingress"] for peer in rule["from"]]
    assert any("namespaceSelector" in p and "monitoring" in str(p) for p in peers)
    assert any("load-worker" in str(p) for p in peers)


def _server_container(documents: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = next(d for d in documents if d["kind"] == "Deployment" and "load" not in d["metadata"]["name"])
    return dict(next(c for c in _pod_spec(deployment)["containers"] if c["name"] == "server"))


def test_tls_is_off_by_default_and_mutual_tls_turns_every_part_on() -> None:
    plain = _server_container(list(_documents("default")))
    assert "--tls-cert" not in plain["args"]
    assert plain["readinessProbe"]["httpGet"]["scheme"] == "HTTP"
    assert not [d for d in _documents("default") if d["kind"] == "Certificate"]

    certificate = _one("tls", "Certificate")
    assert certificate["spec"]["issuerRef"]["name"] == "internal-ca"
    assert "client auth" in certificate["spec"]["usages"]
    mutual = _server_container(list(_documents("tls")))
    args = mutual["args"]
    assert args[args.index("--tls-client-ca") + 1] == "/etc/rolescope/client-ca/ca.crt"
    # kubelet has no client certificate: the probes check the port instead of being refused.
    assert "tcpSocket" in mutual["readinessProbe"] and "httpGet" not in mutual["readinessProbe"]
    mounts = {m["name"]: m for m in mutual["volumeMounts"]}
    assert mounts["tls"]["readOnly"] and mounts["client-ca"]["readOnly"]
    endpoint = _one("tls", "ServiceMonitor")["spec"]["endpoints"][0]
    assert endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"]["ca"]["secret"]["name"] == certificate["spec"]["secretName"]
    assert endpoint["tlsConfig"]["keySecret"]["name"] == "prometheus-scrape-client"


def test_tls_with_an_existing_secret_probes_over_https() -> None:
    documents = helm_assets.render_documents(ROOT, {"tls": {"enabled": True, "existingSecret": "my-tls"}})
    server = _server_container(documents)
    assert server["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert server["livenessProbe"]["httpGet"]["scheme"] == "HTTPS"
    volumes = {v["name"]: v for v in _pod_spec(next(d for d in documents if d["kind"] == "Deployment"))["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "my-tls"
    assert "--tls-client-ca" not in server["args"]


def test_tls_values_that_cannot_work_fail_the_render() -> None:
    assert "tls.enabled needs a certificate" in _render_error({"tls": {"enabled": True}})
    assert "needs tls.certManager.issuerRef.name" in _render_error(
        {"tls": {"enabled": True, "certManager": {"enabled": True}}}
    )
    assert "tls.clientCA.enabled needs tls.enabled" in _render_error({"tls": {"clientCA": {"enabled": True}}})


def test_the_load_generator_reaches_the_https_service_with_the_serving_secret() -> None:
    for kind, suffix in (("Job", "load"), ("Deployment", "load-worker")):
        pod = _pod_spec(_one("tls", kind, suffix))
        container = pod["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        target = json.loads(env["ROLESCOPE_LOAD_TARGET"])
        assert target["ca_file"] == "/etc/rolescope/tls/ca.crt"
        assert target["client_cert"] == "/etc/rolescope/tls/tls.crt"
        assert any(m["name"] == "tls" and m["readOnly"] for m in container["volumeMounts"])
    assert "ROLESCOPE_LOAD_TARGET" not in str(_documents("loadtest"))
