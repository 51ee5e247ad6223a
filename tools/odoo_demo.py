"""``make odoo-demo``: this addon in a running Odoo 19 with its demo data, beside the
built-in IBR simulator.

    python3 tools/odoo_demo.py --odoo PATH [--db NAME] [--port 8069] [--sim-port 8000] [--reset]

1. a virtual environment, ``.odoo-demo/venv``: Odoo's requirements.txt adjusted for this
   Python (see ``adjust_odoo_requirements``), requirements.txt and requirements-odoo.txt;
   made again only when one of them or the Python changes;
2. the local PostgreSQL (libpq's defaults and ``PG*`` variables), with a message naming
   the fix when it does not answer or refuses the role;
3. the simulator, its key kept in ``.odoo-demo/ibr-simulator-key.pem``, verifying our
   requests with our JWKS;
4. the database, created with the addon, ``contacts`` and demo data when it is absent
   (``--reset``: dropped first, with the simulator's key and the filestore);
5. the demo connection wired to the simulator and to this server (system parameters
   ``spp_dci_client_ibr.demo_ibr_url`` / ``demo_odoo_url``, then ``_demo_setup()``);
6. Odoo on 127.0.0.1, then the URL and the logins. Ctrl-C stops Odoo and the simulator.

Only the standard library here: it runs before the environment exists.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULE = "spp_dci_client_ibr"
STATE = ROOT / ".odoo-demo"
VENV = STATE / "venv"
KEY_FILE = STATE / "ibr-simulator-key.pem"
DATA_DIR = STATE / "data"
REQUIREMENTS = [ROOT / "requirements.txt", ROOT / "requirements-odoo.txt"]
# Odoo's requirement -> what is installed instead, for any Python
REPLACED = {
    # wheels for every Python Odoo 19 runs on: no compiler or libpq headers needed
    "psycopg2": "psycopg2-binary>=2.9.10,<2.10",
    # the versions Odoo pins do not accept the cryptography requirements.txt pins
    "pyopenssl": "pyOpenSSL>=24.3",
    # requests (pinned in requirements.txt) and the fastapi stack need a newer one
    "idna": "idna",
}
# Odoo's requirement not installed: it builds against libldap headers, and only the
# auth_ldap module uses it
DROPPED = {"python-ldap"}
BUILD_CONSTRAINT = "setuptools<81\n"  # old sdists still import pkg_resources
USERS = [
    ("officer", "runs checks: start here"),
    ("viewer", "reads checks, no personal data"),
    ("manager", "also deletes checks; figures, refused deliveries"),
    ("administrator", "also configures IBR senders and connections"),
]


class DemoError(Exception):
    """A problem the user can fix; its text says how."""


def say(text=""):
    print(text, flush=True)


# -- 1. the virtual environment ----------------------------------------------------------


def _name(requirement):
    spec = re.split(r"[\s;<>=!~\[]", requirement.strip(), maxsplit=1)[0]
    return spec.lower().replace("_", "-")


def adjust_odoo_requirements(text, pinned):
    """Odoo's requirements.txt lines as installed here: markers kept (pip picks the
    line for this Python), ``REPLACED`` and ``DROPPED`` applied, and libraries that
    ``pinned`` (our requirements' names) also lists left to our pins."""
    lines, replaced = [], set()
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        name = _name(line) if line else ""
        if not name or name in DROPPED or name in pinned:
            continue
        if name in REPLACED:
            if name not in replaced:
                lines.append(REPLACED[name])
                replaced.add(name)
            continue
        lines.append(line)
    return lines


def split_no_deps(text):
    """``(requirements, requirements installed without their dependencies)``."""
    usual, no_deps = [], []
    for raw in text.splitlines():
        line, _, comment = raw.partition("#")
        if line.strip():
            (no_deps if comment.strip() == "no-deps" else usual).append(line.strip())
    return usual, no_deps


def _pinned_names():
    names = set()
    for path in REQUIREMENTS:
        usual, no_deps = split_no_deps(path.read_text(encoding="utf-8"))
        names |= {_name(line) for line in usual + no_deps if not line.startswith("-")}
    return names


def _venv_python():
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_venv(odoo):
    """The environment's python, made or reused (when what it would install is the same)."""
    odoo_lines = adjust_odoo_requirements(
        (odoo / "requirements.txt").read_text(encoding="utf-8"), _pinned_names()
    )
    usual, no_deps = split_no_deps((ROOT / "requirements-odoo.txt").read_text(encoding="utf-8"))
    digest = hashlib.sha256("\n".join([sys.version, BUILD_CONSTRAINT, *odoo_lines]).encode())
    for path in REQUIREMENTS:
        digest.update(path.read_bytes())
    stamp = VENV / ".installed"
    python = _venv_python()
    if stamp.is_file() and stamp.read_text() == digest.hexdigest() and python.exists():
        say(f"Python environment: {VENV.relative_to(ROOT)} (reused)")
        return python
    say(f"Python environment: making {VENV.relative_to(ROOT)} (a few minutes, once)")
    shutil.rmtree(VENV, ignore_errors=True)
    _run([sys.executable, "-m", "venv", str(VENV)], "create the virtual environment")
    constraint = STATE / "build-constraints.txt"
    constraint.write_text(BUILD_CONSTRAINT)
    adjusted = STATE / "requirements-adjusted.txt"
    adjusted.write_text("\n".join(odoo_lines + usual) + "\n")
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "install", "--quiet"]
    env = dict(os.environ)
    if _pip_version(python) >= (26,):
        pip_constraint = ["--build-constraint", str(constraint)]
    else:  # older pips apply constraints to build environments too
        pip_constraint, env["PIP_CONSTRAINT"] = [], str(constraint)
    _run(pip + ["setuptools<81", "wheel"], "install setuptools", env=env)
    _run(
        pip + pip_constraint + ["-r", str(adjusted), "-r", str(ROOT / "requirements.txt")],
        "install Odoo's and the addon's requirements",
        env=env,
    )
    _run(pip + ["--no-deps"] + no_deps, "install the OCA fastapi addons", env=env)
    stamp.write_text(digest.hexdigest())
    return python


