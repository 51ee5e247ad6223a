"""``python -m dci``: the integrator's tool, no Odoo needed.

check               signed search for identifiers, verified answers, one result each
subscribe           subscribe to enrolment events about identifiers (on-subscribe, notify)
unsubscribe         end subscriptions by their codes (on-unsubscribe)
enrollment-updates  report enrolled beneficiaries (/registry/sync/enrollment/updates)
notify              make a running simulator emit notifications (its loopback admin endpoint)
jwks                fetch, validate and show a JWKS
verify              verify a saved envelope and say exactly why not
simulate            run the reference IBR simulator

Every command that sends takes --receiver-id and credentials for the IBR: a
bearer token (--token or DCI_BEARER_TOKEN) or OAuth2 client credentials
(--oauth-token-url, --client-id, --client-secret or DCI_OAUTH_TOKEN_URL,
DCI_OAUTH_CLIENT_ID, DCI_OAUTH_CLIENT_SECRET; --oauth-scope or
DCI_OAUTH_SCOPE). Secrets are never printed; prefer the environment
variables, which other users cannot read from the process list.
"""

import argparse
import json
import os
import queue
import signal
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import requests

from . import dialects, jwe, messages
from .auth import BearerToken, ClientCredentials
from .client import IbrClient
from .errors import DCIError
from .inbound import parse_body
from .interpret import interpret_item
from .keys import KeySet, SigningKey, public_key_from_pem
from .listener import ALL_ROUTES, CallbackListener
from .netguard import FetchPolicy, fetch_json, read_capped
from .signatures import verify_signature
from .simulator import FAILURES, Dataset, IbrSimulator
from .simulator.faults import FAULT_KINDS, FaultPlan
from .trust import TrustedKeys, fetch_jwks

CLI_SENDER_ID = "dci-cli"
SIMULATOR_NAME = "IBR simulator"  # the name the banner suggests for the registry's records
EXIT_OK, EXIT_INCOMPLETE, EXIT_USAGE = 0, 1, 2
# An integrator's peers (registry, simulator, Odoo) are often on their own machine or network.
LOCAL_FETCH = FetchPolicy(allow_private=True)


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
        keys = fetch_jwks(jwks_url, LOCAL_FETCH)
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


def _option(args, name, variable):
    value = getattr(args, name, None)
    return value if value else os.environ.get(variable) or None


def _auth(args):
    """The credentials given by options or environment variables (never printed)."""
    token = _option(args, "token", "DCI_BEARER_TOKEN")
    oauth = {
        "token_url": _option(args, "oauth_token_url", "DCI_OAUTH_TOKEN_URL"),
        "client_id": _option(args, "client_id", "DCI_OAUTH_CLIENT_ID"),
        "client_secret": _option(args, "client_secret", "DCI_OAUTH_CLIENT_SECRET"),
    }
    if token and any(oauth.values()):
        raise DCIError("give a bearer token or OAuth2 client credentials, not both")
    if token:
        return BearerToken(token)
    if any(oauth.values()):
        missing = [name for name, value in oauth.items() if not value]
        if missing:
            raise DCIError(f"OAuth2 client credentials lack {', '.join(missing)}")
        return ClientCredentials(
            oauth["token_url"],
            oauth["client_id"],
            oauth["client_secret"],
            scope=_option(args, "oauth_scope", "DCI_OAUTH_SCOPE"),
            timeout=args.timeout,
        )
    return None


