"""Every IBR operation beyond search, end to end over loopback HTTP: the core
client and the CLI against the reference simulator, each envelope we send
and each callback the simulator sends validated against the SPDCI OpenAPI."""

import json
import queue

import pytest
import requests
from test_schemas import SPEC_PATH, component, needs_spec, request_body, validate

from dci import cli, messages
from dci.client import IbrClient
from dci.errors import DCIError
from dci.keys import KeySet, SigningKey
from dci.listener import ALL_ROUTES, CallbackListener
from dci.simulator import IbrSimulator
from dci.simulator.dataset import beneficiary
from dci.testing import LoopbackServer
from dci.trust import TrustedKeys

OURS = "spmis.ops"
# the spec's path of each callback the simulator sends
CALLBACK_PATHS = {
    "on-search": "/registry/on-search",
    "on-subscribe": "/registry/on-subscribe",
    "on-unsubscribe": "/registry/on-unsubscribe",
    "notify": "/registry/notify",
    "txn-on-status": "/registry/txn/on-status",
}
# the spec's message schema of each request we send
REQUEST_MESSAGES = {
    "/registry/search": "SearchRequest",
    "/registry/subscribe": "SubscribeRequest",
    "/registry/unsubscribe": "UnSubscribeRequest",
    "/registry/txn/status": "TxnStatusRequest",
    "/registry/sync/enrollment/updates": "EnrollmentUpdatesRequest",
}


@pytest.fixture(scope="module")
def spec():
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(SPEC_PATH.read_text())


class RecordingSession(requests.Session):
    """A real session that keeps every body the client posts."""

    def __init__(self):
        super().__init__()
        self.trust_env = False
        self.bodies = []

    def post(self, url, data=None, **options):
        self.bodies.append((url, json.loads(data)))
        return super().post(url, data=data, **options)


@pytest.fixture
def ibr():
    key = SigningKey.generate(OURS)
    with IbrSimulator(client_jwks=KeySet([key.public])) as sim:
        inbox = queue.Queue()
        refused = []
        listener = CallbackListener(
            TrustedKeys(KeySet([sim.signing_key.public])),
            our_id=OURS,
            on_accept=inbox.put,
            on_refuse=refused.append,
            routes=ALL_ROUTES,
        )
        with listener:
            client = IbrClient(
                sim.url,
                key,
                OURS,
                receiver_id=sim.sender_id,
                ibr_keys=KeySet([sim.signing_key.public]),
                session=RecordingSession(),
            )
            yield sim, client, listener, inbox, refused


def next_callback(inbox, action, timeout=10):
    accepted = inbox.get(timeout=timeout)
    assert accepted.header.action == action
    return accepted


def assert_all_valid(spec, sim, client):
    """Every envelope we sent and every callback the simulator sent, against the spec."""
    assert client.session.bodies
    for url, body in client.session.bodies:
        path = url.split(sim.url, 1)[1]
        validate(spec, request_body(spec, path), body)
        validate(spec, component(REQUEST_MESSAGES[path]), body["message"])
    for action, envelope in sim.sent:
        validate(spec, request_body(spec, CALLBACK_PATHS[action]), envelope)


def queries(*values):
    return [messages.SearchQuery(messages.new_id(), "NID", v) for v in values]


@needs_spec
def test_subscribe_notify_unsubscribe(spec, ibr):
    sim, client, listener, inbox, refused = ibr
    wanted = queries("1000000001", "1000000003")
    submission = client.subscribe(wanted, sender_uri=listener.url_for("/on-subscribe"))
    answer = next_callback(inbox, "on-subscribe").message
    assert answer.transaction_id == submission.transaction_id
    assert answer.correlation_id == submission.correlation_id
    items = {i.reference_id: i for i in answer.subscribe_response}
    assert {i.status for i in items.values()} == {"succ"}
    code = items[wanted[0].reference_id].subscriptions[0]["code"]

    assert sim.notify(code) == 1  # a new enrolment: the IBR's record of the person
    event = next_callback(inbox, "notify").message.notify_event[0]
    assert event.model_extra["subscription_code"] == code
    assert event.data.reg_event_type == messages.ENROLMENT_EVENT
    person = event.data.reg_records["member"]["demographic_info"]["person"]
    assert person["identifier_value"] == "1000000001"

    assert sim.notify(code, event_type=messages.ENROLMENT_STATUS_EVENT) == 1
    event = next_callback(inbox, "notify").message.notify_event[0]
    programme = event.data.reg_records["member"]["programme_identifier"]
    assert programme["enrolment_status"] == "Exited"

    gone = client.unsubscribe([code], sender_uri=listener.url_for("/on-unsubscribe"))
    ended = next_callback(inbox, "on-unsubscribe").message
    assert (ended.transaction_id, ended.status) == (gone.transaction_id, "succ")
    assert [(s.code, s.status) for s in ended.subscription_status] == [(code, "unsubscribe")]
    assert sim.notify(code) == 0  # ended: nothing more is sent
    assert not refused
    assert_all_valid(spec, sim, client)


