"""``python -m dci``: the integrator's tool, no Odoo needed.

check     signed search for identifiers, verified answers, one result each
jwks      fetch, validate and show a JWKS
verify    verify a saved envelope and say exactly why not
simulate  run the reference IBR simulator
"""

import argparse
import json
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from . import messages
from .client import IbrClient
from .errors import DCIError
from .inbound import parse_body
from .interpret import interpret_item
from .keys import KeySet, SigningKey, parse_jwks, public_key_from_pem
from .listener import CallbackListener
from .netguard import FetchPolicy, fetch_json
from .signatures import verify_signature
from .simulator import FAILURES, Dataset, IbrSimulator
from .trust import TrustedKeys

CLI_SENDER_ID = "dci-cli"
EXIT_OK, EXIT_INCOMPLETE, EXIT_USAGE = 0, 1, 2


def _say(text):
    print(text, file=sys.stderr, flush=True)


def _identifiers(args):
    raw = list(args.id or [])
    if args.ids_file:
        raw += [
            line.strip() for line in Path(args.ids_file).read_text().splitlines() if line.strip()
        ]
    pairs = []
    for text in raw:
        id_type, sep, value = text.partition(":")
        if not sep or not id_type.strip() or not value.strip():
            raise DCIError(f"identifier {text!r} is not TYPE:VALUE")
        pairs.append((id_type.strip(), value.strip()))
    if not pairs:
        raise DCIError("give at least one --id TYPE:VALUE (or --ids-file)")
    return pairs


def _registry_keys(jwks_url):
    try:
        keys = parse_jwks(fetch_json(jwks_url, FetchPolicy(allow_private=True)))
    except DCIError as exc:
        _say(
            f"warning: cannot use the registry's JWKS ({exc.message}); searching anyway, "
            "unverifiable answers will be refused"
        )
        return KeySet()
    _say(f"registry keys: {', '.join(k.kid for k in keys) or 'none usable'}")
    return keys


class _Results:
    """One row per identifier, filled in as answers arrive."""

    def __init__(self, pairs):
        self.rows = {}
        for id_type, value in pairs:
            reference_id = messages.new_id()
            self.rows[reference_id] = {
                "identifier_type": id_type,
                "identifier_value": value,
                "reference_id": reference_id,
                "status": "pending",
                "result": None,
                "programmes": [],
                "reason": None,
                "_interpretation": None,
            }
        self.lock = threading.Lock()
        self.done = threading.Event()

    def queries(self):
        return [
            messages.SearchQuery(r, row["identifier_type"], row["identifier_value"])
            for r, row in self.rows.items()
        ]

    def fail(self, references, reason):
        with self.lock:
            for reference in references:
                self.rows[reference].update(status="failed", reason=reason)
            self._check_done()

    def apply(self, response):
        with self.lock:
            for item in response.search_response:
                row = self.rows.get(item.reference_id)
                if row is None or row["status"] != "pending":
                    continue
                try:
                    outcome = interpret_item(item, row["identifier_type"], row["identifier_value"])
                except DCIError as exc:  # this item cannot be read: it fails, not the rest
                    row.update(status="failed", reason=f"{exc.code}: {exc.message}")
                    continue
                if outcome.status == "succ":
                    so_far = row["_interpretation"]
                    merged = (
                        so_far.merge(outcome.interpretation) if so_far else outcome.interpretation
                    )
                    row.update(
                        _interpretation=merged,
                        result=merged.result,
                        programmes=list(merged.programmes),
                        _pages=row.get("_pages", 0) + 1,
                    )
                    if row["_pages"] >= outcome.total_pages:  # pages may come in any order
                        row["status"] = "completed"
                elif outcome.status == "rjct":
                    row.update(
                        status="failed",
                        reason=f"{outcome.reason_code}: "
                        f"{outcome.reason_message or 'rejected by the IBR'}",
                    )
            self._check_done()

    def _check_done(self):
        if all(row["status"] != "pending" for row in self.rows.values()):
            self.done.set()

    def public(self):
        return [
            {k: v for k, v in row.items() if not k.startswith("_")} for row in self.rows.values()
        ]


def _batches(items, size):
    return [items[i : i + size] for i in range(0, len(items), size)]


