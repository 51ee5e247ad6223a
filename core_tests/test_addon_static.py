"""Static checks of the Odoo addon files, runnable without Odoo.

They catch what would otherwise only fail at install time in real Odoo:
missing data files, malformed XML, Odoo 19 view syntax, access rows naming
unknown models or groups, Python that does not compile.
"""

import ast
import csv
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ast.literal_eval((ROOT / "__manifest__.py").read_text())
XML_FILES = sorted(p for p in ROOT.rglob("*.xml") if ".venv" not in p.parts)
PY_FILES = sorted(
    p for p in ROOT.rglob("*.py") if ".venv" not in p.parts and "core_tests" not in p.parts
)


def _stored_models():
    """``_name`` of every Model/TransientModel class (abstract ones need no access rows)."""
    names = set()
    for path in [*(ROOT / "models").glob("*.py"), *(ROOT / "wizards").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef):
                continue
            bases = {ast.unparse(base) for base in node.bases}
            if not bases & {"models.Model", "models.TransientModel"}:
                continue
            for stmt in node.body:
                if isinstance(stmt, ast.Assign) and [ast.unparse(t) for t in stmt.targets] == [
                    "_name"
                ]:
                    names.add(stmt.value.value)
    return names


MODEL_NAMES = _stored_models()


def test_manifest_shape():
    assert MANIFEST["version"].startswith("19.0.")
    assert MANIFEST["license"] == "LGPL-3"
    assert {"base", "mail", "fastapi"} <= set(MANIFEST["depends"])
    requirements = (ROOT / "requirements.txt").read_text()
    for library in MANIFEST["external_dependencies"]["python"]:
        assert re.search(rf"^{library}==", requirements, re.M), f"{library} is not pinned"


@pytest.mark.parametrize("name", MANIFEST["data"])
def test_manifest_data_files_exist(name):
    assert (ROOT / name).is_file()


def test_every_xml_file_is_loaded():
    listed = {ROOT / name for name in MANIFEST["data"]}
    assert set(XML_FILES) - listed == set()


@pytest.mark.parametrize("path", XML_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_xml_is_odoo19(path):
    tree = ET.parse(path)
    assert tree.getroot().tag == "odoo"
    for node in tree.iter():
        assert node.tag != "tree", "Odoo 19 views use <list>"
        assert "attrs" not in node.attrib and "states" not in node.attrib, node.attrib
    text = path.read_text()
    assert "groups_id" not in text, "Odoo 19 renamed groups_id to group_ids"


def test_access_rows_name_known_models_and_groups():
    groups_xml = (ROOT / "security/groups.xml").read_text()
    local_groups = set(re.findall(r'<record id="(\w+)" model="res.groups"', groups_xml))
    with (ROOT / "security/ir.model.access.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows
    covered = set()
    for row in rows:
        model = row["model_id:id"].removeprefix("model_").replace("_", ".")
        covered.add(row["model_id:id"])
        group = row["group_id:id"]
        assert "." in group or group in local_groups, group
        assert {row[f"perm_{p}"] for p in ("read", "write", "create", "unlink")} <= {"0", "1"}
        assert model
    expected = {"model_" + name.replace(".", "_") for name in MODEL_NAMES}
    assert expected - covered == set(), "every model needs access rows"


@pytest.mark.parametrize("path", PY_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_compiles_without_name_get(path):
    source = path.read_text()
    tree = ast.parse(source)
    names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    assert "name_get" not in names, "Odoo 19 computes display_name"
    assert "_sql_constraints" not in source, "Odoo 19 uses models.Constraint"


def test_neutralize_blanks_secrets():
    sql = (ROOT / "data/neutralize.sql").read_text()
    for column in ("signing_private_key", "bearer_token", "oauth_client_secret", "callback_token"):
        assert column in sql
