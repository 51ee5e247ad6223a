"""``make odoo-demo``'s driver (tools/odoo_demo.py), the parts that need no Odoo:
what it installs in place of Odoo's requirements, and what it tells the user."""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("odoo_demo", ROOT / "tools" / "odoo_demo.py")
odoo_demo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(odoo_demo)

# lines as Odoo 19's requirements.txt writes them
ODOO_REQUIREMENTS = """\
# The officially supported versions
Babel==2.10.3 ; python_version >= '3.11' and python_version < '3.13'
cryptography==3.4.8; python_version < '3.12'  # incompatibility between ...
cryptography==42.0.8 ; python_version >= '3.12'
idna==2.10 ; python_version < '3.12'  # requests 2.25.1 depends on idna<3
psycopg2==2.9.5 ; python_version == '3.11'
psycopg2==2.9.9 ; python_version >= '3.12' and python_version < '3.13' # (Noble)
pyopenssl==21.0.0 ; python_version < '3.12'
python-ldap==3.4.0 ; sys_platform != 'win32' and python_version < '3.12'
requests==2.31.0 ; python_version >= '3.11' # (Noble)
pytz  # no version pinning
"""


def test_odoo_requirements_are_adjusted_and_our_pins_win():
    pinned = odoo_demo._pinned_names()
    assert {"cryptography", "requests", "urllib3", "fastapi"} <= pinned
    lines = odoo_demo.adjust_odoo_requirements(ODOO_REQUIREMENTS, pinned)
    assert lines == [
        "Babel==2.10.3 ; python_version >= '3.11' and python_version < '3.13'",
        "idna",
        "psycopg2-binary>=2.9.10,<2.10",
        "pyOpenSSL>=24.3",
        "pytz",
    ]


def test_the_oca_addons_are_installed_without_their_dependencies():
    usual, no_deps = odoo_demo.split_no_deps((ROOT / "requirements-odoo.txt").read_text())
    assert [re.split("==", line)[0] for line in no_deps] == [
        "odoo-addon-fastapi",
        "odoo-addon-endpoint-route-handler",
    ]
    assert "fastapi==0.165.0" in usual
    assert all(re.fullmatch(r"[\w.-]+==[\w.]+", line) for line in usual + no_deps), "pinned"


@pytest.mark.parametrize(
    ("error", "fix"),
    [
        ('FATAL:  role "alice" does not exist', "sudo -u postgres createuser --createdb alice"),
        (
            'connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: '
            "No such file or directory",
            "sudo service postgresql start",
        ),
        ('FATAL:  password authentication failed for user "bob"', "PGPASSWORD"),
        ("something else entirely", "something else entirely"),
    ],
)
def test_a_refused_postgres_connection_names_the_fix(error, fix):
    assert fix in odoo_demo.explain_pg_error(error)


def test_a_tree_that_is_not_odoo_19_is_refused(tmp_path, capsys):
    assert odoo_demo.main(["--odoo", str(tmp_path)]) == 1
    assert "is not an Odoo source tree" in capsys.readouterr().out
    (tmp_path / "odoo").mkdir()
    (tmp_path / "odoo-bin").write_text("")
    (tmp_path / "odoo" / "release.py").write_text("version_info = (18, 0, 0, 'final', 0, '')\n")
    assert odoo_demo.main(["--odoo", str(tmp_path)]) == 1
    assert "is not Odoo 19" in capsys.readouterr().out


def test_a_port_in_use_is_named(tmp_path, capsys):
    import socket

    (tmp_path / "odoo").mkdir()
    (tmp_path / "odoo-bin").write_text("")
    (tmp_path / "odoo" / "release.py").write_text("version_info = (19, 0, 0, 'final', 0, '')\n")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert not odoo_demo.port_free(port)
        assert odoo_demo.main(["--odoo", str(tmp_path), "--port", str(port)]) == 1
    assert f"Port {port} is in use: choose another one with ODOO_PORT=" in capsys.readouterr().out
