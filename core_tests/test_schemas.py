"""What we build validates against the SPDCI IBR OpenAPI; what we read is kept whole."""

from pathlib import Path

import pytest
from conftest import NOW, on_search

from dci import messages
from dci.client import IbrClient
from dci.errors import ServiceUnavailable
from dci.keys import KeySet, SigningKey
from dci.schemas import Ack, RequestHeader, SearchRequest, SearchResponse, TxnStatusResponse

SPEC_PATH = Path(__file__).resolve().parents[2] / "shared/spec/ibr_api_v1.0.0.yaml"
needs_spec = pytest.mark.skipif(
    not SPEC_PATH.exists(), reason=f"the IBR OpenAPI is absent ({SPEC_PATH}); not validated"
)


@pytest.fixture(scope="module")
def spec():
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(SPEC_PATH.read_text())


def validate(spec, schema, instance):
    from openapi_schema_validator import OAS30Validator

    rooted = dict(schema, components=spec["components"])  # '#/components/...' resolve here
    errors = sorted(OAS30Validator(rooted).iter_errors(instance), key=str)
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


def component(name):
    return {"$ref": f"#/components/schemas/{name}"}


def request_body(spec, path):
    return spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]


def ack_schema(spec):
    return spec["components"]["responses"]["Response"]["content"]["application/json"]["schema"]


QUERIES = [messages.SearchQuery(f"ref-{i}", "NID", f"10000000{i}") for i in range(3)]


class Capture:
    """A stand-in ``requests`` session that keeps what the client posts."""

    def __init__(self):
        self.bodies = []

    def post(self, url, data, headers, timeout, **options):
        import json

        self.bodies.append((url, json.loads(data)))
        raise ServiceUnavailable("captured")


@needs_spec
def test_request_header_and_search_request(spec):
    header = messages.request_header(
        "search",
        "spmis",
        total_count=3,
        receiver_id="ibr",
        sender_uri="https://spmis.example/dci_api/ibr/on-search",
    )
    validate(spec, component("MsgHeader_V1.0.0"), header)
    message = messages.search_request("txn-1", QUERIES, page_size=50)
    validate(spec, component("SearchRequest"), message)
    assert SearchRequest.model_validate(message).search_request[2].reference_id == "ref-2"


@needs_spec
def test_whole_signed_search_envelope(spec):
    client = IbrClient("http://ibr", SigningKey.generate("spmis"), "spmis", receiver_id="ibr")
    envelope = client.search_envelope(QUERIES, sender_uri="https://x.example/cb", page_size=10)
    validate(spec, request_body(spec, "/registry/search"), envelope)
    validate(spec, request_body(spec, "/registry/sync/search"), envelope)


@needs_spec
def test_callbacks_and_acks(spec, ed_key):
    envelope = on_search(ed_key, now=NOW)
    validate(spec, component("MsgCallbackHeader_V1.0.0"), envelope["header"])
    validate(spec, request_body(spec, "/registry/on-search"), envelope)
    validate(spec, component("SearchResponse"), envelope["message"])
    validate(spec, ack_schema(spec), messages.ack())
    from dci.errors import SignatureInvalid

    err = messages.err_ack(SignatureInvalid("bad"))
    validate(spec, ack_schema(spec), err)
    assert err["message"]["error"]["code"] == "err.signature.invalid"


@needs_spec
def test_enrolled_and_txn_status_requests(spec):
    capture = Capture()
    client = IbrClient(
        "http://ibr", SigningKey.generate("spmis"), "spmis", session=capture, ibr_keys=KeySet()
    )
    for call in (lambda: client.enrolled("NID", "1"), lambda: client.txn_status("txn-1")):
        with pytest.raises(ServiceUnavailable):
            call()
    (enrolled_url, enrolled), (status_url, status) = capture.bodies
    assert enrolled_url.endswith("/registry/sync/enrolled")
    validate(spec, request_body(spec, "/registry/sync/enrolled"), enrolled)
    validate(spec, component("EnrolledRequest"), enrolled["message"])
    assert status_url.endswith("/registry/sync/txn/status")
    validate(spec, request_body(spec, "/registry/sync/txn/status"), status)


def test_unknown_members_are_kept():
    header = RequestHeader.model_validate(
        {
            "message_id": "1",
            "message_ts": "2027-01-01T00:00:00Z",
            "action": "search",
            "sender_id": "s",
            "total_count": 1,
            "x-country": {"code": "PH"},
        }
    )
    assert header.dump()["x-country"] == {"code": "PH"}
    response = SearchResponse.model_validate(
        {
            "transaction_id": "t",
            "correlation_id": "c",
            "search_response": [
                {
                    "reference_id": "r",
                    "timestamp": "2027-01-01T00:00:00+02:00",
                    "status": "succ",
                    "data": {"reg_records": [{"any": "shape"}], "custom": 1},
                    "extension": True,
                }
            ],
        }
    )
    item = response.search_response[0].dump()
    assert item["extension"] is True and item["data"]["custom"] == 1


@pytest.mark.parametrize(
    "message",
    [
        {"transaction_id": "x" * 100, "search_request": []},
        {"transaction_id": "t", "search_request": []},
        {
            "transaction_id": "t",
            "search_request": [
                {
                    "reference_id": "r",
                    "timestamp": "not a time",
                    "search_criteria": {"query_type": "idtype-value", "query": {}},
                }
            ],
        },
        {
            "transaction_id": "t",
            "search_request": [
                {
                    "reference_id": "r",
                    "timestamp": "2027-01-01T00:00:00Z",
                    "search_criteria": {"query_type": "sql", "query": {}},
                }
            ],
        },
    ],
    ids=["long-transaction-id", "empty-batch", "bad-timestamp", "bad-query-type"],
)
def test_bad_search_requests_refused(message):
    with pytest.raises(ValueError):
        SearchRequest.model_validate(message)


def test_ack_model():
    assert Ack.model_validate(messages.ack("c-1")).message.correlation_id == "c-1"
    with pytest.raises(ValueError):
        Ack.model_validate({"message": {"ack_status": "rcvd", "timestamp": messages.now_iso()}})


@needs_spec
def test_the_spec_validator_bites(spec):
    header = messages.request_header("search", "spmis", total_count=1)
    del header["sender_id"]
    with pytest.raises(AssertionError):
        validate(spec, component("MsgHeader_V1.0.0"), header)
    with pytest.raises(AssertionError):
        validate(spec, ack_schema(spec), {"message": {"ack_status": "rcvd"}})


def _status(txn_status):
    return TxnStatusResponse.model_validate(
        {
            "transaction_id": "t1",
            "correlation_id": "c1",
            "txnstatus_response": {"txn_type": "search", "txn_status": txn_status},
        }
    )


def test_a_status_carrying_a_search_answer_gives_it():
    answer = _status(
        {
            "transaction_id": "t1",
            "correlation_id": "c1",
            "search_response": [
                {
                    "reference_id": "r1",
                    "timestamp": "2027-01-01T00:00:00Z",
                    "status": "succ",
                    "data": {"reg_records": []},
                }
            ],
        }
    ).search_answer()
    assert [item.reference_id for item in answer.search_response] == ["r1"]


def test_a_status_of_another_kind_gives_no_search_answer():
    assert _status({"status": "rcvd"}).search_answer() is None
