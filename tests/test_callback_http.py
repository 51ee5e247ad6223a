"""Callbacks through Odoo's real HTTP server (routing, dispatcher, commit)."""

import json

from odoo.tests import HttpCase, tagged

from ..dci import messages
from ..dci.keys import SigningKey
from ..dci.signatures import sign_envelope
from ..dci.simulator.dataset import beneficiary


@tagged("post_install", "-at_install")
class TestCallbackHttp(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.key = SigningKey.generate("ibr.http")
        sender = cls.env["spp.dci.ibr.sender"].create({"name": "HTTP IBR", "sender_id": "ibr.http"})
        sender._store_keys([cls.key.public])
        cls.connection = cls.env["spp.dci.ibr.connection"].create(
            {
                "name": "HTTP",
                "base_url": "http://127.0.0.1:9",
                "our_sender_id": "spmis.http",
                "ibr_sender_id": sender.id,
            }
        )
        cls.partner = cls.env["res.partner"].create({"name": "HTTP registrant"})
        cls.env.ref("spp_dci_client_ibr.fastapi_endpoint_dci_api")._handle_registry_sync()

    def body(self, reference, programme, page):
        item = {
            "reference_id": reference,
            "timestamp": messages.now_iso(),
            "status": "succ",
            "data": {"reg_records": [beneficiary("NID", "1", programme)]},
            "pagination": {"page_size": 1, "page_number": page, "total_count": 2},
        }
        header = messages.callback_header(
            "on-search", "ibr.http", status="succ", receiver_id="spmis.http"
        )
        message = {"transaction_id": "t-http", "correlation_id": "c", "search_response": [item]}
        return json.dumps(sign_envelope(header, message, self.key)).encode()

    def test_pages_out_of_order_and_duplicated_over_http(self):
        check = self.env["spp.dci.duplication.check"].create(
            {
                "partner_id": self.partner.id,
                "identifier_type": "NID",
                "identifier_value": "1",
                "data_source_id": self.connection.id,
                "state": "checking",
                "reference_id": "ref-http",
                "transaction_id": "t-http",
            }
        )
        bodies = [self.body("ref-http", "A", 1), self.body("ref-http", "B", 2)]
        statuses = []
        # Odoo's HTTP test mode runs every request on the test's single cursor, so
        # deliveries are made one after the other (page 2, a duplicate, page 1).
        for body in (bodies[1], bodies[1], bodies[0]):
            response = self.url_open(
                "/dci_api/ibr/on-search", data=body, headers={"Content-Type": "application/json"}
            )
            statuses.append((response.status_code, response.json()["message"]["ack_status"]))
        self.assertEqual(statuses, [(200, "ACK")] * 3)
        check.invalidate_recordset()
        self.assertEqual((check.state, check.pages_received), ("completed", 2))
        self.assertEqual(sorted(check.matched_programs.split("\n")), ["A", "B"])
        response = self.url_open(
            "/dci_api/ibr/on-search", data=b"{}", headers={"Content-Type": "application/json"}
        )
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["message"]["error"]["code"], "err.request.bad")
