"""Fault run: two Odoo servers on one database, a misbehaving IBR, one server killed.

N registrants are checked through the officer's "Check in IBR" against the
built-in simulator with its fault plan on (duplicate, concurrent duplicate,
reordered, late and early callbacks, HTTP 503 / 429 / reset / a stalled
acknowledgement on the first try, dropped answers, a forged callback before
the genuine one). A small round-robin load balancer in front of two Odoo
servers (threaded, each with a cron thread) splits the callbacks and the
officer's requests between them; when ``--kill-at`` of the checks are
answered, one server is killed with ``kill -9`` and started again.

Prints, from one run: N, how many checks ended correct against the
simulator's dataset, wrong, stuck (still open at the end), failed (by kind),
applied twice, resends, the faults the simulator injected, ERROR lines and
personal data in the servers' logs. It asserts nothing. Usage::

    python benchmarks/odoo_faults.py --python /path/venv/bin/python \\
        --odoo-bin /path/odoo-bin --addons-path A,B,C --db ibr_faults \\
        --db-args "--db_host 127.0.0.1 --db_user root" --pg "host=127.0.0.1 user=root" --n 2000

The database must exist with the addon installed and ``admin``/``admin`` as
administrator.
"""

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg2
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from odoo_sweep import Rpc, start_server  # noqa: E402

from dci.simulator import Dataset, IbrSimulator, beneficiary  # noqa: E402

FAULTS = (
    "seed=23,drop=0.03,duplicate=0.05,concurrent-duplicate=0.03,reorder=0.1,delay=0.05,"
    "early=0.05,http-503=0.05,http-429=0.02,reset=0.05,stall=0.02,bad-signature=0.03,"
    "delay-seconds=3,stall-seconds=8,retry-after=1"
)
EXPECTED_OF = {0: "confirmed_match", 1: "possible_match", 2: "no_match"}
OPEN = ("ready", "queued", "checking")


def dataset(n):
    """N identifiers: a third enrolled (confirmed), a third ended (possible), a third unknown."""
    records, expected = [], {}
    for k in range(n):
        value = str(3_000_000_000 + k)
        expected[value] = EXPECTED_OF[k % 3]
        if k % 3 != 2:
            status = "Active" if k % 3 == 0 else "Exited"
            records.append(
                beneficiary("NID", value, "Cash Transfer", status=status, name=f"Zyx{k} Qwv{k}")
            )
    return Dataset(records), expected


class Balancer:
    """Round-robin HTTP forwarding to the live backends (a dead one is skipped)."""

    def __init__(self, port, backends):
        self.backends = backends
        self.turn = 0
        self.lock = threading.Lock()
        balancer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers, payload = balancer.forward(
                    self.command, self.path, self.headers, body
                )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _forward

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def forward(self, method, path, headers, body):
        with self.lock:
            self.turn += 1
            order = self.backends[self.turn % 2 :] + self.backends[: self.turn % 2]
        keep = {k: v for k, v in headers.items() if k.lower() in ("content-type", "cookie")}
        for backend in order:
            try:
                answer = requests.request(
                    method, backend + path, data=body, headers=keep, timeout=120
                )
            except requests.ConnectionError:
                continue  # that server is down: the other one takes it
            out = {"Content-Type": answer.headers.get("Content-Type", "application/json")}
            if "Set-Cookie" in answer.headers:
                out["Set-Cookie"] = answer.headers["Set-Cookie"]
            return answer.status_code, out, answer.content
        return 502, {"Content-Type": "text/plain"}, b"no backend"


def setup(admin, sim, lb_url, n, values, tag, batch_size):
    # the simulator makes a new key on every start: trust this run's key
    vals = {"name": f"Fault sim {tag}", "public_key": sim.signing_key.public.pem}
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
            "name": f"Fault sim {tag}",
            "sequence": 0,
            "base_url": sim.url,
            "our_sender_id": "spmis.faults",
            "receiver_id": sim.sender_id,
            "ibr_sender_id": sender,
            "callback_url": f"{lb_url}/dci_api/ibr/on-search",
            "timeout": 5,
            "retry_first_delay": 2,
            "retry_max_attempts": 6,
            "stale_after_minutes": 1,
            "poll_status_before_failing": True,
            "batch_size": batch_size,
        },
    )
    admin("spp.dci.ibr.connection", "action_generate_signing_key", [connection])
    groups = [
        admin("ir.model.data", "check_object_reference", module, name)[1]
        for module, name in (("spp_dci_client_ibr", "group_ibr_officer"), ("base", "group_user"))
    ]
    login = f"fault_officer_{tag}"
    admin(
        "res.users",
        "create",
        {"name": "Fault Officer", "login": login, "password": login, "group_ids": [(6, 0, groups)]},
    )
    for xmlid in ("ir_cron_send_queued_checks", "ir_cron_fail_stale_checks"):
        cron = admin("ir.model.data", "check_object_reference", "spp_dci_client_ibr", xmlid)[1]
        admin("ir.cron", "write", [cron], {"interval_number": 1, "interval_type": "minutes"})
    partners = []
    for start in range(0, n, 1000):
        partners += admin(
            "res.partner",
            "create",
            [
                {
                    "name": f"Fault {tag} {k}",
                    "dci_identifier_ids": [(0, 0, {"id_type": "NID", "value": values[k]})],
                }
                for k in range(start, min(n, start + 1000))
            ],
        )
    return connection, login, partners


