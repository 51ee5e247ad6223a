"""A connection set to each peer dialect talks to the simulator set to the same one."""

import json

from odoo.exceptions import ValidationError
from odoo.tests import tagged

from ..dci import dialects, messages
from ..dci.jws import looks_like_jws
from ..dci.keys import SigningKey, parse_jwks
from ..dci.messages import SearchQuery
from ..dci.simulator import IbrSimulator
from ..dci.testing import LoopbackServer
from .common import IBR_SENDER_ID, OUR_SENDER_ID, IbrCase

QUERY = SearchQuery("r1", "NID", "1000000001")


@tagged("post_install", "-at_install")
class TestPeerDialects(IbrCase):
    def search_through(self, preset, **connection):
        """One sync search and one async submission through ``preset``; what the IBR got."""
        self.connection.write({"peer_dialect": preset, **connection})
        dialect = self.connection._dialect()
        # the simulator reads our keys as the IBR does: from our published JWKS
        ours = parse_jwks(self.connection._public_jwks())
        sender_id = f"ibr.{preset}"
        with IbrSimulator(sender_id=sender_id, client_jwks=ours, dialect=dialect) as sim:
            sender = self.env["spp.dci.ibr.sender"].create(
                {"name": f"Dialect {preset}", "sender_id": sender_id}
            )
            sender._store_keys(list(parse_jwks(sim.jwks)))
            self.connection.write(
                {"base_url": sim.url, "ibr_sender_id": sender.id, "receiver_id": sender_id}
            )
            client = self.connection._get_client()
            answer = client.sync_search([QUERY])
            # a callback address nobody serves: the simulator's answer goes nowhere
            client.search([QUERY], sender_uri="http://127.0.0.1:9/dci_api/ibr/on-search")
            requests = list(sim.requests)
        return dialect, answer, requests

    def test_each_preset_end_to_end(self):
        for preset in dialects.DIALECTS:
            with self.subTest(preset=preset):
                dialect, answer, requests = self.search_through(preset)
                self.assertEqual(answer.message.search_response[0].reference_id, "r1")
                paths = [path for path, _body in requests]
                self.assertEqual(paths, [dialect.path("sync/search"), dialect.path("search")])
                signed_jws = looks_like_jws(answer.raw["signature"])
                self.assertEqual(signed_jws, dialect.signature == dialects.JWS)
                sender_uri = json.loads(requests[1][1])["header"]["sender_uri"]
                self.assertEqual(
                    sender_uri.endswith("/ibr/on-search"),
                    dialect.callback_style == dialects.FULL_URL,
                )

    def test_a_custom_dialect(self):
        dialect, answer, requests = self.search_through(
            "custom",
            operation_path="/api/v2/{op}",
            signature_scheme=dialects.JWS,
            kid_style=dialects.THUMBPRINT_KID,
        )
        self.assertEqual(requests[0][0], "/api/v2/sync/search")
        self.assertTrue(looks_like_jws(answer.raw["signature"]))
        with self.assertRaises(ValidationError):
            self.connection.write({"operation_path": "/api/v2/search"})

    def test_a_thumbprint_peer_finds_our_key_in_our_jwks(self):
        self.connection.write({"peer_dialect": "opencrvs"})
        kids = [k["kid"] for k in self.connection._public_jwks()["keys"]]
        thumbprint = dialects.thumbprint(self.connection._signing_key())
        self.assertIn(thumbprint, kids)
        self.assertIn(self.connection.signing_kid, kids)  # other peers still find it
        self.connection.write({"peer_dialect": "openspp2"})
        self.assertNotIn(thumbprint, [k["kid"] for k in self.connection._public_jwks()["keys"]])

    def test_our_callback_url_as_each_callback_style_sends_it(self):
        url = self.connection.get_callback_url()
        self.connection.write({"peer_dialect": "openg2p"})
        base = self.connection._dialect().sender_uri(url)
        self.assertEqual(base + "/on-search", url)  # where a base-style peer posts: our route
        self.connection.write({"peer_dialect": "openspp2"})
        self.assertEqual(self.connection._dialect().sender_uri(url), url)

    def test_opencrvs_needs_our_sender_id_to_be_a_url(self):
        self.connection.write({"peer_dialect": "opencrvs"})
        self.assertFalse(self.connection.is_ready)
        self.assertIn("/.well-known/jwks.json", self.connection.config_problem)
        self.connection.write({"our_sender_id": "https://spmis.example/dci_api"})
        self.connection.action_generate_signing_key()  # its kid follows the sender id
        self.assertTrue(self.connection.is_ready, self.connection.config_problem)

    def test_our_routes_answer_a_peer_that_appends_on_action(self):
        check = self.make_check()
        reference_id = self.mark_sent(check)
        body = self.on_search_body([self.item(reference_id)])
        response = self.post(body, "/ibr/on-search/on-search")  # it was given the full URL
        self.assertEqual(response.status_code, 200, response.text)
        check.invalidate_recordset()
        self.assertEqual((check.state, check.result), ("completed", "no_match"))
        response = self.post(b"{}", "/ibr/on-txn-status")  # it was given our base
        self.assertEqual(response.json()["message"]["error"]["code"], "err.request.bad")
        self.assertEqual(self.post(b"{}", "/ibr/notify/on-notify").status_code, 404)

    def test_an_opencrvs_style_callback_is_verified_by_its_thumbprint_kid(self):
        key = SigningKey.generate(IBR_SENDER_ID, "rs256")
        crvs = dialects.dialect("opencrvs")
        document = {"keys": [crvs.key_for(key).public.to_jwk()]}  # kid: the JWK thumbprint
        with LoopbackServer({"/jwks.json": (200, {}, json.dumps(document).encode())}) as server:
            self.sender.jwks_url = server.url + "/jwks.json"
            self.sender.fetch_public_key()
        check = self.make_check()
        reference_id = self.mark_sent(check)
        header = messages.callback_header(
            "on-search", IBR_SENDER_ID, status="succ", receiver_id=OUR_SENDER_ID
        )
        message = {
            "transaction_id": "txn-1",
            "correlation_id": "corr-1",
            "search_response": [self.item(reference_id)],
        }
        envelope = crvs.sign(header, message, key)
        self.assertTrue(looks_like_jws(envelope["signature"]))
        # as OpenCRVS posts it: no content type set, so text/plain; taken only once a
        # connection's peer speaks that dialect
        as_text = {"Content-Type": crvs.callback_content_type}
        body = json.dumps(envelope).encode()
        refused = self.post(body, headers=as_text)
        self.assertEqual(refused.status_code, 415, refused.text)
        self.connection.peer_dialect = "opencrvs"
        response = self.post(body, headers=as_text)
        self.assertEqual(response.status_code, 200, response.text)
        check.invalidate_recordset()
        self.assertEqual(check.state, "completed")
        self.assertEqual(self.post(body, headers={"Content-Type": "text/html"}).status_code, 415)

    def test_the_form_explains_the_preset(self):
        self.connection.write({"peer_dialect": "openg2p"})
        self.assertIn("/on-<action>", self.connection.peer_dialect_help)
