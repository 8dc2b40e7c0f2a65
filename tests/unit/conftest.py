"""Make the bundle's Python (tools, role plugins) importable in unit tests."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for sub in ("tools", "roles/slurm_client/filter_plugins", "roles/spawn_profiles/files", "roles/spawn_profiles/filter_plugins",
            "roles/notebook_env/files", "roles/jupyterhub/files", "roles/chp/files", "roles/gridengine/filter_plugins"):
    sys.path.insert(0, str(ROOT / sub))
