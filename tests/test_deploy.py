"""The install assets: deploy/'s manifests and values file, and the Dockerfile.

Every manifest is read back through the official Kubernetes client's models, so an unknown
kind, a misspelt field or a wrong type fails here rather than at ``kubectl apply``; the RBAC
grants are held to the lists of domain.md section 6; the operator's values to the keys chart
1.10.1 has. All static: no cluster, no image build.
"""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from croniter import croniter
from kubernetes.client import ApiClient

from services.config import parse_config
from tui.cli.parser import build_parser

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
VALUES = DEPLOY / "values_postgres_operator.yaml"
CHART_KEYS = Path(__file__).parent / "fixtures" / "postgres_operator_chart_1.10.1_keys.yaml"
STAGING_NS = "pgdeck-staging"

MODELS = {
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "V1ClusterRole",
    ("rbac.authorization.k8s.io/v1", "Role"): "V1Role",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "V1ClusterRoleBinding",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "V1RoleBinding",
    ("batch/v1", "CronJob"): "V1CronJob",
}
POSTGRESQL = ("acid.zalan.do/v1", "postgresql")

# domain.md section 6: what browsing and the review read, everywhere (operatorconfigurations
# also listed: pgdeck lists them before it falls back to the operator's ConfigMap).
READONLY = {
    ("acid.zalan.do", "postgresqls"): {"get", "list", "watch"},
    ("acid.zalan.do", "postgresqls/status"): {"get", "list", "watch"},
    ("acid.zalan.do", "operatorconfigurations"): {"get", "list"},
    ("", "configmaps"): {"get"},
    ("batch", "cronjobs"): {"get", "list", "watch"},
    ("batch", "jobs"): {"get", "list", "watch"},
    ("", "pods"): {"get", "list"},
    ("", "pods/log"): {"get"},
}
# ... and what restore tests add, in the staging namespace only.
RESTORE_TEST = {
    ("acid.zalan.do", "postgresqls"): {"create", "delete", "get", "list", "watch"},
    ("", "secrets"): {"get"},
    ("", "pods"): {"get", "list"},
    ("", "pods/portforward"): {"create", "get"},  # a WebSocket forward is a GET
    ("", "pods/log"): {"get"},
    ("batch", "jobs"): {"create", "delete", "get", "list", "watch"},
}
SECRETISH_NAME = re.compile(r"(?i)(password|passwd|secret|token|access_key|private_key|credential)")
SECRETISH_VALUE = re.compile(
    r"(AKIA|ASIA)[0-9A-Z]{16}"  # an AWS access key id
    r"|[A-Za-z0-9/+=]{40}"  # the length of an AWS secret access key
    r"|-----BEGIN"
    r"|(?i:password\s*[:=]\s*\S)"
)
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def manifests() -> list[tuple[str, dict[str, Any]]]:
    """Every YAML document under deploy/ but the Helm values, named file#index."""
    docs = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        if path == VALUES:
            continue
        for i, doc in enumerate(yaml.safe_load_all(path.read_text(encoding="utf-8"))):
            if doc is not None:
                docs.append((f"{path.name}#{i}", doc))
    return docs


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in manifests() if doc.get("kind") == kind]


def one(kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in of_kind(kind) if d["metadata"]["name"] == name]
    return found


def model_problems(doc: dict[str, Any]) -> str | None:
    """Why ``doc`` is no valid object of its kind, by the client's models; None if it is.

    The models check types and required fields, and drop fields they do not know: writing the
    object back out and comparing finds what was dropped.
    """
    model = MODELS.get((doc.get("apiVersion"), doc.get("kind")))
    if model is None:
        return f"no model for apiVersion {doc.get('apiVersion')!r} kind {doc.get('kind')!r}"
    api = ApiClient()
    try:
        obj = api._ApiClient__deserialize(doc, model)  # type: ignore[attr-defined]
    except (ValueError, TypeError) as exc:
        return f"{model}: {exc}"
    back = api.sanitize_for_serialization(obj)
    if back != doc:
        return f"{model}: fields unknown to the model or retyped: {_diff(doc, back)}"
    return None


