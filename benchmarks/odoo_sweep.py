"""Registry-scale sweep: N registrants → the officer's "Check in IBR" → all N answered.

Runs against a real Odoo 19 server (started here, threaded or prefork) on a
database where this addon is installed, on a realistic workload:

- N registrants with N distinct identifiers (``NID``), held as OpenSPP's
  ``reg_ids`` when the database has them (OpenSPP's spp_registry, or the
  test stand-in ``tests/addons/spp_registry_standin``), else as this
  module's identifier lines (``dci_identifier_ids``); the run says which;
- an IBR that knows 15 % of them: 10 % enrolled and active (a confirmed
  match), 5 % whose enrolment has ended (a possible match), 85 % unknown
  (no match);
- the IBR simulator in its own process (``python -m dci simulate --dataset``),
  answering over real HTTP callbacks; the CLI (``python -m dci check``)
  checks the same identifiers against that same process, as the reference.

Prints, per mode and N, in one line:

- end-to-end checks per second (click → last check completed), the CLI's
  time for the same ids and the ratio Odoo/CLI;
- how long the officer's click and the wizard took;
- per on-search callback: server time (from Odoo's request log, whose query
  counter does not see the thread pool where the ORM work runs: the queries of
  a 50-item callback are counted by ``odoo_correlation.py``);
- rows and bytes added per check (all tables this path writes, with indexes);
- orphans (answers that found no check) and the server's peak memory;
- whether the results are right: confirmed / possible / no match counted
  against the dataset's mix, registrant by registrant (mismatches printed).

With ``--profile DIR``, ``py-spy`` (requirements-test.txt; needs ptrace
rights, e.g. root) samples the server and its workers during the sweep,
idle threads included (so time waiting on PostgreSQL counts); the collapsed
stacks are written to DIR and summarised by ``profile_summary.py`` for the
callback path and the send job.

It measures and prints; it asserts nothing. Usage (paths are your Odoo's)::

    python benchmarks/odoo_sweep.py --python /path/venv/bin/python \\
        --odoo-bin /path/odoo-bin --addons-path A,B,C --db ibr_bench \\
        --db-args "--db_host 127.0.0.1 --db_user root" --pg "host=127.0.0.1 user=root" \\
        --n 10000 50000 --modes threaded prefork [--profile /tmp/prof]

The database must exist with the addon installed (``-i
spp_dci_client_ibr,spp_registry_standin --stop-after-init``, the stand-in
from ``tests/addons`` on the addons path, for ``reg_ids``) and
``admin``/``admin`` as administrator. Prefork mode needs gevent in Odoo's
environment.
"""

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import psycopg2
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from profile_summary import report as profile_report  # noqa: E402

from dci.keys import SigningKey  # noqa: E402
from dci.simulator.dataset import beneficiary  # noqa: E402

ID_TYPE = "NID"
# of every 20 registrants: 2 confirmed (10 %), 1 possible (5 %), 17 unknown (85 %)
MIX = ("confirmed_match", "confirmed_match", "possible_match") + ("no_match",) * 17
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


def workload(n, base):
    """N distinct identifier values and the result each must get; the IBR's
    records for them (10 % active enrolments, 5 % ended, 85 % unknown)."""
    values = [str(base + k) for k in range(n)]
    expected = [MIX[k % len(MIX)] for k in range(n)]
    records = []
    for value, result in zip(values, expected, strict=True):
        if result == "confirmed_match":
            records.append(beneficiary(ID_TYPE, value, "Cash Transfer Programme"))
        elif result == "possible_match":
            records.append(
                beneficiary(ID_TYPE, value, "School Feeding", status="Exited", programme_id="P2")
            )
    return values, expected, records


