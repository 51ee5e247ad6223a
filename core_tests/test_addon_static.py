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
LOCAL = {".venv", ".odoo-demo"}  # environments made here (make test, make odoo-demo)
XML_FILES = sorted(p for p in ROOT.rglob("*.xml") if not LOCAL & set(p.parts))
PY_FILES = sorted(
    p for p in ROOT.rglob("*.py") if not LOCAL & set(p.parts) and "core_tests" not in p.parts
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


@pytest.mark.parametrize("name", [*MANIFEST["data"], *MANIFEST["demo"]])
def test_manifest_data_files_exist(name):
    assert (ROOT / name).is_file()


def test_every_xml_file_is_loaded():
    listed = {ROOT / name for name in [*MANIFEST["data"], *MANIFEST["demo"]]}
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


# -- OpenSPP2 parity and packaging -------------------------------------------

UPSTREAM_XML_IDS = {
    "view_dci_duplication_check_tree",
    "view_dci_duplication_check_form",
    "view_dci_duplication_check_search",
    "action_dci_duplication_check",
    "menu_dci_duplication_check",
    "view_spp_dci_ibr_sender_tree",
    "view_spp_dci_ibr_sender_form",
    "view_spp_dci_ibr_sender_search",
    "action_spp_dci_ibr_sender",
    "menu_spp_dci_ibr_sender",
}


def _xml_ids():
    ids = set()
    for path in XML_FILES:
        for node in ET.parse(path).iter():
            if node.tag in ("record", "menuitem") and node.get("id"):
                ids.add(node.get("id"))
    return ids


def test_upstream_xml_ids_are_declared():
    assert UPSTREAM_XML_IDS - _xml_ids() == set()


def test_every_xml_reference_to_this_module_exists():
    ids = _xml_ids()
    pattern = re.compile(r"[\"'(,]spp_dci_client_ibr\.(\w+)[\"',)]")
    for path in [*PY_FILES, *XML_FILES]:
        for name in pattern.findall(path.read_text(encoding="utf-8")):
            if name.startswith(("model_", "field_")) or name in ("pot", "po"):
                continue
            if "allow_" in name or name in {
                "key_refresh_min_interval",
                "signature_clock_skew",
                "signature_max_lifetime",
                "callback_max_bytes",
                "api_docs",
                "demo_ibr_url",
                "demo_odoo_url",
            }:
                continue  # system parameter keys
            if name == "action_program_check_in_ibr":
                continue  # made at run time, only where programmes exist (enrolment_gate.py)
            assert name in ids, f"{path.relative_to(ROOT)} refers to unknown xml id {name}"


def test_version_is_not_below_upstream():
    parts = tuple(int(p) for p in MANIFEST["version"].split("."))
    assert parts >= (19, 0, 2, 0, 0)


def test_router_file_has_upstreams_name():
    assert (ROOT / "routers/callback.py").is_file()
    assert not (ROOT / "routers/ibr_callbacks.py").exists()


def test_oca_packaging_files():
    for name in (
        "static/description/icon.png",
        "static/description/index.html",
        "i18n/spp_dci_client_ibr.pot",
        "i18n/fr.po",
    ):
        assert (ROOT / name).is_file(), name
    assert (ROOT / "static/description/icon.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _msgids(path):
    text = path.read_text(encoding="utf-8")
    return {
        "".join(re.findall(r'"(.*)"', block))
        for block in re.findall(r'^msgid ((?:".*"\n)+)', text, re.M)
    } - {""}


def test_french_po_has_the_terms_of_the_pot():
    pot = _msgids(ROOT / "i18n/spp_dci_client_ibr.pot")
    french = _msgids(ROOT / "i18n/fr.po")
    assert pot == french
    translated = re.findall(r'^msgstr "(.+)"$', (ROOT / "i18n/fr.po").read_text(), re.M)
    assert len(translated) >= 100


def test_readme_is_built_from_the_fragments():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_readme", ROOT / "tools/gen_readme.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert (ROOT / "README.rst").read_text(encoding="utf-8") == gen.build_readme(), (
        "README.rst is stale: python tools/gen_readme.py"
    )
    assert "Coming from OpenSPP2" in (ROOT / "static/description/index.html").read_text()


def test_readme_renders_without_a_docutils_warning():
    import docutils.core

    docutils.core.publish_string(
        (ROOT / "README.rst").read_text(encoding="utf-8"),
        writer_name="html",
        settings_overrides={"halt_level": 2, "report_level": 2},  # a warning raises
    )
