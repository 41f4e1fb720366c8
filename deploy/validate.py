"""Validates the Helm chart and the compose files without Docker or Kubernetes.

    python deploy/validate.py          (tests/run runs it with the test venv's python)

- `helm lint --strict` (Helm itself, bundled by helm-python-sdk) with no values and with each
  values file in deploy/helm/sluice/ci/;
- renders the chart with each of them and checks every manifest: YAML without duplicate keys,
  kubernetes-validate --strict (unknown fields are errors) for each Kubernetes version in
  KUBE_VERSIONS, and the chart's own promises (non-root, read-only root filesystem, all
  capabilities dropped, seccomp RuntimeDefault, HTTP probes, no AWS keys as literal values);
- the compose files against the Compose specification (check-jsonschema's vendor.compose-spec);
- then checks that a misspelt value fails lint and a broken copy of the chart (an unknown
  field) fails validation.

Prints `ok ...` per check and exits non-zero at the first failure.
"""

import os
import shutil
import subprocess
import sys
import tempfile

import helm_python as helm
import kubernetes_validate
import yaml

DEPLOY = os.path.dirname(os.path.abspath(__file__))
CHART = os.path.join(DEPLOY, "helm", "sluice")
COMPOSE_FILES = ["docker-compose.yaml", "docker-compose.test.yaml"]
KUBE_VERSIONS = ["1.29.0", "1.33.0"]
# Kinds from CRDs that kubernetes-validate has no schema for; checked by YAML only.
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}
POD_KINDS = {"Deployment", "StatefulSet", "Pod"}


class ValidationFailed(Exception):
    """A check failed; the message says which and why."""


def ok(text):
    print(f"ok {text}", flush=True)


class UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key written twice in one mapping."""


def _unique_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ValidationFailed(f"duplicate key {key!r} at line {key_node.start_mark.line + 1}")
        seen.add(key)
    return loader.construct_mapping(node, deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def values_files(chart):
    ci = os.path.join(chart, "ci")
    return sorted(os.path.join(ci, f) for f in os.listdir(ci) if f.endswith(".yaml"))


def load_values(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def lint(chart, values, label):
    result = helm.lint(chart, values, strict=True, namespace="sluice")
    problems = [m for m in result.get("messages", []) if m.get("severity", 0) >= 2]
    if result.get("errors") or problems:
        raise ValidationFailed(f"helm lint --strict {label}: {result}")
    ok(f"helm lint --strict {label}")


def render(chart, values):
    """{template path: [manifest dicts]} of the chart rendered with values."""
    loaded = helm.Chart.load(chart)
    try:
        out = loaded.render(values, name="release", namespace="sluice")
    finally:
        loaded.close()
    manifests = {}
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            continue
        try:
            docs = [d for d in yaml.load_all(text, Loader=UniqueKeyLoader) if d]
        except (yaml.YAMLError, ValidationFailed) as e:
            raise ValidationFailed(f"{path}: not valid YAML: {e}") from e
        manifests[path] = docs
    return manifests


def pod_spec(doc):
    if doc["kind"] == "Pod":
        return doc["spec"]
    return doc["spec"]["template"]["spec"]


def check_promises(path, doc):
    """The chart's security and probe promises, for every pod it renders."""
    if doc["kind"] not in POD_KINDS:
        return
    spec = pod_spec(doc)
    where = f"{path} {doc['kind']} {doc['metadata']['name']}"
    pod_sc = spec.get("securityContext", {})
    if not pod_sc.get("runAsNonRoot") or pod_sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        raise ValidationFailed(f"{where}: pod must run as non-root with seccomp RuntimeDefault")
    for c in spec["containers"]:
        sc = c.get("securityContext", {})
        if not sc.get("readOnlyRootFilesystem") or sc.get("allowPrivilegeEscalation") is not False:
            raise ValidationFailed(f"{where}/{c['name']}: read-only root, no privilege escalation")
        if sc.get("capabilities", {}).get("drop") != ["ALL"]:
            raise ValidationFailed(f"{where}/{c['name']}: must drop all capabilities")
        for env in c.get("env", []):
            if env["name"].startswith("AWS_SECRET") and "value" in env:
                raise ValidationFailed(f"{where}/{c['name']}: {env['name']} as a literal value")
        if doc["kind"] != "Pod":
            for probe in ("livenessProbe", "readinessProbe"):
                if "httpGet" not in c.get(probe, {}):
                    raise ValidationFailed(f"{where}/{c['name']}: {probe} must be an HTTP probe")


def validate_manifests(manifests, label):
    count = 0
    for path, docs in manifests.items():
        for doc in docs:
            check_promises(path, doc)
            if (doc.get("apiVersion"), doc.get("kind")) in CRD_KINDS:
                continue
            for version in KUBE_VERSIONS:
                try:
                    kubernetes_validate.validate(doc, version, strict=True)
                except kubernetes_validate.ValidationError as e:
                    raise ValidationFailed(
                        f"{label}: {path} {doc.get('kind')} fails kubernetes-validate --strict "
                        f"-k {version}: {e.message} at {'/'.join(map(str, e.path))}"
                    ) from e
            count += 1
    ok(f"{label}: {count} manifests pass kubernetes-validate --strict for {', '.join(KUBE_VERSIONS)}")


def validate_chart(chart):
    lint(chart, None, "(no values)")
    for path in values_files(chart):
        label = os.path.relpath(path, chart)
        values = load_values(path)
        lint(chart, values, label)
        validate_manifests(render(chart, values), label)


def validate_compose():
    files = [os.path.join(DEPLOY, f) for f in COMPOSE_FILES]
    checker = os.path.join(os.path.dirname(sys.executable), "check-jsonschema")
    done = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ValidationFailed(f"compose files against the Compose spec:\n{done.stdout}{done.stderr}")
    ok(f"{', '.join(COMPOSE_FILES)} match the Compose specification")


def broken_chart_fails():
    """A misspelt value must fail lint (values.schema.json), and a copy of the chart with an
    unknown field in a Deployment must fail validation."""
    result = helm.lint(CHART, {"executor": {"replicaz": 3}}, strict=True, namespace="sluice")
    if not result.get("errors"):
        raise ValidationFailed("helm lint accepted a misspelt value (executor.replicaz)")
    ok("a misspelt value fails helm lint (values.schema.json)")
    both = {
        "aws": {"credentials": {"existingSecret": "keys"}},
        "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/r"}},
    }
    # Helm's lint only logs `fail`; an install renders, and there it stops.
    try:
        render(CHART, both)
    except helm.HelmError as e:
        ok(f"static AWS keys and an IRSA role together fail to render ({str(e)[:80]}...)")
    else:
        raise ValidationFailed("the chart rendered with both static AWS keys and an IRSA role")
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, "sluice")
        shutil.copytree(CHART, copy)
        template = os.path.join(copy, "templates", "executor-deployment.yaml")
        with open(template, encoding="utf-8") as f:
            text = f.read()
        broken = text.replace("  selector:\n    matchLabels:", "  replicaz: 3\n  selector:\n    matchLabels:", 1)
        assert broken != text, "the mutation found nothing to break"
        with open(template, "w", encoding="utf-8") as f:
            f.write(broken)
        try:
            validate_manifests(render(copy, {}), "broken copy")
        except ValidationFailed as e:
            ok(f"a broken chart fails validation ({str(e).splitlines()[0][:100]}...)")
            return
    raise ValidationFailed("a chart with an unknown field passed validation")


def main():
    try:
        validate_chart(CHART)
        validate_compose()
        broken_chart_fails()
    except (ValidationFailed, helm.HelmError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print("deploy validation: all checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