class Simulator:
    """``python -m dci simulate`` in its own process, with a dataset and a
    kept key; ``url``, ``sender_id``, ``jwks_url`` and ``public_pem`` once ready."""

    def __init__(self, records, port, workdir, seconds=60):
        self.workdir = Path(workdir)
        dataset = self.workdir / "dataset.json"
        dataset.write_text(json.dumps({"reg_records": records}), encoding="utf-8")
        key_file = self.workdir / "simulator_key.pem"
        self.log = self.workdir / "simulator.log"
        command = [
            sys.executable,
            "-m",
            "dci",
            "simulate",
            "--dataset",
            str(dataset),
            "--key-file",
            str(key_file),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--allow-callback-host",
            "127.0.0.1",
        ]
        with self.log.open("w") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        banner = ""
        for _ in range(int(seconds * 10)):  # its banner ends with "Ctrl-C stops it." once ready
            banner = self.log.read_text(errors="replace")
            if "Ctrl-C stops it." in banner or self.process.poll() is not None:
                break
            time.sleep(0.1)
        fields = dict(
            re.findall(r"^(IBR simulator at|sender id:|JWKS URL:) ?(\S+)$", banner, re.MULTILINE)
        )
        if len(fields) < 3:
            self.stop()
            raise RuntimeError(f"the simulator did not start:\n{banner}")
        self.url, self.sender_id = fields["IBR simulator at"], fields["sender id:"]
        self.jwks_url = fields["JWKS URL:"]
        self.public_pem = SigningKey.from_file(key_file, self.sender_id).public.pem

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: as cleanly as Ctrl-C
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def setup(admin, sim, url, values, tag):
    """A trusted sender, a connection to the simulator, an officer, one
    registrant per identifier value; which identifiers were used."""
    # the simulator's key is kept in this run's key file: trust it
    vals = {"name": f"Simulator {tag}", "public_key": sim.public_pem}
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
    if "reg_ids" in admin("res.partner", "fields_get", ["reg_ids"], attributes=["type"]):
        used = "reg_ids"
        codes = admin("spp.vocabulary.code", "search", [("code", "=", ID_TYPE)], limit=1)
        id_type = (
            codes[0]
            if codes
            else admin("spp.vocabulary.code", "create", {"code": ID_TYPE, "display": "National ID"})
        )

        def identifier(value):
            return {"reg_ids": [(0, 0, {"id_type_id": id_type, "value": value})]}

    else:
        used = "dci_identifier_ids"

        def identifier(value):
            return {"dci_identifier_ids": [(0, 0, {"id_type": ID_TYPE, "value": value})]}

    partners = []
    for start in range(0, len(values), 5000):
        partners += admin(
            "res.partner",
            "create",
            [
                dict(identifier(value), name=f"Bench {tag} {start + k}")
                for k, value in enumerate(values[start : start + 5000])
            ],
        )
    return connection, login, partners, used


def cli_reference(sim, values):
    """The CLI checking the same ids against the same simulator: seconds, and
    its results counted."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as ids_file:
        ids_file.write("\n".join(f"{ID_TYPE}:{value}" for value in values))
    started = time.perf_counter()
    done = subprocess.run(
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
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    os.unlink(ids_file.name)
    try:
        rows = json.loads(done.stdout)
    except ValueError:
        rows = []
    return elapsed, Counter(row["result"] or row["status"] for row in rows)


def start_profiler(pid, directory, tag):
    """``py-spy record`` on the server and its workers, until stopped."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    output = directory / f"odoo_sweep_{tag}.txt"
    command = [
        shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy")),
        "record",
        "--pid",
        str(pid),
        "--subprocesses",
        "--idle",  # time waiting on PostgreSQL is part of the paths' time
        "--nonblocking",
        "--full-filenames",
        "--rate",
        "100",
        "--format",
        "raw",
        "--output",
        str(output),
    ]
    profiler = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=(directory / f"py-spy_{tag}.log").open("w")
    )
    time.sleep(1)  # attached before the click
    return profiler, output


def stop_profiler(profiler):
    profiler.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
    try:
        profiler.wait(timeout=120)
    except subprocess.TimeoutExpired:
        profiler.kill()


def verify(officer, domain, partners, expected):
    """Mismatches between each registrant's result and the dataset's, and the
    results counted."""
    want = dict(zip(partners, expected, strict=True))
    rows = officer(
        "spp.dci.duplication.check", "search_read", domain, ["partner_id", "result", "state"]
    )
    got = Counter(row["result"] or row["state"] for row in rows)
    wrong = [
        (row["partner_id"][0], want.get(row["partner_id"][0]), row["result"] or row["state"])
        for row in rows
        if want.get(row["partner_id"][0]) != row["result"]
    ]
    return got, wrong