def _connect(stack, args, key, **simulator_options):
    """``(simulator or None, registry keys, client)``: the built-in simulator
    unless ``--registry`` is given. With ``--encrypt`` every message both ways
    is encrypted (ours to the registry's ``use: enc`` key, its to a key of ours
    made for this run)."""
    registry, sim = args.registry, None
    ours = jwe.EncryptionKey.generate(CLI_SENDER_ID) if args.encrypt else None
    if not registry:
        if ours is not None:
            simulator_options.update(
                require_encryption=True,
                encrypt_answers=True,
                client_encryption_key=ours.recipient(),
            )
        dialect = dialects.dialect(args.dialect)
        sim = stack.enter_context(
            IbrSimulator(
                algorithm=args.algorithm,
                client_jwks=KeySet([dialect.key_for(key).public]),
                dialect=dialect,
                **simulator_options,
            )
        )
        registry = sim.url
        _say(f"started the built-in IBR simulator at {registry}")
    jwks_url = args.jwks or registry.rstrip("/") + "/.well-known/jwks.json"
    keys = _registry_keys(jwks_url)
    encryption = {}
    if ours is not None:
        recipient = jwe.recipient_from_jwks(fetch_json(jwks_url, LOCAL_FETCH))
        _say(f"encrypting to the registry's key {recipient.kid} ({recipient.alg})")
        encryption = {
            "encrypt_to": recipient,
            "decryption_keys": [ours],
            "require_encryption": True,
        }
    client = IbrClient(
        registry,
        key,
        CLI_SENDER_ID,
        receiver_id=_option(args, "receiver_id", "DCI_RECEIVER_ID"),
        auth=_auth(args),
        ibr_keys=keys if len(keys) else None,
        timeout=(5, args.timeout),
        allow_unsigned=args.allow_unsigned,
        dialect=args.dialect,
        **encryption,
    )
    return sim, keys, client


def cmd_check(args):
    pairs = _identifiers(args)
    results = _Results(pairs)
    key = SigningKey.generate(CLI_SENDER_ID, args.algorithm)
    with ExitStack() as stack:
        _sim, keys, client = _connect(stack, args, key, page_size=args.page_size)
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
            decryption_keys=client.decryption_keys,
            require_encryption=client.require_encryption,
            media_types=client.dialect.callback_media_types,
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


