"""One rule at every entry point: whatever arrives ends in the DCIError hierarchy.

One hypothesis property per entry point: ``accept``, the JWS and parameter
signature forms, ``parse_jwks``, the client's handling of IBR answers, token
answers, ``interpret_item``, ``fetch_json``, and over real HTTP the CLI
listener and the simulator (a JSON answer to everything, and still serving).
Any exception other than a :class:`~dci.errors.DCIError` fails the property.
"""

import base64
import http.client
import io
import json
from urllib.parse import urlsplit

import pytest
import requests
from conftest import NOW, RECEIVER, SENDER, accept_on_search, on_search, raw, search_response
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dci import messages
from dci.auth import ClientCredentials
from dci.client import IbrClient, Submission, SyncAnswer
from dci.errors import DCIError
from dci.inbound import accept
from dci.interpret import ItemOutcome, classify, interpret_item
from dci.keys import KeySet, SigningKey, parse_jwks
from dci.listener import CallbackListener
from dci.netguard import FetchPolicy, fetch_json
from dci.replay import InMemoryReplayGuard
from dci.schemas import SearchRequest, SearchResponseItem
from dci.signatures import SignaturePolicy, sign_envelope, verify_signature
from dci.simulator import IbrSimulator, beneficiary
from dci.testing import LoopbackServer
from dci.trust import StaticTrustStore

PROPERTY = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
OVER_HTTP = settings(PROPERTY, max_examples=120)

# Text of every kind, lone surrogates included (hypothesis leaves them out by default).
TEXT = st.one_of(
    st.text(st.characters(blacklist_categories=()), max_size=12),
    st.sampled_from(["\ud800", "é\udfff", "", "succ", "rjct", "on-search", SENDER, RECEIVER]),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**320),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=16,
)
BYTES = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([b"", b"[" * 5000, b'{"header":' * 3000, b"\xed\xa0\x80", b"1" * 5000]),
)


def dumps(value):
    return json.dumps(value).encode()  # ASCII: lone surrogates travel as \u escapes


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jws_with_header(protected):
    encoded = protected if isinstance(protected, bytes) else dumps(protected)
    return f"{b64url(encoded)}.{b64url(b'{}')}.{b64url(b'sig')}"


def nested_text(depth):
    """JSON text nested ``depth`` objects deep (too deep for json.dumps to write)."""
    return b'{"x":' * depth + b'{"alg":"EdDSA","kid":"k"}' + b"}" * depth


SIGNATURES = st.one_of(
    JSON,
    st.builds(jws_with_header, JSON),
    st.builds(
        jws_with_header,
        st.fixed_dictionaries(
            {
                "kid": st.one_of(JSON, st.just(f"{SENDER}|ed1|ed25519")),
                "alg": st.sampled_from(["EdDSA", "RS256"]) | JSON,
            },
            optional={"exp": JSON, "iat": JSON, "crit": JSON, "b64": JSON},
        ),
    ),
    st.builds(  # a trusted kid and its algorithm: the claims are read
        jws_with_header,
        st.fixed_dictionaries(
            {"kid": st.just(f"{SENDER}|ed1|ed25519"), "alg": st.just("EdDSA"), "exp": JSON},
            optional={"iat": JSON},
        ),
    ),
    st.just(jws_with_header(nested_text(3000))),
    st.builds(
        lambda created, expires, sig: (
            f'kidId="{SENDER}|ed1|ed25519", algorithm="ed25519", created="{created}", '
            f'expires="{expires}", headers="(created) (expires) digest", signature="{sig}"'
        ),
        st.integers(0, 10**40) | st.just("9" * 5000),
        st.integers(0, 10**40) | st.just("9" * 5000),
        st.sampled_from(["AAAA", "é", "\ud800", "=" * 3]),
    ),
)


def _override(base, overrides):
    return {**base, **overrides} if isinstance(overrides, dict) else overrides


ENVELOPE_PARTS = st.fixed_dictionaries(
    {
        "header": st.dictionaries(
            st.sampled_from(
                ["message_id", "message_ts", "action", "status", "sender_id", "receiver_id"]
                + ["version", "total_count", "is_msg_encrypted", "meta", "extra"]
            ),
            JSON,
            max_size=3,
        )
        | JSON,
        "message": st.dictionaries(
            st.sampled_from(["transaction_id", "correlation_id", "search_response"]), JSON
        )
        | JSON,
        "signature": SIGNATURES,
    }
)


def _envelopes(key):
    genuine = on_search(key)

    def build(parts, keep_signature):
        body = {
            "header": _override(genuine["header"], parts["header"]),
            "message": _override(genuine["message"], parts["message"]),
            # the genuine signature over changed content: the digest is computed and must not match
            "signature": genuine["signature"] if keep_signature else parts["signature"],
        }
        return dumps(body)

    return st.one_of(BYTES, st.builds(build, ENVELOPE_PARTS, st.booleans()), st.builds(dumps, JSON))


@pytest.fixture(scope="module")
def key():
    return SigningKey.generate(SENDER, key_id="ed1")