def _pip_version(python):
    out = subprocess.run(
        [str(python), "-m", "pip", "--version"], capture_output=True, text=True, check=True
    ).stdout
    return tuple(int(p) for p in re.findall(r"\d+", out.split()[1])[:2])


def _run(command, what, **kwargs):
    if subprocess.run(command, check=False, **kwargs).returncode:
        raise DemoError(f"Could not {what} (the command's output is above).")


# -- 2. PostgreSQL ------------------------------------------------------------------------

_PG_PROBE = r"""
import json, sys, psycopg2
db = sys.argv[1]
try:
    conn = psycopg2.connect(dbname="postgres")
except psycopg2.Error as exc:
    print(json.dumps({"error": str(exc).strip()})); sys.exit()
conn.autocommit = True
cr = conn.cursor()
cr.execute(
    "SELECT current_user, rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user"
)
user, can_create = cr.fetchone()
cr.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,))
exists, demo = bool(cr.fetchone()), None
if exists and len(sys.argv) > 2 and sys.argv[2] == "drop":
    cr.execute('DROP DATABASE "%s"' % db.replace('"', '""'))
    exists = False
elif exists:
    try:
        with psycopg2.connect(dbname=db) as other, other.cursor() as ocr:
            ocr.execute("SELECT state, demo FROM ir_module_module WHERE name = %s", (sys.argv[3],))
            demo = ocr.fetchone()
    except psycopg2.Error:
        demo = None
print(json.dumps({"user": user, "can_create": can_create, "exists": exists, "module": demo}))
"""


def explain_pg_error(error):
    """What to do about a refused PostgreSQL connection, from libpq's message."""
    where = os.environ.get("PGHOST") or "the local socket"
    role = re.search(r'role "([^"]+)" does not exist', error)
    if role:
        return (
            f"PostgreSQL refuses the role {role[1]}: create it with\n"
            f"    sudo -u postgres createuser --createdb {role[1]}\n"
            "or set PGUSER to a role that may create databases."
        )
    if "password" in error:
        return (
            "PostgreSQL wants a password for this role: set PGPASSWORD, or add it to "
            "~/.pgpass (host:port:*:role:password)."
        )
    if "could not connect" in error or "Connection refused" in error or "No such file" in error:
        return (
            f"No PostgreSQL server answers at {where}: install and start it (Debian/Ubuntu:\n"
            "    sudo apt-get install postgresql && sudo service postgresql start)\n"
            "or set PGHOST and PGPORT to where it runs."
        )
    return f"PostgreSQL refused the connection: {error}"