class _Inbox:
    """Callbacks the listener accepted, by action, for the commands to wait on."""

    def __init__(self):
        self.queue = queue.Queue()
        self.refused = []

    def listener(self, keys, args, client):
        return CallbackListener(
            TrustedKeys(keys),
            our_id=CLI_SENDER_ID,
            allow_unsigned=args.allow_unsigned,
            on_accept=self.queue.put,
            on_refuse=self._refuse,
            routes=ALL_ROUTES,
            decryption_keys=client.decryption_keys,
            require_encryption=client.require_encryption,
            media_types=client.dialect.callback_media_types,
        )

    def _refuse(self, error):
        self.refused.append(error)
        _say(f"callback refused: {error.code}: {error.message}")

    def wait(self, action, transaction_id, seconds):
        """The accepted ``action`` callback for ``transaction_id`` (``None``: none in time)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                accepted = self.queue.get(timeout=left)
            except queue.Empty:
                break
            message = accepted.message
            if accepted.header.action == action and (
                message is None or message.transaction_id == transaction_id
            ):
                return accepted
            self.queue.put(accepted)  # for another waiter (notify events)
            time.sleep(0.01)
        return None

    def drain(self, action, seconds):
        """Every accepted ``action`` callback arriving within ``seconds``."""
        found, deadline = [], time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                accepted = self.queue.get(timeout=left)
            except queue.Empty:
                break
            if accepted.header.action == action:
                found.append(accepted)
        return found


def _notification_rows(accepted_list):
    rows = []
    for accepted in accepted_list:
        for item in accepted.message.notify_event:
            records = item.data.reg_records
            rows.append(
                {
                    "reference_id": item.reference_id,
                    "event_type": item.data.reg_event_type,
                    "subscription_code": getattr(item, "subscription_code", None),
                    "records": records if isinstance(records, list) else [records],
                }
            )
    return rows


def cmd_subscribe(args):
    pairs = _identifiers(args)
    key = SigningKey.generate(CLI_SENDER_ID, args.algorithm)
    inbox = _Inbox()
    with ExitStack() as stack:
        sim, keys, client = _connect(stack, args, key)
        listener = stack.enter_context(inbox.listener(keys, args, client))
        queries = [messages.SearchQuery(messages.new_id(), t, v) for t, v in pairs]
        submission = client.subscribe(queries, sender_uri=listener.url_for("/on-subscribe"))
        _say(f"subscribe sent, correlation id {submission.correlation_id}")
        answer = inbox.wait("on-subscribe", submission.transaction_id, args.timeout)
        rows = _subscription_rows(queries, answer)
        if args.demo_notify and sim is not None:
            sim.notify(event_type=args.demo_notify)
        notifications = (
            _notification_rows(inbox.drain("notify", args.listen)) if args.listen else []
        )
    print(json.dumps({"subscriptions": rows, "notifications": notifications}, indent=2))
    return EXIT_OK if rows and all(r["status"] == "succ" for r in rows) else EXIT_INCOMPLETE


def _subscription_rows(queries, answer):
    by_reference = {}
    if answer is not None and answer.message is not None:
        by_reference = {item.reference_id: item for item in answer.message.subscribe_response}
    rows = []
    for query in queries:
        item = by_reference.get(query.reference_id)
        codes = [s.get("code") for s in item.subscriptions] if item else []
        rows.append(
            {
                "identifier": f"{query.identifier_type}:{query.identifier_value}",
                "reference_id": query.reference_id,
                "status": item.status if item else "no answer",
                "codes": [c for c in codes if c],
                "reason": (item.status_reason_code or item.status_reason_message) if item else None,
            }
        )
    return rows


def cmd_unsubscribe(args):
    key = SigningKey.generate(CLI_SENDER_ID, args.algorithm)
    inbox = _Inbox()
    with ExitStack() as stack:
        _sim, keys, client = _connect(stack, args, key)
        listener = stack.enter_context(inbox.listener(keys, args, client))
        submission = client.unsubscribe(args.code, sender_uri=listener.url_for("/on-unsubscribe"))
        _say(f"unsubscribe sent, correlation id {submission.correlation_id}")
        answer = inbox.wait("on-unsubscribe", submission.transaction_id, args.timeout)
    if answer is None or answer.message is None:
        print(json.dumps({"status": "no answer", "subscription_status": []}, indent=2))
        return EXIT_INCOMPLETE
    message = answer.message
    print(
        json.dumps(
            {
                "status": message.status,
                "reason": message.status_reason_code,
                "subscription_status": [i.dump() for i in message.subscription_status],
            },
            indent=2,
        )
    )
    return EXIT_OK if message.status == "succ" else EXIT_INCOMPLETE


def _beneficiaries(path):
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if isinstance(data, dict):
        data = data.get("beneficiaries", data.get("reg_records"))
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise DCIError("the file must hold a list of beneficiary records")
    return data


def cmd_enrollment_updates(args):
    beneficiaries = _beneficiaries(args.file)
    key = SigningKey.generate(CLI_SENDER_ID, args.algorithm)
    with ExitStack() as stack:
        _sim, _keys, client = _connect(stack, args, key)
        answer = client.enrollment_updates(beneficiaries)
    items = [i.dump() for i in answer.message.enrolled_response]
    print(
        json.dumps({"transaction_id": answer.transaction_id, "enrolled_response": items}, indent=2)
    )
    return EXIT_OK if items and all(i["status"] == "succ" for i in items) else EXIT_INCOMPLETE


def cmd_notify(args):
    body = {
        k: v
        for k, v in (
            ("code", args.code),
            ("identifier", args.identifier),
            ("event_type", args.event_type),
        )
        if v
    }
    session = requests.Session()
    session.trust_env = False
    try:
        with session.post(
            args.simulator.rstrip("/") + "/admin/notify", json=body, timeout=30, stream=True
        ) as response:
            content = read_capped(response, 64 * 1024, "the simulator")
            status = response.status_code
    except requests.RequestException:
        raise DCIError("the simulator cannot be reached") from None
    print(content.decode("utf-8", "replace"))
    return EXIT_OK if status == 200 else EXIT_INCOMPLETE


def cmd_jwks(args):
    keys = fetch_jwks(args.url, LOCAL_FETCH)
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
        keys = fetch_jwks(args.jwks, LOCAL_FETCH)
    try:
        verified = verify_signature(
            envelope.get("signature"), envelope.get("header"), envelope.get("message", {}), keys.get
        )
    except DCIError as exc:
        print(f"invalid: {exc.code}: {exc.message}")
        return EXIT_INCOMPLETE
    print(f"valid: {verified.scheme} signature by {verified.kid} ({verified.algorithm})")
    return EXIT_OK


def _fault_plan(text):
    try:
        return FaultPlan.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_simulate(args):
    dataset = Dataset.load(args.dataset) if args.dataset else None
    with IbrSimulator(
        algorithm=args.algorithm,
        host=args.host,
        port=args.port,
        latency=args.latency / 1000,
        page_size=args.page_size,
        failures=args.fail or (),
        client_jwks=args.client_jwks,
        jwks_refresh_interval=args.jwks_refresh_interval,
        key_file=args.key_file,
        callback_hosts=args.allow_callback_host or (),
        dataset=dataset,
        faults=args.faults,
        encryption=args.encryption,
        require_encryption=args.require_encryption,
        encrypt_answers=args.encrypt_answers,
        dialect=args.dialect,
    ) as sim:
        if args.client_jwks and not len(sim.client_keys):
            _say(_no_client_key_warning(sim.client_trust))
        print(_simulator_banner(sim, args), flush=True)  # last: its end says "ready"
        # a service manager stops it with SIGTERM: as cleanly as Ctrl-C. The
        # handler only raises (an Event set from a signal handler can deadlock
        # on the lock the main thread holds); a second signal stops it at once.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
    return EXIT_OK


def _simulator_banner(sim, args):
    """Where the simulator is and what to enter on the registry side (tests read it)."""
    kept = f"kept in {args.key_file}" if args.key_file else "new at every start: see --key-file"
    checked = (
        f"verified with the keys at {args.client_jwks}"
        if args.client_jwks
        else "not verified: see --client-jwks"
    )
    return "\n".join(
        [
            f"IBR simulator at {sim.url}",
            f"sender id: {sim.sender_id}",
            f"JWKS URL: {sim.jwks_url}",
            f"signing key: {sim.signing_key.kid} ({kept})",
            *(
                [f"encryption key: {sim.encryption_key.kid} ({sim.encryption_key.alg})"]
                if sim.encryption_key
                else []
            ),
            f"client requests: {checked}",
            *([sim.faults.describe()] if sim.faults else []),
            "",
            "Registry side (IBR Checks > Configuration):",
            "  IBR Sender",
            f"    Name: {SIMULATOR_NAME}",
            f"    Sender ID: {sim.sender_id}",
            f"    JWKS URL: {sim.jwks_url}",
            "  IBR Connection",
            f"    IBR Base URL: {sim.url}",
            f"    IBR Receiver ID: {sim.sender_id}",
            f"    Trusted IBR Sender: {SIMULATOR_NAME}",
            "",
            "Ctrl-C stops it.",
        ]
    )


def _no_client_key_warning(trust):
    why = trust.error or "it has no usable key"
    return (
        f"warning: no client key from {trust.url} ({why}); requests will be refused until "
        "that JWKS has a key; it will be fetched again on the first request, then at most "
        f"every {trust.limiter.min_interval:g} s"
    )


def _sending_options():
    sending = argparse.ArgumentParser(add_help=False)
    sending.add_argument("--registry", help="IBR base URL (default: the built-in simulator)")
    sending.add_argument("--jwks", help="the registry's JWKS URL")
    sending.add_argument("--timeout", type=float, default=30.0)
    sending.add_argument("--algorithm", choices=("ed25519", "rs256"), default="ed25519")
    sending.add_argument(
        "--allow-unsigned",
        action="store_true",
        help="accept unsigned callbacks and sync answers (diagnostics only)",
    )
    sending.add_argument("--receiver-id", help="the IBR's id for our headers (or DCI_RECEIVER_ID)")
    sending.add_argument("--token", help="bearer token (prefer DCI_BEARER_TOKEN)")
    sending.add_argument("--oauth-token-url", help="OAuth2 token URL (or DCI_OAUTH_TOKEN_URL)")
    sending.add_argument("--client-id", help="OAuth2 client id (or DCI_OAUTH_CLIENT_ID)")
    sending.add_argument(
        "--client-secret", help="OAuth2 client secret (prefer DCI_OAUTH_CLIENT_SECRET)"
    )
    sending.add_argument("--oauth-scope", help="OAuth2 scope (or DCI_OAUTH_SCOPE)")
    sending.add_argument(
        "--encrypt",
        action="store_true",
        help="encrypt every message to the registry's use=enc key and require encrypted answers",
    )
    sending.add_argument(
        "--dialect",
        choices=sorted(dialects.DIALECTS),
        default="openspp2",
        help="the registry's dialect: operation paths, sender_uri form, signature, key ids",
    )
    return sending


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m dci",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    sending = _sending_options()
    ids = argparse.ArgumentParser(add_help=False)
    ids.add_argument("--id", action="append", metavar="TYPE:VALUE")
    ids.add_argument("--ids-file", help="a file with one TYPE:VALUE per line")

    check = commands.add_parser("check", parents=[sending, ids], help="check identifiers in an IBR")
    check.add_argument("--sync", action="store_true", help="use /registry/sync/search")
    check.add_argument("--json", action="store_true", help="print JSON instead of a table")
    check.add_argument("--batch-size", type=int, default=100)
    check.add_argument("--page-size", type=int, help="(built-in simulator) records per page")
    check.set_defaults(run=cmd_check)

    subscribe = commands.add_parser(
        "subscribe", parents=[sending, ids], help="subscribe to enrolment events"
    )
    subscribe.add_argument(
        "--listen", type=float, default=0.0, metavar="SECONDS", help="then print notifications"
    )
    subscribe.add_argument(
        "--demo-notify",
        nargs="?",
        const=messages.ENROLMENT_EVENT,
        choices=(messages.ENROLMENT_EVENT, messages.ENROLMENT_STATUS_EVENT),
        help="(built-in simulator) emit this event once subscribed",
    )
    subscribe.set_defaults(run=cmd_subscribe)

    unsubscribe = commands.add_parser(
        "unsubscribe", parents=[sending], help="end subscriptions by their codes"
    )
    unsubscribe.add_argument("--code", action="append", required=True)
    unsubscribe.set_defaults(run=cmd_unsubscribe)

    updates = commands.add_parser(
        "enrollment-updates", parents=[sending], help="report enrolled beneficiaries"
    )
    updates.add_argument("file", help="JSON: a list of Beneficiary records")
    updates.set_defaults(run=cmd_enrollment_updates)

    notify = commands.add_parser("notify", help="make a running simulator emit notifications")
    notify.add_argument("--simulator", required=True, help="the simulator's URL (loopback)")
    notify.add_argument("--code", help="one subscription (default: every active one)")
    notify.add_argument("--identifier", metavar="TYPE:VALUE")
    notify.add_argument(
        "--event-type", choices=(messages.ENROLMENT_EVENT, messages.ENROLMENT_STATUS_EVENT)
    )
    notify.set_defaults(run=cmd_notify)

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
    simulate.add_argument(
        "--client-jwks",
        metavar="URL",
        help="verify requests with the keys at this JWKS URL (fetched again for a new kid)",
    )
    simulate.add_argument(
        "--jwks-refresh-interval",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="fetch the client JWKS again at most this often (default 30)",
    )
    simulate.add_argument(
        "--key-file",
        metavar="PATH",
        help="keep the signing key in this PEM file across restarts (made if absent, mode 0600)",
    )
    simulate.add_argument(
        "--allow-callback-host",
        action="append",
        metavar="HOST",
        help="also send callbacks to this host (default: loopback only)",
    )
    simulate.add_argument("--fail", action="append", choices=sorted(FAILURES))
    simulate.add_argument(
        "--faults",
        type=_fault_plan,
        metavar="PLAN",
        help="inject faults into some exchanges, reproducibly: seed=N and a rate (0-1) per "
        "kind, e.g. seed=7,drop=0.02,reset=0.05 (kinds: "
        + ", ".join(FAULT_KINDS)
        + "; timings: delay-seconds=S, stall-seconds=S, retry-after=S)",
    )
    simulate.add_argument(
        "--encryption",
        choices=jwe.ALGORITHMS,
        help="have an encryption key (published with use=enc) and open encrypted requests",
    )
    simulate.add_argument(
        "--require-encryption",
        action="store_true",
        help="refuse plain requests (err.encryption.invalid); implies --encryption RSA-OAEP-256",
    )
    simulate.add_argument(
        "--encrypt-answers",
        action="store_true",
        help="encrypt callbacks and sync answers to the use=enc key of --client-jwks",
    )
    simulate.add_argument(
        "--dialect",
        choices=sorted(dialects.DIALECTS),
        default="openspp2",
        help="speak as this kind of peer: operation paths, callback style, signature, key ids",
    )
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
