"""Registry-scale sweep: N registrants → the officer's "Check in IBR" → all N answered.

Runs against a real Odoo 19 server (started here, threaded or prefork) on a
database where this addon is installed, with the built-in IBR simulator
answering over real HTTP callbacks. Prints, per mode and N, in one run:

- end-to-end checks per second (click → last check completed), and the CLI's
  time for the same ids against the same simulator (the reference);
- how long the officer's click and the wizard took;
- per on-search callback: server time (from Odoo's request log, whose query
  counter does not see the thread pool where the ORM work runs: the queries of
  a 50-item callback are counted by ``odoo_correlation.py``);
- rows and bytes added per check (all tables this path writes, with indexes);
- orphans (answers that found no check) and the server's peak memory.

It measures and prints; it asserts nothing. Usage (paths are your Odoo's)::

    python benchmarks/odoo_sweep.py --python /path/venv/bin/python \\
        --odoo-bin /path/odoo-bin --addons-path A,B,C --db ibr_bench \\
        --db-args "--db_host 127.0.0.1 --db_user root" --n 1000 10000 --modes threaded prefork

The database must exist with the addon installed (``-i spp_dci_client_ibr
--stop-after-init``) and ``admin``/``admin`` as administrator.
"""

import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dci.simulator import IbrSimulator  # noqa: E402

IDS = ["1000000001", "1000000002", "1000000003"]  # confirmed, possible, no match
TABLES = [
    "spp_dci_duplication_check",
    "spp_dci_duplication_match",
    "spp_dci_check_request",
    "spp_dci_ibr_transaction",
    "spp_dci_callback_orphan",
    "spp_dci_replay_entry",
    "mail_message",
    "mail_tracking_value",
    "mail_followers",
]
# werkzeug request line: "POST /dci_api/ibr/on-search HTTP/1.1" 200 - <queries> <sql s> <other s>
CALLBACK_LINE = re.compile(r'"POST /dci_api/ibr/on-search HTTP/1\.1" 200 - (\d+) ([\d.]+) ([\d.]+)')


class Rpc:
    """JSON-RPC to Odoo as one user."""

    def __init__(self, url, db, login, password):
        self.url, self.db, self.password = url, db, password
        self.session = requests.Session()
        self.uid = self.call("common", "login", db, login, password)

    def call(self, service, method, *args):
        payload = {"jsonrpc": "2.0", "method": "call", "params": {}}
        payload["params"] = {"service": service, "method": method, "args": list(args)}
        answer = self.session.post(f"{self.url}/jsonrpc", json=payload, timeout=3600).json()
        if "error" in answer:
            raise RuntimeError(answer["error"]["data"]["message"])
        return answer["result"]

    def __call__(self, model, method, *args, **kwargs):
        return self.call(
            "object", "execute_kw", self.db, self.uid, self.password, model, method, args, kwargs
        )


def start_server(args, mode, port, logfile):
    command = [
        args.python,
        args.odoo_bin,
        "-d",
        args.db,
        *shlex.split(args.db_args),
        f"--addons-path={args.addons_path}",
        f"--http-port={port}",
        "--http-interface=127.0.0.1",
        f"--logfile={logfile}",
        "--log-level=info",
        "--max-cron-threads=2",
        f"--db-filter=^{args.db}$",
        "--limit-time-real=3600",
        "--limit-time-cpu=3600",
    ]
    if mode == "prefork":
        command += ["--workers=2", "--limit-memory-soft=4294967296"]
    return launch(command, f"http://127.0.0.1:{port}")


def launch(command, url, login="/web/login", seconds=60):
    """Start the Odoo server ``command``; return ``(process, url)`` once its
    login page (``login``) answers, or kill it after ``seconds``."""
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    for _ in range(int(seconds * 2)):
        try:
            if requests.get(f"{url}{login}", timeout=2).status_code == 200:
                return server, url
        except requests.RequestException:
            pass
        time.sleep(0.5)
    server.kill()
    raise RuntimeError("Odoo did not start")


