"""A virtualenv with the ledger hook installed by pip, as readiness installs it on a host.

For the hook's tests, the burst probe's and the hook's benchmark: one way to make it.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

from orchestrator.ledger_hook import build_wheel


def venv_with_hook(root: Path, *, see_project: bool = False) -> Path:
    """A fresh venv under ``root`` holding only the hook's wheel; its interpreter's path.

    ``see_project``: it also sees this project's packages (requests, httpx, pytest),
    after its own, through a .pth file.
    """
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    wheel = build_wheel(root / "wheels")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "-q", "--no-index", "--no-deps", str(wheel)], check=True)
    if see_project:
        purelib = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        (Path(purelib) / "zz_project.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return python