@pytest.fixture(scope="module")
def trust(key):
    return StaticTrustStore({SENDER: KeySet([key.public])})


POLICY = SignaturePolicy(clock=lambda: NOW)


# -- accept -----------------------------------------------------------------


@PROPERTY
@given(data=st.data())
def test_accept(key, trust, data):
    body = data.draw(_envelopes(key))
    for callback in (True, False, "auto"):
        try:
            accept_on_search(body, trust, InMemoryReplayGuard(), POLICY, callback=callback)
        except DCIError:
            pass


@PROPERTY
@given(value=SIGNATURES, header=JSON, message=JSON)
def test_verify_signature(key, value, header, message):
    genuine = on_search(key)
    for h, m in ((genuine["header"], genuine["message"]), (header, message)):
        try:
            verify_signature(value, h, m, KeySet([key.public]).get, POLICY)
        except DCIError:
            pass


# -- JWKS, tokens, fetched documents -----------------------------------------------


JWK_MEMBERS = st.dictionaries(
    st.sampled_from(["kty", "crv", "x", "n", "e", "kid", "alg", "use", "d", "x5c"]), JSON
)


@PROPERTY
@given(data=st.data())
def test_parse_jwks(key, data):
    genuine = key.public.to_jwk()
    document = data.draw(
        st.one_of(
            BYTES,
            JSON,
            st.builds(dumps, JSON),
            st.builds(
                lambda keys: {"keys": keys},
                st.lists(JSON | st.builds(lambda m: {**genuine, **m}, JWK_MEMBERS), max_size=4),
            ),
        )
    )
    try:
        keys = parse_jwks(document)
    except DCIError:
        return
    assert all(isinstance(k.kid, str) for k in keys)


class FakeSession:
    """A ``requests`` session answering every call with one scripted response."""

    def __init__(self, status, content):
        self.status, self.content = status, content

    def post(self, url, **options):
        response = requests.Response()
        response.status_code = self.status
        response.raw = io.BytesIO(self.content)
        return response


STATUSES = st.just(200) | st.sampled_from(
    [200, 201, 202, 204, 301, 400, 401, 403, 404, 409, 422, 429, 500, 503]
)


@PROPERTY
@given(status=STATUSES, content=BYTES | st.builds(dumps, JSON | st.dictionaries(TEXT, JSON)))
def test_token_answers(status, content):
    credentials = ClientCredentials(
        "http://token.example/t", "id", "secret", session=FakeSession(status, content)
    )
    try:
        headers = credentials.headers()
    except DCIError:
        return
    assert headers["Authorization"].startswith("Bearer ")


@pytest.fixture(scope="module")
def document_server():
    with LoopbackServer({}) as server:
        yield server


@OVER_HTTP
@given(
    status=STATUSES,
    content=BYTES | st.builds(dumps, JSON),
    content_type=st.sampled_from(["application/json", "application/jwk-set+json", "text/html", ""]),
)
def test_fetch_json(document_server, status, content, content_type):
    document_server.routes["/doc"] = (status, {"Content-Type": content_type}, content)
    try:
        fetch_json(document_server.url + "/doc", FetchPolicy(allow_private=True))
    except DCIError:
        pass


# -- the client's handling of IBR answers ---------------------------------------


def _answers(ibr_key):
    """Answer bodies: bytes, JSON, acks, and signed answers with parts replaced."""

    def signed(parts):
        header = messages.callback_header("on-search", "ibr", status="succ")
        message = search_response()
        envelope = {
            "header": _override(header, parts["header"]),
            "message": _override(message, parts["message"]),
        }
        if parts["sign"]:
            return dumps(sign_envelope(envelope["header"], envelope["message"], ibr_key))
        return dumps(dict(envelope, signature=parts["signature"]))

    return st.one_of(
        BYTES,
        st.builds(dumps, JSON),
        st.builds(lambda m: dumps({"message": m}), JSON),
        st.builds(
            signed,
            st.fixed_dictionaries(
                {"header": JSON, "message": JSON, "signature": SIGNATURES, "sign": st.booleans()}
            ),
        ),
    )


@pytest.fixture(scope="module")
def ibr_key():
    return SigningKey.generate("ibr")


@PROPERTY
@given(data=st.data(), status=STATUSES, allow_unsigned=st.booleans())
def test_client_answers(ibr_key, data, status, allow_unsigned):
    content = data.draw(_answers(ibr_key))
    client = IbrClient(
        "http://ibr.example",
        SigningKey.generate("spmis"),
        "spmis",
        session=FakeSession(status, content),
        ibr_keys=KeySet([ibr_key.public]),
        allow_unsigned=allow_unsigned,
    )
    query = [messages.SearchQuery("ref-1", "NID", "1")]
    for call in (
        lambda: client.search(query, sender_uri="http://cb.example/x"),
        lambda: client.sync_search(query),
        lambda: client.enrolled("NID", "1"),
        lambda: client.txn_status("txn-1"),
    ):
        try:
            assert isinstance(call(), (Submission, SyncAnswer))
        except DCIError:
            pass


# -- interpret_item ---------------------------------------------------------------

