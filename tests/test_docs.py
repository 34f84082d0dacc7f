"""The README stays in step with the registry and the settings."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

from service.losses.registry import REGISTRY
from service.ops.settings import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_readme_starts_with_the_two_commands() -> None:
    head = README.split("\n## ", 1)[0]
    assert "make run" in head
    assert "make test" in head


def test_readme_lists_every_loss_and_alias() -> None:
    for spec in REGISTRY.values():
        assert f"`{spec.name}`" in README, spec.name
        for alias in spec.aliases:
            assert f"`{alias}`" in README, alias


def test_readme_documents_every_setting() -> None:
    for name in Settings.model_fields:
        assert f"`LOSS_SERVICE_{name.upper()}`" in README, name


def test_ci_runs_the_readme_test_command() -> None:
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci


def test_readme_and_pyproject_name_the_installed_docs_assets_package() -> None:
    """/docs' assets come from one pinned package; the README says which version."""
    installed = version("fastapi-standalone-docs")
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text("utf-8")
    assert f'"fastapi-standalone-docs=={installed}"' in pyproject
    assert f"`fastapi-standalone-docs` ships, pinned at {installed}" in " ".join(README.split())