@needs_spec
def test_refusals_are_spec_shaped(spec, ibr):
    sim, client, listener, inbox, refused = ibr
    client.unsubscribe(["SUB-unknown"], sender_uri=listener.url_for("/on-unsubscribe"))
    answer = next_callback(inbox, "on-unsubscribe").message
    assert (answer.status, answer.status_reason_code) == ("rjct", "rjct.subscription_code.invalid")
    sim.failures = frozenset({"rjct"})
    client.subscribe(queries("1000000001"), sender_uri=listener.url_for("/on-subscribe"))
    item = next_callback(inbox, "on-subscribe").message.subscribe_response[0]
    assert (item.status, item.status_reason_code) == ("rjct", "rjct.notify_details.invalid")
    assert not refused
    assert_all_valid(spec, sim, client)


@needs_spec
def test_async_transaction_status(spec, ibr):
    sim, client, listener, inbox, refused = ibr
    search = client.search(queries("1000000001"), sender_uri=listener.url)
    next_callback(inbox, "on-search")
    asked = client.request_txn_status(
        search.transaction_id, sender_uri=listener.url_for("/txn/on-status")
    )
    status = next_callback(inbox, "txn-on-status").message
    assert status.transaction_id == asked.transaction_id != search.transaction_id
    assert status.txnstatus_response.txn_status["transaction_id"] == search.transaction_id
    validate(spec, component("SearchResponse"), status.txnstatus_response.txn_status)

    client.request_txn_status("never-sent", sender_uri=listener.url_for("/txn/on-status"))
    unknown = next_callback(inbox, "txn-on-status")
    assert (unknown.header.status, unknown.message) == ("rjct", None)
    assert not refused
    assert_all_valid(spec, sim, client)


@needs_spec
def test_enrollment_updates(spec, ibr):
    sim, client, _listener, _inbox, _refused = ibr
    records = [beneficiary("NID", "2000000001", "Cash Transfer Programme")] * 2
    answer = client.enrollment_updates(records)
    assert [i.status for i in answer.message.enrolled_response] == ["succ", "succ"]
    assert len(sim.enrolments) == 2
    validate(spec, component("MsgCallbackHeader_V1.0.0"), answer.raw["header"])
    validate(spec, component("EnrollmentUpdatesResponse"), answer.raw["message"])
    assert_all_valid(spec, sim, client)


def test_enrollment_updates_answer_must_verify(ibr):
    sim, client, _listener, _inbox, _refused = ibr
    sim.failures = frozenset({"bad-signature"})
    with pytest.raises(DCIError) as caught:
        client.enrollment_updates([beneficiary("NID", "1", "P")])
    assert caught.value.code == "err.signature.invalid"


def test_admin_notify_endpoint(ibr):
    sim, client, listener, inbox, _refused = ibr
    client.subscribe(queries("1000000004"), sender_uri=listener.url_for("/on-subscribe"))
    next_callback(inbox, "on-subscribe")
    answer = requests.post(sim.url + "/admin/notify", json={"identifier": "NID:1000000004"})
    assert answer.json() == {"sent": 1}
    assert len(next_callback(inbox, "notify").message.notify_event) == 3  # one per record


# -- the CLI ------------------------------------------------------------------


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_subscribe_with_a_demo_notification(capsys):
    code, out, err = run(
        capsys, "subscribe", "--id", "NID:1000000001", "--listen", "1.5", "--demo-notify"
    )
    assert code == 0, err
    result = json.loads(out)
    [row] = result["subscriptions"]
    assert row["status"] == "succ" and row["codes"]
    assert result["notifications"][0]["subscription_code"] == row["codes"][0]