RECORD_PATHS = [
    ("member",),
    ("member", "demographic_info"),
    ("member", "demographic_info", "person"),
    ("member", "demographic_info", "person", "identifier_value"),
    ("member", "demographic_info", "person", "identifiers"),
    ("member", "programme_identifier"),
    ("member", "programme_identifier", "programme"),
    ("member", "programme_identifier", "programme", "programme_name"),
    ("member", "programme_identifier", "enrolment_status"),
    ("programs",),
    ("enrollments",),
    ("identifiers",),
]


def _sloppy(path, value):
    record = beneficiary("NID", "1", "A")
    holder = record
    for step in path[:-1]:
        holder = holder[step] if isinstance(holder.get(step), dict) else holder
    holder[path[-1]] = value
    return record


RECORDS = st.lists(JSON | st.builds(_sloppy, st.sampled_from(RECORD_PATHS), JSON), max_size=4)


@PROPERTY
@given(
    status=st.sampled_from(["succ", "rjct", "pdng", "rcvd"]),
    data=JSON | st.builds(lambda r: {"reg_records": r}, RECORDS | JSON),
    pagination=st.none()
    | JSON
    | st.fixed_dictionaries(
        {"page_size": st.integers(), "page_number": st.integers(), "total_count": st.integers()}
    ),
)
def test_interpret_item(status, data, pagination):
    fields = {"reference_id": "r", "timestamp": "2027-01-01T00:00:00Z", "status": status}
    fields.update(data=data, pagination=pagination)
    try:
        item = SearchResponseItem.model_validate(fields)
    except ValueError:
        return  # not an item at all: the message is refused before interpretation
    try:
        assert isinstance(interpret_item(item, "NID", "1"), ItemOutcome)
    except DCIError:
        pass
    classify(data.get("reg_records") if isinstance(data, dict) else data, "NID", "1")


# -- over real HTTP: the CLI listener and the simulator ---------------------------------


def post(url, body, headers=None):
    """``(status, JSON body)`` of one POST over a fresh connection."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        sent = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        connection.request("POST", parts.path, body=body, headers=headers or sent)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def assert_json_answer(status, answer):
    assert status < 500
    if status >= 400:
        assert answer["message"]["ack_status"] == "ERR"
        assert answer["message"]["error"]["code"].startswith("err.")


@pytest.fixture(scope="module")
def listener(trust):
    with CallbackListener(
        trust, our_id=RECEIVER, on_accept=lambda _: None, on_refuse=lambda _: None, policy=POLICY
    ) as running:
        yield running


@OVER_HTTP
@given(data=st.data())
def test_listener_over_http(key, listener, data):
    assert_json_answer(*post(listener.url, data.draw(_envelopes(key))))


def test_listener_still_serving_after_the_property(key, listener):
    status, answer = post(listener.url, raw(on_search(key)))
    assert (status, answer["message"]["ack_status"]) == (200, "ACK")


def _requests(client_key):
    genuine = IbrClient("http://x", client_key, "spmis").search_envelope(
        [messages.SearchQuery("r1", "NID", "1000000001")], sender_uri="http://127.0.0.1:9/cb"
    )
    SearchRequest.model_validate(genuine["message"])

    def build(parts):
        return dumps(
            {
                "header": _override(genuine["header"], parts["header"]),
                "message": _override(genuine["message"], parts["message"]),
                "signature": parts["signature"],
            }
        )

    return st.one_of(BYTES, st.builds(dumps, JSON), st.builds(build, ENVELOPE_PARTS))


@pytest.fixture(scope="module", params=["unverified", "verified"])
def simulator(request):
    client_key = SigningKey.generate("spmis")
    jwks = KeySet([client_key.public]) if request.param == "verified" else None
    with IbrSimulator(client_jwks=jwks, failures=["drop"]) as sim:
        yield sim, client_key


ROUTES = [
    "/registry/search",
    "/registry/sync/search",
    "/registry/txn/status",
    "/registry/sync/txn/status",
    "/registry/sync/enrolled",
]


@OVER_HTTP
@given(data=st.data(), path=st.sampled_from(ROUTES))
def test_simulator_over_http(simulator, data, path):
    sim, client_key = simulator
    assert_json_answer(*post(sim.url + path, data.draw(_requests(client_key))))


def test_simulator_still_serving_after_the_property(simulator):
    sim, client_key = simulator
    client = IbrClient(sim.url, client_key, "spmis", ibr_keys=KeySet([sim.signing_key.public]))
    answer = client.sync_search([messages.SearchQuery("r1", "NID", "1000000001")])
    assert answer.message.search_response[0].status == "succ"


def test_accept_with_the_simulators_request_model(key):
    """The simulator's own path (request header, SearchRequest) also ends in DCIError."""
    for body in (b"{}", dumps({"header": {}, "message": []}), raw(on_search(key))):
        with pytest.raises(DCIError):
            accept(
                body,
                action="search",
                message_model=SearchRequest,
                our_id="ibr.sim",
                trust=StaticTrustStore({}),
                replay_guard=InMemoryReplayGuard(),
                callback=False,
            )
