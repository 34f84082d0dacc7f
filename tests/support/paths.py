"""Where the repository is, for tests that read its files or start its processes."""

from __future__ import annotations

from pathlib import Path

#: The repository root (the directory holding service/ and tests/).
ROOT = Path(__file__).resolve().parents[2]
