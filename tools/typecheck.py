"""Type-check the archc package as it is installed: `python tools/typecheck.py [mypy args]`.

mypy cannot follow setuptools' `package-dir` (the folders dsl/, compiler/, library/, search/
install as archc.dsl, archc.compiler, …): run on the folders, every `archc.dsl` import would be
Any. This builds the package's real shape from symlinks in a temporary folder and checks that.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUBPACKAGES = {"dsl": "dsl", "compiler": "compiler", "library": "library", "search": "search"}


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        package = Path(tmp) / "archc"
        package.mkdir()
        for source in (ROOT / "archc").iterdir():
            if source.suffix in (".py", ".typed"):
                (package / source.name).symlink_to(source)
        for name, folder in SUBPACKAGES.items():
            (package / name).symlink_to(ROOT / folder, target_is_directory=True)
        command = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
                   "-p", "archc", *sys.argv[1:]]
        return subprocess.run(command, cwd=tmp).returncode


if __name__ == "__main__":
    sys.exit(main())
