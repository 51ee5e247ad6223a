"""Hostile callbacks over Odoo's real HTTP server: every one ends in a 4xx
with a spec ERR ack and an ``err.*`` code, never a 5xx ("send it again"),
and nothing is written."""

import base64
import http.client
import json
from urllib.parse import urlsplit

from odoo.tests import HttpCase, tagged

from ..dci import messages
from ..dci.keys import SigningKey
from ..dci.signatures import sign_envelope
from ..dci.simulator.dataset import beneficiary

SENDER = "ibr.hostile"
OURS = "spmis.hostile"


def b64url(text):
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


@tagged("post_install", "-at_install")
class TestHostileCallbacks(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.key = SigningKey.generate(SENDER, "ed25519", key_id="k1")
        sender = cls.env["spp.dci.ibr.sender"].create({"name": "Hostile", "sender_id": SENDER})
        sender._store_keys([cls.key.public])
        sender.sudo().callback_token = "s3cret"
        cls.connection = cls.env["spp.dci.ibr.connection"].create(
            {
                "name": "Hostile",
                "base_url": "http://127.0.0.1:9",
                "our_sender_id": OURS,
                "ibr_sender_id": sender.id,
            }
        )
        partner = cls.env["res.partner"].create({"name": "Hostile registrant"})
        cls.check = cls.env["spp.dci.duplication.check"].create(
            {
                "partner_id": partner.id,
                "identifier_type": "NID",
                "identifier_value": "1000000001",
                "data_source_id": cls.connection.id,
                "state": "checking",
                "reference_id": "ref-hostile",
                "transaction_id": "txn-hostile",
            }
        )
        cls.env.ref("spp_dci_client_ibr.fastapi_endpoint_dci_api")._handle_registry_sync()

    def envelope(self, **item_changes):
        item = {
            "reference_id": "ref-hostile",
            "timestamp": messages.now_iso(),
            "status": "succ",
            "data": {"reg_records": [beneficiary("NID", "1000000001", "Cash")]},
            **item_changes,
        }
        header = messages.callback_header("on-search", SENDER, status="succ", receiver_id=OURS)
        message = {
            "transaction_id": "txn-hostile",
            "correlation_id": "c",
            "search_response": [item],
        }
        return sign_envelope(header, message, self.key)

    def post_raw(self, body, headers):
        """POST through a plain socket, so nothing rewrites our headers."""
        url = urlsplit(self.base_url())
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        # no test cookie on a raw request: let the test server serve it anyway
        with self.allow_requests(all_requests=True):
            return self._exchange(connection, body, headers)

    @staticmethod
    def _exchange(connection, body, headers):
        try:
            connection.putrequest("POST", "/dci_api/ibr/on-search")
            for name, value in headers.items():
                connection.putheader(name, value)
            connection.endheaders()
            for chunk in body if isinstance(body, list) else [body]:
                connection.send(chunk)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def assert_refused(self, body, *, status=None, code=None, headers=None, auth=True):
        headers = dict(headers or {"Content-Type": "application/json"})
        if auth:
            headers.setdefault("Authorization", "Bearer s3cret")
        if not isinstance(body, list):
            headers.setdefault("Content-Length", str(len(body)))
        got, raw = self.post_raw(body, headers)
        self.assertTrue(400 <= got < 500, f"HTTP {got}: {raw[:200]!r}")
        if status:
            self.assertEqual(got, status)
        ack = json.loads(raw)["message"]
        self.assertEqual(ack["ack_status"], "ERR")
        self.assertTrue(ack["error"]["code"].startswith("err."))
        if code:
            self.assertEqual(ack["error"]["code"], code)
        self.check.invalidate_recordset()
        self.assertEqual((self.check.state, self.check.raw_response), ("checking", False))
        replays = self.env["spp.dci.replay.entry"].search_count([("sender_id", "=", SENDER)])
        self.assertEqual(replays, 0, "a refused callback leaves no replay-guard row")

    def test_hostile_inputs_end_in_coded_4xx(self):
        good = self.envelope()
        wrong = dict(good, signature=good["signature"].replace('signature="', 'signature="AA'))
        surrogate = json.dumps(wrong).replace("ref-hostile", "ref-\\ud800").encode()
        self.assert_refused(surrogate, code="err.signature.invalid")
        # raw (unescaped) lone surrogate bytes are not UTF-8: not JSON at all
        self.assert_refused(
            json.dumps(wrong)
            .replace("ref-hostile", "ref-\udcff", 1)
            .encode("utf-8", "surrogateescape"),
        )
        # a JWS whose protected header has a list as kid, a string as exp, or nests deeply
        kid = f"{SENDER}|k1|ed25519"
        deep = f'{{"alg": "EdDSA", "kid": "{kid}", "x": {"[" * 5000 + "]" * 5000}}}'
        for protected in (
            json.dumps({"alg": "EdDSA", "kid": [kid]}),
            json.dumps({"alg": "EdDSA", "kid": kid, "exp": "tomorrow"}),
            deep,
        ):
            jws = f"{b64url(protected)}.{b64url(json.dumps({'a': 1}))}.AAAA"
            self.assert_refused(json.dumps(dict(good, signature=jws)).encode())
        # signature parameters with thousands of digits
        params = good["signature"].replace('created="', 'created="' + "9" * 5000)
        self.assert_refused(json.dumps(dict(good, signature=params)).encode())
        # a non-ASCII bearer token
        self.assert_refused(
            json.dumps(good).encode(),
            headers={"Content-Type": "application/json", "Authorization": "Bearer s\u00e9cret"},
            status=401,
        )
        # no Content-Length: a chunked body
        chunked = json.dumps(good).encode()
        self.assert_refused(
            [b"%x\r\n%s\r\n" % (len(chunked), chunked), b"0\r\n\r\n"],
            headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
            status=411,
        )
        # encrypted messages are not supported yet: refused, not read as plain text
        header = dict(good["header"], is_msg_encrypted=True)
        encrypted = sign_envelope(header, good["message"], self.key)
        self.assert_refused(json.dumps(encrypted).encode(), code="err.encryption.invalid")
        # a callback header without status is not an on-search answer
        header = {k: v for k, v in good["header"].items() if k != "status"}
        self.assert_refused(json.dumps(sign_envelope(header, good["message"], self.key)).encode())
        # the genuine one still applies afterwards
        status, raw = self.post_raw(
            json.dumps(good).encode(),
            {
                "Content-Type": "application/json",
                "Authorization": "Bearer s3cret",
                "Content-Length": str(len(json.dumps(good).encode())),
            },
        )
        self.assertEqual((status, json.loads(raw)["message"]["ack_status"]), (200, "ACK"))
        self.check.invalidate_recordset()
        self.assertEqual((self.check.state, self.check.result), ("completed", "confirmed_match"))

    def test_sloppy_records_and_unreadable_items(self):
        def deliver(envelope):
            self.check.write({"state": "checking", "error_message": False, "raw_response": False})
            self.check.flush_recordset()  # the request reads the database, not our cache
            body = json.dumps(envelope).encode()
            status, raw = self.post_raw(
                body,
                {
                    "Content-Type": "application/json",
                    "Authorization": "Bearer s3cret",
                    "Content-Length": str(len(body)),
                },
            )
            self.assertEqual(status, 200, raw)
            self.check.invalidate_recordset()

        # a trusted but sloppy IBR: a member of the wrong type reads as absent;
        # there is a record, so it is a possible match, never a crash
        deliver(
            self.envelope(
                data={"reg_records": [{"member": {"demographic_info": ["not", "an", "object"]}}]}
            )
        )
        self.assertEqual((self.check.state, self.check.result), ("completed", "possible_match"))
        # a succ item without reg_records cannot be read: its check fails, with a reason
        deliver(self.envelope(data={"reg_type": "x"}))
        self.assertEqual(self.check.state, "failed")
        self.assertFalse(self.check.result, "never a result from an unreadable answer")
        self.assertIn("cannot be read", self.check.error_message)