def cmd_check(args):
    pairs = _identifiers(args)
    results = _Results(pairs)
    key = SigningKey.generate(CLI_SENDER_ID, args.algorithm)
    with ExitStack() as stack:
        registry = args.registry
        if not registry:
            sim = stack.enter_context(
                IbrSimulator(
                    algorithm=args.algorithm,
                    client_jwks=KeySet([key.public]),
                    page_size=args.page_size,
                )
            )
            registry = sim.url
            _say(f"started the built-in IBR simulator at {registry}")
        keys = _registry_keys(args.jwks or registry.rstrip("/") + "/.well-known/jwks.json")
        client = IbrClient(
            registry,
            key,
            CLI_SENDER_ID,
            ibr_keys=keys if len(keys) else None,
            timeout=(5, args.timeout),
            allow_unsigned=args.allow_unsigned,
        )
        batches = _batches(results.queries(), args.batch_size)
        if args.sync:
            _run_sync(client, batches, results)
        else:
            _run_async(stack, client, keys, batches, results, args)
    rows = results.public()
    print(json.dumps(rows, indent=2, ensure_ascii=False) if args.json else _table(rows))
    return EXIT_OK if all(r["status"] == "completed" for r in rows) else EXIT_INCOMPLETE


def _run_sync(client, batches, results):
    for number, batch in enumerate(batches, 1):
        _say(f"sync search {number}/{len(batches)} ({len(batch)} identifiers)")
        try:
            results.apply(client.sync_search(batch).message)
        except DCIError as exc:
            results.fail([q.reference_id for q in batch], f"{exc.code}: {exc.message}")
    results.fail(
        [r for r, row in results.rows.items() if row["status"] == "pending"],
        "the IBR's answer did not include this identifier",
    )


def _run_async(stack, client, keys, batches, results, args):
    refused = []

    def on_refuse(error):
        refused.append(error)
        _say(f"callback {len(refused)} refused: {error.code}: {error.message}")

    listener = stack.enter_context(
        CallbackListener(
            TrustedKeys(keys),
            our_id=CLI_SENDER_ID,
            allow_unsigned=args.allow_unsigned,
            on_accept=lambda accepted: results.apply(accepted.message),
            on_refuse=on_refuse,
        )
    )
    for number, batch in enumerate(batches, 1):
        try:
            submission = client.search(batch, sender_uri=listener.url)
            _say(
                f"sent batch {number}/{len(batches)} ({len(batch)} identifiers), "
                f"correlation id {submission.correlation_id}"
            )
        except DCIError as exc:
            _say(f"batch {number}/{len(batches)} failed: {exc.code}: {exc.message}")
            results.fail([q.reference_id for q in batch], f"{exc.code}: {exc.message}")
    if not results.done.wait(args.timeout):
        reason = f"no acceptable callback within {args.timeout:g} s"
        if refused:
            reason += f" ({len(refused)} refused: {refused[-1].code})"
        _say(f"timeout: {reason}")
        results.fail([r for r, row in results.rows.items() if row["status"] == "pending"], reason)