def test_cli_unsubscribe_and_notify_against_a_running_simulator(capsys):
    with IbrSimulator() as sim:
        code, out, err = run(capsys, "subscribe", "--registry", sim.url, "--id", "NID:1000000001")
        assert code == 0, err
        [sub_code] = json.loads(out)["subscriptions"][0]["codes"]
        code, out, _err = run(capsys, "notify", "--simulator", sim.url, "--code", "SUB-none")
        assert (code, json.loads(out)) == (0, {"sent": 0})  # no such subscription
        code, out, _err = run(capsys, "notify", "--simulator", sim.url, "--code", sub_code)
        assert code == 0 and len(sim.sent) == 2  # on-subscribe, then this notify
        assert sim.sent[-1][1]["message"]["notify_event"][0]["subscription_code"] == sub_code
        code, out, err = run(capsys, "unsubscribe", "--registry", sim.url, "--code", sub_code)
        assert code == 0, err
        assert json.loads(out)["subscription_status"] == [
            {"code": sub_code, "status": "unsubscribe"}
        ]
        code, out, _err = run(capsys, "unsubscribe", "--registry", sim.url, "--code", sub_code)
        assert (code, json.loads(out)["status"]) == (1, "rjct")


def test_cli_enrollment_updates(capsys, tmp_path):
    path = tmp_path / "enrolled.json"
    path.write_text(json.dumps([beneficiary("NID", "3000000001", "School Feeding")]))
    code, out, err = run(capsys, "enrollment-updates", str(path))
    assert code == 0, err
    assert [i["status"] for i in json.loads(out)["enrolled_response"]] == ["succ"]


def _headers_seen(sim):
    return [json.loads(body)["header"] for _path, body in sim.requests]


def test_cli_sends_bearer_token_and_receiver_id(capsys, monkeypatch):
    with IbrSimulator() as sim:
        code, out, err = run(
            capsys,
            *("check", "--id", "NID:1000000001", "--sync", "--registry", sim.url),
            *("--token", "tok-123", "--receiver-id", "ibr.sim"),
        )
        assert code == 0, err
        assert "tok-123" not in out + err
        monkeypatch.setenv("DCI_BEARER_TOKEN", "tok-from-env")
        code, _out, err = run(capsys, "subscribe", "--id", "NID:1000000001", "--registry", sim.url)
        assert code == 0, err
        assert sim.authorizations == ["Bearer tok-123", "Bearer tok-from-env"]
        assert [h.get("receiver_id") for h in _headers_seen(sim)] == ["ibr.sim", None]


def test_cli_oauth_client_credentials(capsys, monkeypatch, tmp_path):
    records = tmp_path / "enrolled.json"
    records.write_text(json.dumps([beneficiary("NID", "4000000001", "Disability Grant")]))
    token = (200, {}, json.dumps({"access_token": "oauth-tok", "expires_in": 300}).encode())
    with LoopbackServer({"/token": token}) as oauth, IbrSimulator() as sim:
        monkeypatch.setenv("DCI_OAUTH_CLIENT_SECRET", "s3cret")
        code, out, err = run(
            capsys,
            *("enrollment-updates", "--registry", sim.url, "--receiver-id", "ibr.sim"),
            *("--oauth-token-url", oauth.url + "/token", "--client-id", "cli"),
            str(records),
        )
        assert code == 0, err
        assert "s3cret" not in out + err
        [(_method, _path, _headers, form)] = oauth.requests
        assert b"grant_type=client_credentials" in form and b"client_id=cli" in form
        assert sim.authorizations == ["Bearer oauth-tok"]
        assert _headers_seen(sim)[0]["receiver_id"] == "ibr.sim"


def test_cli_refuses_half_oauth_and_both_kinds(capsys):
    code, _out, err = run(
        capsys, "check", "--id", "NID:1", "--oauth-token-url", "http://127.0.0.1:9/t"
    )
    assert code == cli.EXIT_USAGE and "client_id, client_secret" in err
    code, _out, err = run(
        capsys,
        *("check", "--id", "NID:1", "--token", "t", "--client-id", "c"),
    )
    assert code == cli.EXIT_USAGE and "not both" in err