def _diff(a: Any, b: Any, where: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{where}.{k}" for k in a.keys() - b.keys()]
        for k in a.keys() & b.keys():
            out += _diff(a[k], b[k], f"{where}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _diff(x, y, f"{where}[{i}]")
        ]
    return [] if a == b else [where]


def grants(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert not rule.get("nonResourceURLs"), role["metadata"]["name"]
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


# -- every manifest is an object of its kind ---------------------------------------------


def test_deploy_holds_the_manifests_the_issue_asks_for() -> None:
    kinds = sorted(doc["kind"] for _, doc in manifests())
    assert kinds == sorted(
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "CronJob",
            "CronJob",
            "Role",
            "RoleBinding",
            "ServiceAccount",
            "postgresql",
        ]
    )


@pytest.mark.parametrize("name,doc", manifests(), ids=[n for n, _ in manifests()])
def test_every_manifest_is_a_valid_object_of_its_kind(name: str, doc: dict[str, Any]) -> None:
    assert doc["metadata"]["name"]
    assert DNS_1035.match(doc["metadata"]["name"])
    if (doc["apiVersion"], doc["kind"]) == POSTGRESQL:
        return  # a custom resource: test_the_postgresql_example_... checks it
    assert model_problems(doc) is None, (name, model_problems(doc))


def test_the_model_check_catches_unknown_fields_wrong_types_and_missing_fields() -> None:
    cron = one("CronJob", "pgdeck-weekly-review")
    misspelt = {**cron, "spec": {**cron["spec"], "schedul": "0 * * * *"}}
    assert "schedul" in (model_problems(misspelt) or "")
    wrong_type = {**cron, "spec": {**cron["spec"], "successfulJobsHistoryLimit": "4"}}
    assert model_problems(wrong_type)
    role = one("Role", "pgdeck-restore-test")
    no_verbs = {**role, "rules": [{"apiGroups": [""], "resources": ["pods"]}]}
    assert model_problems(no_verbs)
    assert model_problems({**role, "apiVersion": "rbac.authorization.k8s.io/v1beta1"})


def test_pgdecks_namespaced_objects_live_in_the_one_staging_namespace() -> None:
    for name, doc in manifests():
        if doc["kind"] in ("ClusterRole", "ClusterRoleBinding", "postgresql"):
            assert "namespace" not in doc["metadata"], name
        else:
            assert doc["metadata"]["namespace"] == STAGING_NS, name


# -- RBAC -----------------------------------------------------------------------------------


def test_the_readonly_clusterrole_grants_exactly_what_browsing_and_the_review_read() -> None:
    role = one("ClusterRole", "pgdeck-readonly")
    assert grants(role) == READONLY
    (cm_rule,) = [r for r in role["rules"] if "configmaps" in r["resources"]]
    assert cm_rule["resourceNames"] == ["postgres-operator"]  # not every ConfigMap


def test_the_restore_test_role_is_namespaced_and_grants_only_the_listed_verbs() -> None:
    (role,) = of_kind("Role")
    assert role["metadata"]["namespace"] == STAGING_NS
    assert grants(role) == RESTORE_TEST


def test_no_role_grants_wildcards_or_lists_secrets() -> None:
    for kind in ("ClusterRole", "Role"):
        for role in of_kind(kind):
            for rule in role["rules"]:
                for field in ("apiGroups", "resources", "verbs"):
                    assert "*" not in rule[field], (role["metadata"]["name"], rule)
            given = grants(role)
            assert not {"list", "watch"} & given.get(("", "secrets"), set())
            if kind == "ClusterRole":
                assert ("", "secrets") not in given


def test_bindings_give_both_roles_to_pgdecks_service_account() -> None:
    (sa,) = of_kind("ServiceAccount")
    subject = {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": STAGING_NS}
    (crb,) = of_kind("ClusterRoleBinding")
    assert crb["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "pgdeck-readonly",
    }
    assert crb["subjects"] == [subject]
    (rb,) = of_kind("RoleBinding")
    assert rb["metadata"]["namespace"] == STAGING_NS
    assert rb["roleRef"]["kind"] == "Role" and rb["roleRef"]["name"] == "pgdeck-restore-test"
    assert rb["subjects"] == [subject]


# -- the CronJobs ---------------------------------------------------------------------------


def pod_spec(cron: dict[str, Any]) -> dict[str, Any]:
    return cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]


@pytest.mark.parametrize("name", ["pgdeck-weekly-review", "pgdeck-restore-test"])
def test_cronjob_runs_pgdeck_as_non_root_without_privileges(name: str) -> None:
    spec = pod_spec(one("CronJob", name))
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == dockerfile_uid()
    assert spec["serviceAccountName"] == one("ServiceAccount", "pgdeck")["metadata"]["name"]
    for c in spec["containers"]:
        sc = c["securityContext"]
        assert sc.get("runAsUser", 1) != 0 and sc.get("runAsNonRoot", True) is True
        assert sc["allowPrivilegeEscalation"] is False and sc.get("privileged", False) is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert not c.get("command")  # the image's entry point, pgdeck, runs
        assert not c["image"].endswith(":latest") and ":" in c["image"]


@pytest.mark.parametrize("name", ["pgdeck-weekly-review", "pgdeck-restore-test"])
def test_cronjob_holds_no_inline_secret(name: str) -> None:
    spec = pod_spec(one("CronJob", name))
    for c in spec["containers"]:
        for env in c.get("env", []):
            if "value" in env:
                assert not SECRETISH_NAME.search(env["name"]), env
                assert not SECRETISH_VALUE.search(env["value"]), env
        for source in c.get("envFrom", []):
            assert "secretRef" in source or "configMapRef" in source
        assert not any(SECRETISH_VALUE.search(a) for a in c.get("args", []))
    (cm,) = of_kind("ConfigMap")
    for text in cm["data"].values():
        assert not SECRETISH_VALUE.search(text)
        assert not re.search(r"(?i)(password|secret_access_key|access_key_id)\s*:", text)


@pytest.mark.parametrize("name", ["pgdeck-weekly-review", "pgdeck-restore-test"])
def test_cronjob_reads_its_config_from_the_configmap(name: str) -> None:
    spec = pod_spec(one("CronJob", name))
    (c,) = spec["containers"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    config_path = Path(env["PGDECK_CONFIG"])
    (volume,) = [n for n, path in mounts.items() if Path(path) == config_path.parent]
    cm = one("ConfigMap", volumes[volume]["configMap"]["name"])
    assert config_path.name in cm["data"]


def test_the_weekly_review_signs_off_and_archives_with_pgdecks_real_flags() -> None:
    (c,) = pod_spec(one("CronJob", "pgdeck-weekly-review"))["containers"]
    args = build_parser().parse_args(c["args"])
    assert args.command == "review" and args.sign_off and args.note
    text = one("ConfigMap", "pgdeck-config")["data"]["review.yaml"]
    config = parse_config(text, Path("/etc/pgdeck/review.yaml"))
    assert str(getattr(config.archive, "url", "")).startswith("s3://")  # not the pod's disk


def test_the_restore_test_cronjob_runs_every_cluster_in_the_staging_namespace() -> None:
    (c,) = pod_spec(one("CronJob", "pgdeck-restore-test"))["containers"]
    assert c["args"] == ["restore-test", "--all"]
    args = build_parser().parse_args(c["args"])
    assert args.command == "restore-test" and args.all and args.backup == "latest"
    spec = pod_spec(one("CronJob", "pgdeck-restore-test"))
    (first,) = spec["initContainers"]  # what a killed run left, cleaned up first
    assert build_parser().parse_args(first["args"]).cleanup
    assert first["image"] == c["image"] and first["volumeMounts"] == c["volumeMounts"]
    assert first["securityContext"] == c["securityContext"]
    assert spec["terminationGracePeriodSeconds"] >= 60  # room to tear down on SIGTERM
    data = one("ConfigMap", "pgdeck-config")["data"]
    conf = yaml.safe_load(data["restore-test.yaml"])
    assert conf["staging"]["namespace"] == STAGING_NS
    assert conf["archive"] == yaml.safe_load(data["review.yaml"])["archive"]
    config = parse_config(data["restore-test.yaml"], Path("/etc/pgdeck/restore-test.yaml"))
    assert config.staging.namespace == STAGING_NS and config.staging.team == "acid"
    assert config.restore_tests.rto_minutes == 60


def runs(schedule: str, n: int) -> list[datetime]:
    it = croniter(schedule, datetime(2027, 1, 1, 12, tzinfo=UTC))
    return [it.get_next(datetime) for _ in range(n)]


def test_the_cronjob_schedules_parse() -> None:
    for cron in of_kind("CronJob"):
        assert croniter.is_valid(cron["spec"]["schedule"]), cron["metadata"]["name"]
        assert cron["spec"]["timeZone"] == "Etc/UTC"
        assert cron["spec"]["concurrencyPolicy"] == "Forbid"
        assert cron["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 0


def test_the_restore_test_runs_once_a_quarter() -> None:
    two_years = runs(one("CronJob", "pgdeck-restore-test")["spec"]["schedule"], 8)
    quarters = [r.year * 4 + (r.month - 1) // 3 for r in two_years]
    assert [b - a for a, b in zip(quarters, quarters[1:], strict=False)] == [1] * 7


def test_the_review_runs_once_a_week() -> None:
    weeks = runs(one("CronJob", "pgdeck-weekly-review")["spec"]["schedule"], 5)
    assert {b - a for a, b in zip(weeks, weeks[1:], strict=False)} == {timedelta(days=7)}


# -- the postgresql example -----------------------------------------------------------------


def test_the_postgresql_example_has_the_required_fields_and_a_valid_name() -> None:
    (pg,) = of_kind("postgresql")
    assert (pg["apiVersion"], pg["kind"]) == POSTGRESQL
    name = pg["metadata"]["name"]
    assert DNS_1035.match(name) and len(name) <= 58
    spec = pg["spec"]
    assert isinstance(spec["teamId"], str) and spec["teamId"]
    assert isinstance(spec["numberOfInstances"], int) and spec["numberOfInstances"] >= 0
    assert spec["postgresql"]["version"] in {str(v) for v in range(10, 16)}
    assert re.fullmatch(r"[0-9]+(Mi|Gi|Ti)", spec["volume"]["size"])
    assert spec["enableLogicalBackup"] is True
    assert set(spec.get("databases", {}).values()) <= set(spec.get("users", {}))


# -- the operator's values --------------------------------------------------------------------


def unknown_keys(values: dict[str, Any], chart: dict[str, Any]) -> list[str]:
    """Key paths of ``values`` that chart 1.10.1 does not have (by the fixture)."""
    out = []
    for key, value in values.items():
        if key not in chart["top_level"]:
            out.append(key)
        elif isinstance(value, dict) and key not in ("podAnnotations", "podLabels"):
            known = chart["sections"].get(key, [])
            out += [f"{key}.{sub}" for sub in value if sub not in known]
    return out


def test_every_key_of_the_values_file_is_a_key_of_chart_1_10_1() -> None:
    chart = yaml.safe_load(CHART_KEYS.read_text(encoding="utf-8"))
    values = yaml.safe_load(VALUES.read_text(encoding="utf-8"))
    assert unknown_keys(values, chart) == []
    for path, allowed in chart["choices"].items():
        node: Any = values
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        assert node is None or node in allowed, path
    # the check itself: a misspelt key, a section whose keys are not listed
    bad = {"configLogicalBackup": {"logical_backup_s3_bucket_prefix": "x"}, "configKubernets": {}}
    assert unknown_keys(bad, chart) == [
        "configLogicalBackup.logical_backup_s3_bucket_prefix",
        "configKubernets",
    ]
    assert unknown_keys({"configTimeouts": {"ready_wait_timeout": "1m"}}, chart)


def test_the_values_carry_the_teams_backup_policy_without_credentials() -> None:
    lb = yaml.safe_load(VALUES.read_text(encoding="utf-8"))["configLogicalBackup"]
    assert lb["logical_backup_schedule"] == "0 * * * *"
    assert croniter.is_valid(lb["logical_backup_schedule"])
    assert lb["logical_backup_s3_sse"] == "AES256"
    assert lb["logical_backup_s3_retention_time"] == "1 month"
    assert lb["logical_backup_provider"] == "s3"
    assert lb["logical_backup_s3_bucket"] and lb["logical_backup_s3_region"]
    assert lb["logical_backup_s3_access_key_id"] == ""
    assert lb["logical_backup_s3_secret_access_key"] == ""


def test_the_install_command_points_at_the_packaged_chart_of_the_release() -> None:
    text = (DEPLOY / "README.md").read_text(encoding="utf-8")
    url = (
        "https://raw.githubusercontent.com/zalando/postgres-operator/v1.10.1/"
        "charts/postgres-operator/postgres-operator-1.10.1.tgz"
    )
    assert f"helm install postgres-operator \\\n  {url}" in text
    assert "-f deploy/values_postgres_operator.yaml" in text


# -- the Dockerfile ---------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    lines: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or (line.startswith("#") and not pending):
            continue
        pending += line[:-1] + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            word, _, rest = pending.partition(" ")
            lines.append((word.upper(), rest.strip()))
            pending = ""
    return lines


def final_stage() -> list[tuple[str, str]]:
    lines = dockerfile()
    last_from = max(i for i, (word, _) in enumerate(lines) if word == "FROM")
    return lines[last_from:]


def dockerfile_uid() -> int:
    users = [rest for word, rest in final_stage() if word == "USER"]
    return int(users[-1].split(":")[0])


def test_the_image_runs_pgdeck_as_a_numeric_non_root_user() -> None:
    stage = final_stage()
    assert stage[0][1].startswith("python:3.11-slim")
    assert dockerfile_uid() > 0  # numeric: Kubernetes proves runAsNonRoot only for a number
    assert [rest for word, rest in stage if word == "ENTRYPOINT"] == ['["pgdeck"]']


def test_the_image_installs_pgdeck_with_the_pinned_constraints_and_no_secrets() -> None:
    lines = dockerfile()
    runs_ = [rest for word, rest in lines if word == "RUN"]
    assert any("pip install -c constraints.txt ." in r for r in runs_)
    for word, rest in lines:
        if word in ("ENV", "ARG", "LABEL"):
            for token in shlex.split(rest):
                assert not SECRETISH_NAME.search(token.partition("=")[0]), (word, rest)
        assert not SECRETISH_VALUE.search(rest), (word, rest)
        if word in ("COPY", "ADD"):
            assert ".env" not in rest and "kube" not in rest and ".aws" not in rest
    ignore = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ignore[0] == "*"  # an allow-list: nothing reaches the build unless named
    assert not {"!.venv", "!.git", "!tests", "!.env"} & set(ignore)