def postgres(python, db, drop=False):
    """The server's answer about ``db`` (dropped first when ``drop``); raises
    DemoError saying what to fix when the server or the role will not do."""
    args = [str(python), "-c", _PG_PROBE, db, "drop" if drop else "-", MODULE]
    answer = json.loads(subprocess.run(args, capture_output=True, text=True, check=True).stdout)
    if "error" in answer:
        raise DemoError(explain_pg_error(answer["error"]))
    if answer["user"] == "postgres":
        raise DemoError(
            "Odoo refuses to run as the PostgreSQL superuser postgres: create a role of "
            "your own with\n    sudo -u postgres createuser --createdb $USER\n"
            "and set PGUSER to it if it is not your login name."
        )
    if not answer["exists"] and not answer["can_create"]:
        raise DemoError(
            f"The PostgreSQL role {answer['user']} may not create databases: allow it with\n"
            f'    sudo -u postgres psql -c "ALTER ROLE {answer["user"]} CREATEDB"'
        )
    return answer


# -- 3.-6. the simulator, the database, Odoo ------------------------------------------------


def port_free(port):
    with socket.socket() as sock:
        # as the servers bind: connections of a previous run closing down do not count
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_for(url, process, seconds, what, log):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DemoError(f"{what} stopped at start:\n{_tail(log)}")
        try:
            with opener.open(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    raise DemoError(f"{what} did not answer at {url} within {seconds} s:\n{_tail(log)}")


def _tail(path, lines=15):
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


_WIRE = r"""
import json
params = env["ir.config_parameter"].sudo()
params.set_param("spp_dci_client_ibr.demo_ibr_url", IBR_URL)
params.set_param("spp_dci_client_ibr.demo_odoo_url", ODOO_URL)
params.set_param("web.base.url", ODOO_URL)
conn = env["spp.dci.ibr.connection"]._demo_setup()
env.cr.commit()
print("DEMO-WIRED " + json.dumps(
    {"loaded": bool(conn), "name": conn.name or "", "ready": bool(conn.is_ready),
     "problem": conn.config_problem or "", "kid": conn.signing_kid or ""}))
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--odoo", required=True, help="an Odoo 19 source tree (with odoo-bin)")
    parser.add_argument("--db", default="spp_ibr_demo")
    parser.add_argument("--port", type=int, default=8069, help="Odoo's HTTP port")
    parser.add_argument("--sim-port", type=int, default=8000, help="the simulator's port")
    parser.add_argument("--reset", action="store_true", help="start over: a new database")
    args = parser.parse_args(argv)
    processes = {}  # what -> Popen, stopped in reverse order
    links = Path(tempfile.mkdtemp(prefix="odoo-demo-addons-"))
    try:
        return _demo(args, processes, links)
    except DemoError as exc:
        say(f"\nmake odoo-demo: {exc}")
        return 1
    except KeyboardInterrupt:
        say("\nStopping Odoo and the simulator.")
        return 0
    finally:
        _stop(processes)
        shutil.rmtree(links, ignore_errors=True)


def _check_tree(odoo):
    release = odoo / "odoo" / "release.py"
    if not (odoo / "odoo-bin").is_file() or not release.is_file():
        raise DemoError(f"{odoo} is not an Odoo source tree (no odoo-bin, odoo/release.py).")
    found = re.search(r"version_info\s*=\s*\((\d+)", release.read_text(encoding="utf-8"))
    if not found or found[1] != "19":
        raise DemoError(f"{odoo} is not Odoo 19 (odoo/release.py).")
    if sys.version_info < (3, 10):  # noqa: UP036 - python3 may be older than the core needs
        raise DemoError(f"Odoo 19 needs Python 3.10 or newer; this is {sys.version.split()[0]}.")


def _demo(args, processes, links):
    odoo = Path(args.odoo).expanduser().resolve()
    _check_tree(odoo)
    for port, variable in ((args.port, "ODOO_PORT"), (args.sim_port, "SIM_PORT")):
        if not port_free(port):
            raise DemoError(f"Port {port} is in use: choose another one with {variable}=<port>.")
    STATE.mkdir(exist_ok=True)
    python = ensure_venv(odoo)
    db = postgres(python, args.db, drop=args.reset)
    if args.reset:
        say(f"RESET: database {args.db} dropped, simulator key and filestore removed")
        KEY_FILE.unlink(missing_ok=True)
        shutil.rmtree(DATA_DIR / "filestore" / args.db, ignore_errors=True)
    elif db["exists"] and db["module"] != ["installed", True]:
        raise DemoError(
            f"Database {args.db} exists but is not this demo (the module with demo data). "
            "Start over with RESET=1, or choose another database with DEMO_DB=<name>."
        )
    (links / MODULE).symlink_to(ROOT, target_is_directory=True)
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    addons = [odoo / "odoo" / "addons", odoo / "addons", Path(site) / "odoo" / "addons", links]
    odoo_url, ibr_url = f"http://127.0.0.1:{args.port}", f"http://127.0.0.1:{args.sim_port}"
    common = [
        str(python),
        str(odoo / "odoo-bin"),
        "-d",
        args.db,
        "--db-filter",
        f"^{re.escape(args.db)}$",
        "--addons-path",
        ",".join(map(str, addons)),
        "--data-dir",
        str(DATA_DIR),
    ]
    sim_log = STATE / "simulator.log"
    simulator = [str(python), "-m", "dci", "simulate", "--port", str(args.sim_port)]
    simulator += ["--key-file", str(KEY_FILE), "--client-jwks", odoo_url + "/dci_api/ibr/jwks.json"]
    processes["The simulator"] = _spawn(simulator, sim_log)
    wait_for(
        ibr_url + "/.well-known/jwks.json", processes["The simulator"], 30, "The simulator", sim_log
    )
    say(f"IBR simulator: {ibr_url} (key kept in {KEY_FILE.relative_to(ROOT)})")
    if not db["exists"] or args.reset:
        say(f"Database {args.db}: creating it with demo data (about a minute)")
        install_log = STATE / "install.log"
        install_log.unlink(missing_ok=True)
        install = common + ["-i", f"{MODULE},contacts", "--with-demo", "--stop-after-init"]
        if subprocess.run(install + ["--logfile", str(install_log)], check=False).returncode:
            raise DemoError(f"Odoo could not create the database:\n{_tail(install_log)}")
    else:
        say(f"Database {args.db}: reused (RESET=1 starts over)")
    wired = _wire(common, ibr_url, odoo_url)
    odoo_log = STATE / "odoo.log"
    serve = common + ["--http-interface", "127.0.0.1", "--http-port", str(args.port)]
    serve += ["--max-cron-threads", "1", "--logfile", str(odoo_log)]
    processes["Odoo"] = _spawn(serve, odoo_log)
    wait_for(odoo_url + "/web/login", processes["Odoo"], 180, "Odoo", odoo_log)
    _banner(args, odoo_url, ibr_url, wired)
    logs = {"The simulator": sim_log, "Odoo": odoo_log}
    while True:  # until Ctrl-C, or one of them stops by itself
        for what, process in processes.items():
            if process.poll() is not None:
                raise DemoError(f"{what} stopped:\n{_tail(logs[what])}")
        time.sleep(1)


def _wire(common, ibr_url, odoo_url):
    script = f"IBR_URL = {ibr_url!r}\nODOO_URL = {odoo_url!r}\n" + _WIRE
    shell = [*common[:2], "shell", *common[2:], "--no-http", "--log-level", "warn"]
    done = subprocess.run(shell, input=script, capture_output=True, text=True, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("DEMO-WIRED ")), None)
    if done.returncode or not line:
        raise DemoError(f"Could not wire the demo connection:\n{done.stderr[-3000:]}")
    wired = json.loads(line.split(" ", 1)[1])
    if not wired["loaded"]:
        raise DemoError(
            "The database has the module but not its demo data (Odoo installs a module "
            f"without it when a demo file fails: see {STATE.relative_to(ROOT)}/install.log). "
            "Start over with RESET=1."
        )
    return wired


def _spawn(command, log):
    # its own session: Ctrl-C reaches this script, which stops each child once
    with open(log, "ab") as out:
        return subprocess.Popen(
            command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(processes):
    """SIGTERM once to each (Odoo, then the simulator): both stop cleanly on it."""
    for process in reversed(processes.values()):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes.values():
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _banner(args, odoo_url, ibr_url, wired):
    state = "ready" if wired["ready"] else "NOT READY: " + wired["problem"].replace("\n", " ")
    say()
    say("The IBR demo is running.")
    say(f"  Odoo:        {odoo_url}  (database {args.db})")
    say(f"  Simulator:   {ibr_url}  (IBR sender ibr.sim)")
    say(f"  Connection:  {wired['name']}: {state}")
    say("  Log in as (password = login):")
    for login, role in USERS:
        say(f"    {login:<14} {role}")
    say(f"    {'admin':<14} Odoo's own administrator (password admin)")
    say(f"  Logs:        {STATE.relative_to(ROOT)}/odoo.log, simulator.log")
    say("Ctrl-C stops Odoo and the simulator.")


def _interrupted(*_args):
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupted)  # stopped by a service manager or kill
    signal.signal(signal.SIGHUP, _interrupted)  # its terminal closed
    sys.exit(main())