def _table(rows):
    headers = ("identifier", "result", "programmes", "status")
    lines = [
        (
            f"{r['identifier_type']}:{r['identifier_value']}",
            r["result"] or "-",
            ", ".join(r["programmes"]) or "-",
            r["status"] if r["status"] == "completed" else f"{r['status']}: {r['reason']}",
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(
        [
            fmt.format(*headers),
            fmt.format(*("-" * w for w in widths)),
            *(fmt.format(*line) for line in lines),
        ]
    )


def cmd_jwks(args):
    keys = parse_jwks(fetch_json(args.url, FetchPolicy(allow_private=True)))
    if args.sender_id:
        keys = keys.for_sender(args.sender_id)
    for key in keys:
        print(
            f"kid: {key.kid}\nalgorithm: {key.algorithm}\nfingerprint: {key.fingerprint}\n{key.pem}"
        )
    for kid, reason in getattr(keys, "skipped", []):
        print(f"skipped {kid!r}: {reason}")
    if not len(keys):
        raise DCIError(
            "no usable key" + (f" for sender {args.sender_id}" if args.sender_id else "")
        )
    return EXIT_OK


def cmd_verify(args):
    # read like a received body: the digest needs JSON values exactly as sent
    envelope = parse_body(Path(args.file).read_bytes())
    if args.key:
        key = public_key_from_pem(Path(args.key).read_text())
        keys = KeySet(default=key)
    else:
        keys = parse_jwks(fetch_json(args.jwks, FetchPolicy(allow_private=True)))
    try:
        verified = verify_signature(
            envelope.get("signature"), envelope.get("header"), envelope.get("message", {}), keys.get
        )
    except DCIError as exc:
        print(f"invalid: {exc.code}: {exc.message}")
        return EXIT_INCOMPLETE
    print(f"valid: {verified.scheme} signature by {verified.kid} ({verified.algorithm})")
    return EXIT_OK


def cmd_simulate(args):
    client_keys = None
    if args.client_jwks:
        client_keys = parse_jwks(fetch_json(args.client_jwks, FetchPolicy(allow_private=True)))
    dataset = Dataset.load(args.dataset) if args.dataset else None
    with IbrSimulator(
        algorithm=args.algorithm,
        host=args.host,
        port=args.port,
        latency=args.latency / 1000,
        page_size=args.page_size,
        failures=args.fail or (),
        client_jwks=client_keys,
        callback_hosts=args.allow_callback_host or (),
        dataset=dataset,
    ) as sim:
        print(f"IBR simulator at {sim.url} (JWKS {sim.jwks_url}); Ctrl-C stops it", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return EXIT_OK


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m dci",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("check", help="check identifiers in an IBR")
    check.add_argument("--id", action="append", metavar="TYPE:VALUE")
    check.add_argument("--ids-file", help="a file with one TYPE:VALUE per line")
    check.add_argument("--registry", help="IBR base URL (default: the built-in simulator)")
    check.add_argument("--jwks", help="the registry's JWKS URL")
    check.add_argument("--sync", action="store_true", help="use /registry/sync/search")
    check.add_argument("--json", action="store_true", help="print JSON instead of a table")
    check.add_argument("--timeout", type=float, default=30.0)
    check.add_argument("--batch-size", type=int, default=100)
    check.add_argument("--page-size", type=int, help="(built-in simulator) records per page")
    check.add_argument("--algorithm", choices=("ed25519", "rs256"), default="ed25519")
    check.add_argument(
        "--allow-unsigned",
        action="store_true",
        help="accept unsigned callbacks and sync answers (diagnostics only)",
    )
    check.set_defaults(run=cmd_check)

    jwks = commands.add_parser("jwks", help="fetch and show a JWKS")
    jwks.add_argument("url")
    jwks.add_argument("--sender-id")
    jwks.set_defaults(run=cmd_jwks)

    verify = commands.add_parser("verify", help="verify a saved envelope")
    verify.add_argument("file")
    source = verify.add_mutually_exclusive_group(required=True)
    source.add_argument("--jwks", help="JWKS URL of the signer")
    source.add_argument("--key", help="PEM public key file of the signer")
    verify.set_defaults(run=cmd_verify)

    simulate = commands.add_parser("simulate", help="run the reference IBR simulator")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=8000)
    simulate.add_argument("--algorithm", choices=("ed25519", "rs256"), default="ed25519")
    simulate.add_argument("--latency", type=float, default=0.0, help="milliseconds per request")
    simulate.add_argument("--page-size", type=int)
    simulate.add_argument("--dataset", help="JSON file of Beneficiary records")
    simulate.add_argument("--client-jwks", help="verify requests against this JWKS URL")
    simulate.add_argument(
        "--allow-callback-host",
        action="append",
        metavar="HOST",
        help="also send callbacks to this host (default: loopback only)",
    )
    simulate.add_argument("--fail", action="append", choices=sorted(FAILURES))
    simulate.set_defaults(run=cmd_simulate)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if getattr(args, "batch_size", 1) < 1:
        _say("error: --batch-size must be at least 1")
        return EXIT_USAGE
    try:
        return args.run(args)
    except DCIError as exc:
        _say(f"error: {exc.message}")
        return EXIT_USAGE
    except (OSError, ValueError) as exc:
        _say(f"error: {exc}")
        return EXIT_USAGE