def _mix(counter):
    return "/".join(
        str(counter.get(k, 0)) for k in ("confirmed_match", "possible_match", "no_match")
    )


def sweep_one(args, mode, n, port):
    tag = f"{mode}-{n}-{int(time.time())}"
    workdir = Path(tempfile.mkdtemp(prefix=f"odoo_sweep_{tag}_"))
    logfile = workdir / "odoo.log"
    # distinct identifiers, and distinct from earlier runs on this database
    values, expected, records = workload(n, 2_000_000_000 + int(time.time()) % 10_000 * 100_000)
    profile = None
    with Simulator(records, port + 1000, workdir) as sim:
        server, url = start_server(args, mode, port, logfile)
        try:
            admin = Rpc(url, args.db, "admin", "admin")
            connection, login, partners, used = setup(admin, sim, url, values, tag)
            officer = Rpc(url, args.db, login, login)
            pg = psycopg2.connect(
                dbname=args.db, **dict(kv.split("=", 1) for kv in args.pg.split())
            )
            pg.autocommit = True
            before = table_sizes(pg)
            log_offset = logfile.stat().st_size
            profiler = start_profiler(server.pid, args.profile, tag) if args.profile else None

            started = time.perf_counter()
            # the officer's path: the list action opens the wizard on the selection
            opened = officer("res.partner", "action_open_ibr_check_wizard", partners)
            wizard = officer(
                "spp.dci.check.wizard",
                "create",
                {"identifier_type": ID_TYPE, "connection_id": connection},
                context=opened["context"],
            )
            officer("spp.dci.check.wizard", "read", [wizard], ["available_identifiers"])
            wizard_open = time.perf_counter() - started
            clicked = time.perf_counter()
            officer("spp.dci.check.wizard", "action_confirm", [wizard])
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
            if profiler:
                stop_profiler(profiler[0])
                profile = profiler[1]
            done = officer("spp.dci.duplication.check", "search_count", domain)
            failed = officer(
                "spp.dci.duplication.check", "search_count", domain + [("state", "=", "failed")]
            )
            got, wrong = verify(officer, domain, partners, expected)
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
        cli, cli_got = cli_reference(sim, values)
    rows = sum(after[t][0] - before[t][0] for t in TABLES)
    size = sum(after[t][1] - before[t][1] for t in TABLES)
    per_table = {t: after[t][0] - before[t][0] for t in TABLES if after[t][0] != before[t][0]}
    cb_ms = statistics.median((c[1] + c[2]) * 1000 for c in callbacks) if callbacks else 0
    want = Counter(expected)
    print(
        f"{mode:9} N={n:>6} ({used}): {done} checks ({failed} failed) in {end_to_end:7.1f} s = "
        f"{done / end_to_end:6.0f} checks/s | CLI {cli:6.1f} s = {n / cli:6.0f}/s | "
        f"Odoo/CLI {end_to_end / cli:4.2f}x | wizard {wizard_open:5.2f} s, click {click:5.2f} s | "
        f"{len(callbacks)} callbacks: median {cb_ms:5.1f} ms | "
        f"{rows / n:.1f} rows, {size / n:,.0f} bytes per check {per_table} | "
        f"orphans {orphans} | peak memory {peak:.0f} MB (all processes {peak_sum:.0f} MB) | "
        f"confirmed/possible/none: expected {_mix(want)}, Odoo {_mix(got)} "
        f"({len(wrong)} mismatches), CLI {_mix(cli_got)}",
        flush=True,
    )
    for partner, wanted, result in wrong[:10]:
        print(f"  mismatch: partner {partner} expected {wanted}, got {result}")
    if profile:
        profile_report(profile)
    return end_to_end / n


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True)
    parser.add_argument("--odoo-bin", required=True)
    parser.add_argument("--addons-path", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--db-args", default="--db_host 127.0.0.1")
    parser.add_argument("--pg", default="host=127.0.0.1", help="libpq keywords for psycopg2")
    parser.add_argument("--n", type=int, nargs="+", default=[10000, 50000])
    parser.add_argument("--modes", nargs="+", default=["threaded", "prefork"])
    parser.add_argument("--port", type=int, default=18300, help="Odoo's; the simulator's is +1000")
    parser.add_argument("--profile", metavar="DIR", help="py-spy the server into DIR")
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
