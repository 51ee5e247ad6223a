"""One regression test per class of input that once escaped the error hierarchy
or was taken for more than it is (issue 14). Network, server and sync-answer
cases live in test_netguard.py, test_http_servers.py and test_sync_binding.py."""

import base64
import hmac
import io
import json

import pytest
import requests
from conftest import NOW, RECEIVER, SENDER, accept_on_search, on_search, raw, search_response

from dci import messages
from dci.auth import BearerToken, bearer_matches
from dci.canonical import matching_digest
from dci.cavage import SignatureParams
from dci.client import IbrClient
from dci.errors import (
    BodyTooLarge,
    ConfigurationError,
    DCIError,
    EncryptionInvalid,
    EnvelopeError,
    KeyFormatError,
    PeerRejected,
    SignatureInvalid,
)
from dci.inbound import check_request_headers
from dci.interpret import CONFIRMED_MATCH, NO_MATCH, POSSIBLE_MATCH, interpret_item
from dci.keys import KeySet, SigningKey, parse_jwks
from dci.schemas import SearchResponseItem
from dci.signatures import sign_envelope, verify_signature
from dci.simulator import beneficiary

# -- text that cannot be encoded ---------------------------------------------------


@pytest.mark.parametrize("where", ["header", "message"])
def test_escaped_lone_surrogate_with_a_wrong_signature_is_refused(ed_key, trust, policy, where):
    envelope = on_search(ed_key, search_response(records=[{"name": "Zoé"}]), now=NOW)
    target = envelope["header"] if where == "header" else envelope["message"]
    target["note"] = "\ud800 é"  # after signing: the signature no longer matches
    with pytest.raises(SignatureInvalid):
        accept_on_search(raw(envelope), trust, policy=policy)


def test_utf8_form_of_a_lone_surrogate_does_not_exist():
    # The digest's UTF-8 encoder raises UnicodeEncodeError here: no form, not a crash.
    assert matching_digest({"a": "\udfff é"}, {}, lambda digest: False) is None


def test_genuinely_signed_lone_surrogate_verifies(ed_key, trust, policy):
    envelope = on_search(ed_key, search_response(records=[{"name": "x\ud800"}]), now=NOW)
    accepted = accept_on_search(raw(envelope), trust, policy=policy)
    assert accepted.message.search_response[0].data.reg_records == [{"name": "x\ud800"}]


def test_raw_surrogate_bytes_with_a_wrong_signature_are_refused(ed_key, trust, policy):
    # json reads bytes with "surrogatepass": the surrogate reaches the digest as text
    envelope = on_search(ed_key, search_response(records=[{"note": "é"}]), now=NOW)
    body = raw(envelope).replace(b'"\\u00e9"', b'"\xed\xa0\x80"')
    assert b"\xed\xa0\x80" in body
    with pytest.raises(SignatureInvalid):
        accept_on_search(body, trust, policy=policy)
    status = raw(on_search(ed_key, now=NOW)).replace(b'"succ"', b'"succ\xed\xa0\x80"')
    with pytest.raises(EnvelopeError):
        accept_on_search(status, trust, policy=policy)


def test_error_messages_carry_no_lone_surrogate():
    error = EnvelopeError("bad value \ud800")
    assert error.message == "bad value \\ud800"
    assert messages.json_bytes(messages.err_ack(error))  # any writer can send it


# -- wrong JSON types and unbounded nesting in signature structures -----------------


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged_jws(protected_json):
    return f"{b64url(protected_json)}.{b64url(b'{}')}.{b64url(b'x' * 64)}"


