"""Drive a check through a running ``make odoo-demo`` as a browser would, over HTTP.

    python3 tools/odoo_demo_check.py [--url http://127.0.0.1:8069] [--db spp_ibr_demo]
        [--login officer] [--registrant "Amina Diallo"] [--type NID] [--ready-batch]

Logs in with JSON-RPC, opens Check in IBR on the registrant and confirms it (or, with
``--ready-batch``, runs the demo's ready checks), then polls the checks until each is
completed or failed, and prints them. Exit code 0 when every check completed.
Standard library only.
"""

import argparse
import http.cookiejar
import json
import sys
import time
import urllib.request

FIELDS = ["partner_id", "identifier_type", "state", "result", "matched_programs", "error_message"]


class Rpc:
    """Odoo's JSON-RPC over one session cookie."""

    def __init__(self, url):
        self.url = url.rstrip("/")
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
        )

    def post(self, path, params):
        body = json.dumps({"jsonrpc": "2.0", "method": "call", "params": params}).encode()
        request = urllib.request.Request(
            self.url + path, data=body, headers={"Content-Type": "application/json"}
        )
        with self.opener.open(request, timeout=30) as answer:
            reply = json.load(answer)
        if reply.get("error"):
            data = reply["error"].get("data", {})
            raise SystemExit(f"{path}: {data.get('message') or reply['error']['message']}")
        return reply["result"]

    def call(self, model, method, *args, **kwargs):
        params = {"model": model, "method": method, "args": list(args), "kwargs": kwargs}
        return self.post(f"/web/dataset/call_kw/{model}/{method}", params)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8069")
    parser.add_argument("--db", default="spp_ibr_demo")
    parser.add_argument("--login", default="officer")
    parser.add_argument("--password", help="default: the login (the demo users' password)")
    parser.add_argument("--registrant", default="Amina Diallo")
    parser.add_argument("--type", default="NID", help="identifier type to search by")
    parser.add_argument("--ready-batch", action="store_true", help="run the ready checks")
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args(argv)
    rpc = Rpc(args.url)
    session = rpc.post(
        "/web/session/authenticate",
        {"db": args.db, "login": args.login, "password": args.password or args.login},
    )
    print(f"logged in as {args.login} (uid {session['uid']})")
    checks = "spp.dci.duplication.check"
    if args.ready_batch:
        ids = rpc.call(checks, "search", [("state", "=", "ready")])
        print(f"Run Checks on {len(ids)} ready check(s)")
        rpc.call(checks, "action_run_check", ids)
        domain = [("id", "in", ids)]
    else:
        [partner] = rpc.call(
            "res.partner", "search_read", [("name", "=", args.registrant)], fields=["id"]
        )
        action = rpc.call("res.partner", "action_open_ibr_check_wizard", [partner["id"]])
        context = action["context"]
        wizard = rpc.call(
            "spp.dci.check.wizard", "create", {"identifier_type": args.type}, context=context
        )
        done = rpc.call("spp.dci.check.wizard", "action_confirm", [wizard])
        print(f"Check in IBR on {args.registrant} by {args.type}: {done['params']['message']}")
        domain = done["params"]["next"]["domain"]
    deadline = time.monotonic() + args.timeout
    while True:
        rows = rpc.call(checks, "search_read", domain, fields=FIELDS, order="id")
        waiting = [r for r in rows if r["state"] not in ("completed", "failed")]
        if not waiting or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for row in rows:
        programmes = (row["matched_programs"] or "").replace("\n", ", ")
        outcome = row["result"] or row["error_message"] or ""
        print(f"  {row['partner_id'][1]:<16} {row['state']:<10} {outcome:<16} {programmes}")
    return 0 if rows and all(r["state"] == "completed" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
