"""deploy/k8s/ against the Kubernetes API schemas of every version the project supports
(kubernetes-validate, strict: an unknown or misplaced field is an error, as ``kubectl apply
--validate=strict`` makes it)."""

from __future__ import annotations

import pytest
import yaml

from tests.system.deployment import K8S

pytestmark = pytest.mark.system

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="kubernetes-validate is a test dependency (make test)"
)

#: The Kubernetes versions the manifests are written for (README, "Kubernetes").
SUPPORTED = ("1.30", "1.31", "1.32", "1.33", "1.34", "1.35")
MANIFESTS = sorted(path for path in K8S.glob("*.yaml") if path.name != "kustomization.yaml")


@pytest.mark.parametrize("version", SUPPORTED)
@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda path: path.name)
def test_every_manifest_is_valid_in_every_supported_version(manifest, version: str) -> None:
    for document in yaml.safe_load_all(manifest.read_text(encoding="utf-8")):
        if document is None:
            continue
        kubernetes_validate.validate(document, version, strict=True)


def test_an_unknown_field_is_refused() -> None:
    """The check itself: strict validation refuses what a typo would make."""
    deployment = next(p for p in MANIFESTS if p.name == "deployment.yaml")
    document = yaml.safe_load(deployment.read_text(encoding="utf-8"))
    document["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(document, SUPPORTED[-1], strict=True)