@pytest.mark.parametrize(
    "protected",
    [
        b'{"alg": "EdDSA", "kid": ["ibr.example|ed1|ed25519"]}',
        b'{"alg": "EdDSA", "kid": {"k": 1}}',
        b'{"alg": ["EdDSA"], "kid": "ibr.example|ed1|ed25519"}',
        b'{"alg": "EdDSA", "kid": "ibr.example|ed1|ed25519", "exp": "soon"}',
        b'{"alg": "EdDSA", "kid": "ibr.example|ed1|ed25519", "exp": 1, "iat": [1]}',
        b'{"alg": "EdDSA", "kid": "ibr.example|ed1|ed25519", "exp": true}',
        b'{"alg": "EdDSA", "kid": "ibr.example|ed1|ed25519", "exp": ' + b"9" * 4000 + b"}",
        b'{"x":' * 5000 + b"{}" + b"}" * 5000,
        b"[" * 5000 + b"]" * 5000,
        b'"just text"',
    ],
    ids=[
        "kid-list",
        "kid-object",
        "alg-list",
        "exp-string",
        "iat-list",
        "exp-bool",
        "exp-4000-digits",
        "deep-object",
        "deep-array",
        "not-an-object",
    ],
)
def test_jws_protected_header_of_the_wrong_shape(ed_key, keyset, policy, protected):
    envelope = on_search(ed_key, now=NOW)
    with pytest.raises(SignatureInvalid):
        verify_signature(
            forged_jws(protected), envelope["header"], envelope["message"], keyset.get, policy
        )


def test_deep_jwks_is_a_key_format_error():
    with pytest.raises(KeyFormatError):
        parse_jwks(b'{"keys": [' + b"[" * 5000 + b"]" * 5000 + b"]}")


@pytest.mark.parametrize(
    "member", [{"kid": ["a"]}, {"kid": 7}, {"alg": {"x": 1}}, {"crv": ["Ed25519"]}, {"x": 5}]
)
def test_jwk_members_of_the_wrong_type_are_skipped(ed_key, member):
    keys = parse_jwks({"keys": [dict(ed_key.public.to_jwk(), **member), ed_key.public.to_jwk()]})
    assert [k.kid for k in keys] == [ed_key.kid]
    assert len(keys.skipped) == 1


def test_key_set_lookup_by_unhashable_kid():
    with pytest.raises(DCIError):
        KeySet().get(["a", "kid"])


# -- numbers with thousands of digits -------------------------------------------------


@pytest.mark.parametrize("member", ["created", "expires"])
def test_signature_times_with_thousands_of_digits(ed_key, trust, policy, member):
    envelope = on_search(ed_key, now=NOW)
    params = SignatureParams.parse(envelope["signature"])
    envelope["signature"] = params.format().replace(
        f'{member}="{getattr(params, member)}"', f'{member}="{"9" * 5000}"'
    )
    with pytest.raises(SignatureInvalid, match="not Unix times"):
        accept_on_search(raw(envelope), trust, policy=policy)


def test_content_length_with_thousands_of_digits():
    with pytest.raises(BodyTooLarge):
        check_request_headers("application/json", "9" * 5000)


def test_body_number_with_thousands_of_digits(ed_key, trust, policy):
    body = raw(on_search(ed_key, now=NOW)).replace(
        b'"message_id"', b'"n": ' + b"1" * 5000 + b', "message_id"'
    )
    assert b"1" * 5000 in body
    with pytest.raises(EnvelopeError):
        accept_on_search(body, trust, policy=policy)


# -- a non-ASCII bearer token -------------------------------------------------------


def test_hmac_compare_digest_is_the_hazard():
    with pytest.raises(TypeError):  # what the Odoo trust store called on the header text
        hmac.compare_digest("Bearer é", "Bearer é")


@pytest.mark.parametrize(
    "header,token,expected",
    [
        ("Bearer tok-1", "tok-1", True),
        ("bearer  tok-1 ", "tok-1", True),
        ("Bearer tök", "tök", True),
        ("Bearer tök", "tok", False),
        ("Bearer \udc80", "tok", False),
        ("Bearer \udc80", "\udc80", True),
        ("Basic tok-1", "tok-1", False),
        ("tok-1", "tok-1", False),
        (None, "tok-1", False),
        ("Bearer ", "", False),
        (["Bearer tok-1"], "tok-1", False),
    ],
)
def test_bearer_matches(header, token, expected):
    assert bearer_matches(header, token) is expected


