"""The protocol core imports no Odoo and only relative imports of itself."""

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "dci"
CORE_FILES = sorted(CORE.rglob("*.py"))


def test_no_odoo_or_absolute_self_imports():
    offenders = []
    for path in CORE_FILES:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            offenders += [
                f"{path.name}: {name}" for name in names if name.split(".")[0] in ("odoo", "dci")
            ]
    assert CORE_FILES and offenders == []


def test_importing_every_module_never_imports_odoo():
    modules = [
        "dci." + ".".join(p.relative_to(CORE).with_suffix("").parts)
        for p in CORE_FILES
        if p.name not in ("__init__.py", "__main__.py")
    ]
    script = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'odoo' or name.startswith('odoo.'):\n"
        "            raise ImportError('odoo imported: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        f"import importlib\nfor m in {modules!r}: importlib.import_module(m)\n"
        "print(len([m for m in sys.modules if m.startswith('dci')]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=CORE.parent, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= len(modules)