def counts(pg, connection):
    with pg.cursor() as cr:
        cr.execute(
            "SELECT state, count(*) FROM spp_dci_duplication_check WHERE data_source_id = %s "
            "GROUP BY state",
            (connection,),
        )
        return dict(cr.fetchall())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True)
    parser.add_argument("--odoo-bin", required=True)
    parser.add_argument("--addons-path", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--db-args", default="--db_host 127.0.0.1")
    parser.add_argument("--pg", default="host=127.0.0.1", help="libpq keywords for psycopg2")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--ports", type=int, nargs=2, default=[18210, 18211])
    parser.add_argument("--lb-port", type=int, default=18212)
    parser.add_argument("--faults", default=FAULTS)
    parser.add_argument(
        "--batch-size", type=int, default=10, help="checks per message (faults hit messages)"
    )
    parser.add_argument("--kill-at", type=float, default=0.4, help="share answered when killing")
    parser.add_argument("--timeout", type=float, default=900, help="seconds for the whole run")
    args = parser.parse_args()
    args.mode = "threaded"
    tag = str(int(time.time()))
    data, expected = dataset(args.n)
    values = list(expected)
    logs = [Path(tempfile.gettempdir()) / f"odoo_faults_{tag}_{i}.log" for i in (0, 1)]
    urls = [f"http://127.0.0.1:{p}" for p in args.ports]
    balancer = Balancer(args.lb_port, urls)
    pg = psycopg2.connect(dbname=args.db, **dict(kv.split("=", 1) for kv in args.pg.split()))
    pg.autocommit = True
    servers = [None, None]
    with IbrSimulator(dataset=data, faults=args.faults) as sim:
        try:
            for i in (0, 1):
                servers[i], _url = start_server(args, "threaded", args.ports[i], logs[i])
            admin = Rpc(balancer.url, args.db, "admin", "admin")
            connection, login, partners = setup(
                admin, sim, balancer.url, args.n, values, tag, args.batch_size
            )
            officer = Rpc(balancer.url, args.db, login, login)
            started = time.monotonic()
            opened = officer("res.partner", "action_open_ibr_check_wizard", partners)
            wizard = officer(
                "spp.dci.check.wizard",
                "create",
                {"identifier_type": "NID", "connection_id": connection},
                context=opened["context"],
            )
            officer("spp.dci.check.wizard", "action_confirm", [wizard])
            killed_at = None
            while time.monotonic() - started < args.timeout:
                state = counts(pg, connection)
                done = state.get("completed", 0) + state.get("failed", 0)
                if killed_at is None and done >= args.kill_at * args.n:
                    os.kill(servers[0].pid, signal.SIGKILL)  # kill -9, mid-run
                    servers[0].wait()
                    killed_at = time.monotonic() - started
                    time.sleep(3)
                    servers[0], _url = start_server(args, "threaded", args.ports[0], logs[0])
                if done >= args.n and sum(state.values()) >= args.n:
                    break
                time.sleep(1)
            elapsed = time.monotonic() - started
            report(pg, connection, expected, sim, logs, elapsed, killed_at, args)
        finally:
            for server in servers:
                if server and server.poll() is None:
                    server.terminate()
                    server.wait(timeout=60)
            balancer.httpd.shutdown()


def report(pg, connection, expected, sim, logs, elapsed, killed_at, args):
    with pg.cursor() as cr:
        cr.execute(
            """SELECT c.id, c.identifier_value, c.state, c.result, c.failure_kind,
                      c.pages_received, c.pages_total,
                      (SELECT count(*) FROM spp_dci_duplication_match m WHERE m.check_id = c.id)
                 FROM spp_dci_duplication_check c WHERE c.data_source_id = %s""",
            (connection,),
        )
        rows = cr.fetchall()
        cr.execute(
            "SELECT count(*), coalesce(sum(attempts), 0), coalesce(sum(status_attempts), 0) "
            "FROM spp_dci_ibr_transaction WHERE connection_id = %s",
            (connection,),
        )
        messages, attempts, status_failures = cr.fetchone()
        cr.execute(
            "SELECT coalesce(sum(count), 0) FROM spp_dci_delivery_log d "
            "JOIN spp_dci_ibr_sender s ON s.id = d.sender_id WHERE s.sender_id = %s",
            (sim.sender_id,),
        )
        refused = cr.fetchone()[0]
    correct = wrong = twice = 0
    states, failures = Counter(), Counter()
    for _id, value, state, result, kind, pages, total, lines in rows:
        states[state] += 1
        if state == "failed":
            failures[kind] += 1
        elif state == "completed":
            if result == expected[value]:
                correct += 1
            else:
                wrong += 1
            if lines != (0 if expected[value] == "no_match" else 1) or pages > max(total, 1):
                twice += 1
    stuck = sum(states[s] for s in OPEN)
    text = "".join(log.read_text(errors="replace") for log in logs if log.exists())
    errors = [line for line in text.splitlines() if " ERROR " in line]
    personal = sum(1 for value in expected if value in text) + text.count("Zyx")
    faults = {k[6:]: v for k, v in sorted(sim.stats.items()) if k.startswith("fault_")}
    print(f"fault plan: {sim.faults.describe()}")
    print(
        f"N={args.n} in {elapsed:.0f} s (server 1 killed with kill -9 at {killed_at or 0:.0f} s, "
        "restarted 3 s later)"
    )
    print(
        "| N | correct | wrong | stuck | failed | applied twice | resends | ERROR lines |"
        " personal data in logs |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {len(rows)} | {correct} | {wrong} | {stuck} | {states['failed']} "
        f"{dict(failures) or ''} | {twice} | {attempts - messages} (of {messages} messages; "
        f"{status_failures} status requests failed) | {len(errors)} | {personal} |"
    )
    print(
        f"faults injected: {faults}; deduplicated resends {sim.stats['resends_deduplicated']};"
        f" refused deliveries counted {refused}; callbacks dropped {sim.stats['callbacks_dropped']}"
    )
    for line in errors[:10]:
        print("ERROR line:", line[:300])


if __name__ == "__main__":
    main()