def test_non_ascii_outgoing_bearer_is_a_configuration_error():
    with pytest.raises(ConfigurationError):
        BearerToken("tök").headers()


# -- a trusted but sloppy IBR ----------------------------------------------------------


def _item(records=None, **fields):
    body = {"reference_id": "r", "timestamp": "2027-01-01T00:00:00Z", "status": "succ"}
    if records is not None:
        body["data"] = {"reg_records": records}
    return SearchResponseItem.model_validate({**body, **fields})


def _sloppy(**member):
    record = beneficiary("NID", "1", "Cash")
    record["member"].update(member)
    return record


@pytest.mark.parametrize(
    "record,result",
    [
        (_sloppy(demographic_info=["a list"]), POSSIBLE_MATCH),
        (_sloppy(demographic_info={"person": "text"}), POSSIBLE_MATCH),
        (_sloppy(programme_identifier=[{"programme": ["x"]}, True, None]), POSSIBLE_MATCH),
        (_sloppy(programme_identifier={"programme": {"programme_name": {"x": 1}}}), POSSIBLE_MATCH),
        ({"identifiers": 5, "member": [], "programs": "Cash"}, POSSIBLE_MATCH),
        ({"identifiers": [{"type": "NID", "value": ["1"]}], "programs": ["Cash"]}, POSSIBLE_MATCH),
        ({"identifiers": [{"type": "NID", "value": 1}], "programs": ["Cash"]}, CONFIRMED_MATCH),
        ("a bare string", POSSIBLE_MATCH),
        (None, POSSIBLE_MATCH),
    ],
    ids=[
        "demographic-list",
        "person-text",
        "programmes-odd",
        "programme-name-object",
        "members-odd",
        "identifier-value-list",
        "identifier-value-number",
        "record-string",
        "record-null",
    ],
)
def test_sloppy_records_are_read_not_crashed_on(record, result):
    assert interpret_item(_item([record]), "NID", "1").interpretation.result == result


@pytest.mark.parametrize(
    "item",
    [
        {},  # no data at all
        {"data": {"reg_type": "ns:org:RegistryType:IBR"}},  # data without reg_records
        {"data": {"reg_records": None}},
        {"data": {"reg_records": {"member": {}}}},
        {
            "data": {"reg_records": []},
            "pagination": {"page_size": 0, "page_number": 1, "total_count": 3},
        },
        {
            "data": {"reg_records": []},
            "pagination": {"page_size": 10, "page_number": 5, "total_count": 3},
        },
        {
            "data": {"reg_records": []},
            "pagination": {"page_size": 1, "page_number": 1, "total_count": -1},
        },
    ],
    ids=[
        "no-data",
        "no-reg-records",
        "null-records",
        "records-object",
        "page-size-0",
        "page-5-of-1",
        "negative-total",
    ],
)
def test_unreadable_succ_item_fails_with_a_reason_not_no_match(item):
    with pytest.raises(EnvelopeError):
        interpret_item(_item(**item), "NID", "1")


def test_empty_reg_records_is_still_no_match():
    assert interpret_item(_item([]), "NID", "1").interpretation.result == NO_MATCH


# -- an IBR's 4xx answer of any shape ----------------------------------------------------


class OneAnswer:
    def __init__(self, status, content):
        self.status, self.content = status, content

    def post(self, url, **options):
        response = requests.Response()
        response.status_code, response.raw = self.status, io.BytesIO(self.content)
        return response


@pytest.mark.parametrize(
    "content",
    [
        b"[1, 2]",
        b'"refused"',
        b"42",
        b"null",
        b"{}",
        b'{"message": "no"}',
        b'{"message": {"error": "no"}}',
        b'{"message": {"error": {"code": 5, "message": ["x"]}}}',
        b'{"errors": [{"code": "401"}]}',
        b"<html>",
        b"[" * 5000,
    ],
)
def test_refusal_bodies_of_any_shape(content):
    client = IbrClient("http://ibr", SigningKey.generate("s"), "s", session=OneAnswer(403, content))
    with pytest.raises(PeerRejected) as info:
        client.search([messages.SearchQuery("r", "NID", "1")], sender_uri="http://cb/x")
    assert (info.value.code, info.value.http_status) == ("err.request.bad", 403)
    assert "HTTP 403" in info.value.message