def peak_memory_mb(pid):
    """Peak resident memory of the server and its workers (largest process, sum)."""
    pids = [pid] + [
        int(p)
        for p in subprocess.run(
            ["pgrep", "-P", str(pid)], capture_output=True, text=True
        ).stdout.split()
    ]
    peaks = []
    for one in pids:
        try:
            status = Path(f"/proc/{one}/status").read_text()
        except OSError:
            continue
        peaks.append(int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024)
    return max(peaks), sum(peaks)


def table_sizes(pg):
    with pg.cursor() as cr:
        sizes = {}
        for table in TABLES:
            cr.execute(f"SELECT count(*), pg_total_relation_size('{table}') FROM {table}")  # noqa: S608
            sizes[table] = cr.fetchone()
        return sizes


def setup(admin, sim, url, n, tag):
    """A trusted sender, a connection to the simulator, an officer, N registrants."""
    # the simulator makes a new key on every start: trust this run's key
    vals = {"name": f"Simulator {tag}", "public_key": sim.signing_key.public.pem}
    sender = admin("spp.dci.ibr.sender", "search", [("sender_id", "=", sim.sender_id)])
    if sender:
        admin("spp.dci.ibr.sender", "write", sender, vals)
        sender = sender[0]
    else:
        sender = admin("spp.dci.ibr.sender", "create", dict(vals, sender_id=sim.sender_id))
    connection = admin(
        "spp.dci.ibr.connection",
        "create",
        {
            "name": f"Simulator {tag}",
            "sequence": 0,
            "base_url": sim.url,
            "our_sender_id": "spmis.bench",
            "receiver_id": sim.sender_id,
            "ibr_sender_id": sender,
            "callback_url": f"{url}/dci_api/ibr/on-search",
        },
    )
    admin("spp.dci.ibr.connection", "action_generate_signing_key", [connection])
    groups = [
        admin("ir.model.data", "check_object_reference", module, name)[1]
        for module, name in (("spp_dci_client_ibr", "group_ibr_officer"), ("base", "group_user"))
    ]
    login = f"bench_officer_{tag}"
    admin(
        "res.users",
        "create",
        {"name": "Bench Officer", "login": login, "password": login, "group_ids": [(6, 0, groups)]},
    )
    partners = []
    for start in range(0, n, 5000):
        partners += admin(
            "res.partner",
            "create",
            [
                {
                    "name": f"Bench {tag} {k}",
                    "dci_identifier_ids": [(0, 0, {"id_type": "NID", "value": IDS[k % 3]})],
                }
                for k in range(start, min(n, start + 5000))
            ],
        )
    return connection, sender, login, partners