def test_refusal_body_with_an_error_object_is_quoted():
    content = json.dumps(messages.err_ack(SignatureInvalid("bad sig"))).encode()
    client = IbrClient("http://ibr", SigningKey.generate("s"), "s", session=OneAnswer(401, content))
    with pytest.raises(PeerRejected) as info:
        client.search([messages.SearchQuery("r", "NID", "1")], sender_uri="http://cb/x")
    assert (info.value.code, info.value.message) == ("err.signature.invalid", "bad sig")


# -- as strict as the spec where strictness protects data -------------------------------


def test_on_search_header_without_status_is_refused(ed_key, trust, policy):
    envelope = on_search(ed_key, now=NOW)
    del envelope["header"]["status"]
    envelope = sign_envelope(envelope["header"], envelope["message"], ed_key, now=NOW)
    for callback in (True, "auto"):  # "auto" is what the Odoo route passes
        with pytest.raises(EnvelopeError, match="status"):
            accept_on_search(raw(envelope), trust, policy=policy, callback=callback)


def test_encrypted_message_is_refused_with_its_code(ed_key, trust, policy):
    header = messages.callback_header("on-search", SENDER, status="succ", receiver_id=RECEIVER)
    envelope = sign_envelope(
        dict(header, is_msg_encrypted=True), search_response(), ed_key, now=NOW
    )
    with pytest.raises(EncryptionInvalid) as info:
        accept_on_search(raw(envelope), trust, policy=policy)
    assert (info.value.code, info.value.http_status) == ("err.encryption.invalid", 400)


def test_message_id_as_long_as_the_spec_allows(ed_key, trust, policy):
    header = messages.callback_header("on-search", SENDER, status="succ", receiver_id=RECEIVER)
    header["message_id"] = "m" * 500  # the spec sets no maximum
    envelope = sign_envelope(header, search_response(), ed_key, now=NOW)
    assert accept_on_search(raw(envelope), trust, policy=policy).header.message_id == "m" * 500
    header["message_id"] = ""  # but an empty one cannot tell two messages apart
    envelope = sign_envelope(header, search_response(), ed_key, now=NOW)
    with pytest.raises(EnvelopeError, match="message_id"):
        accept_on_search(raw(envelope), trust, policy=policy)


def test_missing_correlation_id_is_refused(ed_key, trust, policy):
    message = search_response()
    del message["correlation_id"]
    envelope = on_search(ed_key, message, now=NOW)
    with pytest.raises(EnvelopeError, match="correlation_id"):
        accept_on_search(raw(envelope), trust, policy=policy)


# -- authenticate before expensive work -----------------------------------------------------


def test_forged_message_is_refused_before_its_shape_is_read(ed_key, trust, policy):
    """A forged body that is also malformed reports the forgery: validation never ran."""
    envelope = on_search(ed_key, now=NOW)
    envelope["message"]["search_response"] = [{"not": "an item"}] * 100
    with pytest.raises(SignatureInvalid):
        accept_on_search(raw(envelope), trust, policy=policy)
    nested = on_search(ed_key, now=NOW)
    nested["message"]["deep"] = json.loads("[" * 40 + "]" * 40)
    with pytest.raises(SignatureInvalid):  # nesting is bounded once authenticated
        accept_on_search(raw(nested), trust, policy=policy)
    signed_deep = on_search(
        ed_key, dict(search_response(), deep=nested["message"]["deep"]), now=NOW
    )
    with pytest.raises(EnvelopeError, match="nesting"):
        accept_on_search(raw(signed_deep), trust, policy=policy)