def cli_reference(sim, n):
    """The CLI checking the same ids against the same simulator: seconds."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as ids_file:
        ids_file.write("\n".join(f"NID:{IDS[k % 3]}" for k in range(n)))
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "dci",
            "check",
            "--ids-file",
            ids_file.name,
            "--registry",
            sim.url,
            "--jwks",
            sim.jwks_url,
            "--batch-size",
            "50",
            "--json",
            "--timeout",
            "3600",
        ],
        cwd=ROOT,
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - started
    os.unlink(ids_file.name)
    return elapsed


def sweep_one(args, mode, n, port):
    tag = f"{mode}-{n}-{int(time.time())}"
    logfile = Path(tempfile.gettempdir()) / f"odoo_sweep_{tag}.log"
    with IbrSimulator(page_size=None) as sim:
        server, url = start_server(args, mode, port, logfile)
        try:
            admin = Rpc(url, args.db, "admin", "admin")
            connection, _sender, login, partners = setup(admin, sim, url, n, tag)
            officer = Rpc(url, args.db, login, login)
            pg = psycopg2.connect(
                dbname=args.db, **dict(kv.split("=", 1) for kv in args.pg.split())
            )
            pg.autocommit = True
            before = table_sizes(pg)
            log_offset = logfile.stat().st_size

            started = time.perf_counter()
            # the officer's path: the list action opens the wizard on the selection
            opened = officer("res.partner", "action_open_ibr_check_wizard", partners)
            wizard = officer(
                "spp.dci.check.wizard",
                "create",
                {"identifier_type": "NID", "connection_id": connection},
                context=opened["context"],
            )
            officer("spp.dci.check.wizard", "read", [wizard], ["available_identifiers"])
            wizard_open = time.perf_counter() - started
            clicked = time.perf_counter()
            action = officer("spp.dci.check.wizard", "action_confirm", [wizard])
            click = time.perf_counter() - clicked
            domain = [("data_source_id", "=", connection)]
            while True:  # every registrant has an identifier: N checks end answered
                answered = officer(
                    "spp.dci.duplication.check",
                    "search_count",
                    domain + [("state", "in", ["completed", "failed"])],
                )
                if answered >= n:
                    break
                time.sleep(0.25)
            end_to_end = time.perf_counter() - started
            del action
            done = officer("spp.dci.duplication.check", "search_count", domain)
            failed = officer(
                "spp.dci.duplication.check", "search_count", domain + [("state", "=", "failed")]
            )
            after = table_sizes(pg)
            with pg.cursor() as cr:
                cr.execute(
                    "SELECT count(*) FROM spp_dci_callback_orphan WHERE create_date > now() - "
                    "make_interval(secs => %s)",
                    (end_to_end + 5,),
                )
                orphans = cr.fetchone()[0]
            peak, peak_sum = peak_memory_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=60)
        with logfile.open() as log:
            log.seek(log_offset)
            callbacks = [tuple(map(float, m.groups())) for m in CALLBACK_LINE.finditer(log.read())]
        cli = cli_reference(sim, n)
    rows = sum(after[t][0] - before[t][0] for t in TABLES)
    size = sum(after[t][1] - before[t][1] for t in TABLES)
    per_table = {t: after[t][0] - before[t][0] for t in TABLES if after[t][0] != before[t][0]}
    cb_ms = statistics.median((c[1] + c[2]) * 1000 for c in callbacks) if callbacks else 0
    print(
        f"{mode:9} N={n:>6}: {done} checks ({failed} failed) in {end_to_end:7.1f} s = "
        f"{done / end_to_end:6.0f} checks/s | CLI {cli:6.1f} s = {n / cli:6.0f}/s | "
        f"Odoo/CLI {end_to_end / cli:4.2f}x | wizard {wizard_open:5.2f} s, click {click:5.2f} s | "
        f"{len(callbacks)} callbacks: median {cb_ms:5.1f} ms | "
        f"{rows / n:.1f} rows, {size / n:,.0f} bytes per check {per_table} | "
        f"orphans {orphans} | peak memory {peak:.0f} MB (all processes {peak_sum:.0f} MB)",
        flush=True,
    )
    return end_to_end / n


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True)
    parser.add_argument("--odoo-bin", required=True)
    parser.add_argument("--addons-path", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--db-args", default="--db_host 127.0.0.1")
    parser.add_argument("--pg", default="host=127.0.0.1", help="libpq keywords for psycopg2")
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--modes", nargs="+", default=["threaded", "prefork"])
    parser.add_argument("--port", type=int, default=18300)
    args = parser.parse_args()
    port = args.port
    for mode in args.modes:
        per_check = {}
        for n in args.n:
            per_check[n] = sweep_one(args, mode, n, port)
            port += 1
        if len(per_check) > 1:
            small, large = min(per_check), max(per_check)
            print(
                f"{mode}: per-check time at N={large} is "
                f"{per_check[large] / per_check[small]:.2f}x that at N={small}"
            )


if __name__ == "__main__":
    main()
