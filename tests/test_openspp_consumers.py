"""OpenSPP 2 modules that use this one keep working: ``verify_ibr_signature`` called
and depended on as upstream code does, ``IBRService(data_source, env)`` and the
newline-joined ``matched_programs`` as spp_cel_dci_bridge / spp_dci_indicators read them."""

import asyncio
from types import SimpleNamespace
from unittest.mock import patch

from fastapi import Depends, FastAPI, HTTPException
from fastapi.testclient import TestClient

from odoo.exceptions import UserError
from odoo.tests import tagged

from odoo.addons.fastapi.dependencies import odoo_env

from ..dci import jws, messages
from ..dci.keys import SigningKey
from ..dci.signatures import sign_envelope
from ..dci.simulator import IbrSimulator
from .common import IBR_SENDER_ID, OUR_SENDER_ID, IbrCase, beneficiary


@tagged("post_install", "-at_install")
class TestVerifyIbrSignature(IbrCase):
    def envelope(self, key=None, sender_id=IBR_SENDER_ID, message=None):
        header = messages.callback_header(
            "notify", sender_id, status="succ", receiver_id=OUR_SENDER_ID
        )
        message = message or {"event_type": "birth", "event_id": "BRN-1"}
        return sign_envelope(header, message, key or self.ibr_key)

    def verify(self, data, authorization=None):
        # as upstream's own tests and consumers import and await it
        from odoo.addons.spp_dci_client_ibr.middleware.signature import verify_ibr_signature
        from odoo.addons.spp_dci_client_ibr.schemas import DCIEnvelope

        envelope = DCIEnvelope(**data)
        if authorization is None:
            return asyncio.run(verify_ibr_signature(envelope, self.env))
        return asyncio.run(verify_ibr_signature(envelope, self.env, authorization))

    def refused(self, data, status, words, **options):
        with self.assertRaises(HTTPException) as caught:
            self.verify(data, **options)
        self.assertEqual(caught.exception.status_code, status)
        self.assertIn(words, caught.exception.detail.lower())

    def test_a_signed_envelope_gives_its_sender_id(self):
        self.assertEqual(self.verify(self.envelope()), IBR_SENDER_ID)

    def test_a_compact_jws_signature_is_verified_too(self):
        data = self.envelope()
        data["signature"] = jws.sign(data["header"], data["message"], self.ibr_key)
        self.assertEqual(self.verify(data), IBR_SENDER_ID)

    def test_forged_tampered_or_unknown_is_401(self):
        forged = dict(self.envelope(), signature="definitely-not-a-valid-signature")
        self.refused(forged, 401, "invalid signature")
        tampered = self.envelope()
        tampered["message"]["event_type"] = "death"
        self.refused(tampered, 401, "invalid signature")
        header_changed = self.envelope()
        header_changed["header"]["action"] = "subscribe"
        self.refused(header_changed, 401, "invalid signature")
        stranger = SigningKey.generate("ibr.unknown.gov")
        self.refused(self.envelope(stranger, "ibr.unknown.gov"), 401, "unknown")
        self.sender.active = False
        self.refused(self.envelope(), 401, "unknown")

    def test_another_senders_key_does_not_verify(self):
        intruder = SigningKey.generate(IBR_SENDER_ID, key_id="k1")  # same kid, other key
        self.refused(self.envelope(intruder), 401, "invalid signature")

    def test_unsigned_only_with_the_development_switch(self):
        unsigned = dict(self.envelope(), signature="unsigned-stub")
        self.refused(unsigned, 401, "signature")
        self.refused(dict(unsigned, signature=""), 401, "signature")
        self.env["ir.config_parameter"].sudo().set_param("dci.allow_unsigned_requests", "TRUE")
        self.assertEqual(self.verify(unsigned), IBR_SENDER_ID)

    def test_missing_sender_id_is_400(self):
        data = self.envelope()
        del data["header"]["sender_id"]
        self.refused(data, 400, "sender_id")

    def test_a_sender_with_a_callback_token_needs_it(self):
        self.sender.callback_token = "s3cret"
        self.refused(self.envelope(), 401, "bearer token")
        self.refused(self.envelope(), 401, "bearer token", authorization="Bearer wrong")
        self.assertEqual(self.verify(self.envelope(), "Bearer s3cret"), IBR_SENDER_ID)

    def test_as_a_dependency_of_another_modules_route(self):
        from odoo.addons.spp_dci_client_ibr.middleware import verify_ibr_signature

        app = FastAPI()

        @app.post("/their/notify")
        async def their_notify(sender_id: str = Depends(verify_ibr_signature)):
            return {"sender": sender_id}

        app.dependency_overrides[odoo_env] = lambda: self.env
        with TestClient(app, raise_server_exceptions=False) as client:
            good = client.post("/their/notify", json=self.envelope())
            bad = client.post("/their/notify", json=dict(self.envelope(), signature="x.y.z"))
        self.assertEqual((good.status_code, good.json()), (200, {"sender": IBR_SENDER_ID}))
        self.assertEqual(bad.status_code, 401)


@tagged("post_install", "-at_install")
class TestIbrServiceConsumers(IbrCase):
    def test_an_upstream_data_source_without_a_connection_says_what_to_do(self):
        from odoo.addons.spp_dci_client_ibr.services import IBRService

        data_source = SimpleNamespace(
            _name="spp.dci.data.source", name="Elsewhere", base_url="https://elsewhere.example"
        )
        with self.assertRaisesRegex(UserError, "No active IBR connection"):
            IBRService(data_source, self.env)

    def test_the_cel_symbol_providers_flow(self):
        """IBRSymbolProvider.query_live and _ensure_loaded, as upstream writes them."""
        from odoo.addons.spp_dci_client_ibr.services import IBRService

        # what the providers read back from a completed check of ours
        check = self.make_check()
        reference_id = self.mark_sent(check)
        response = self.post(
            self.on_search_body(
                [
                    self.item(
                        reference_id,
                        [
                            beneficiary("NID", "1000000001", "Cash Transfer Programme"),
                            beneficiary("NID", "1000000001", "Food Voucher"),
                        ],
                    )
                ]
            )
        )
        self.assertEqual(response.status_code, 200)
        check.invalidate_recordset()
        programs = [p.strip() for p in check.matched_programs.split("\n") if p.strip()]
        self.assertEqual(sorted(programs), ["Cash Transfer Programme", "Food Voucher"])

        partner_model = type(self.env["res.partner"])
        with (
            IbrSimulator() as sim,
            patch.object(
                partner_model,
                "_get_ibr_identifiers",
                return_value=[("NID", "1000000001"), ("UIN", "U-77")],
            ),
        ):
            self.sender.write({"sender_id": sim.sender_id})
            self.sender._store_keys([sim.signing_key.public])
            self.connection.write({"base_url": sim.url, "mode": "sync"})
            # what _get_data_source_by_type(env, "ibr") finds when spp_dci is installed
            data_source = SimpleNamespace(
                _name="spp.dci.data.source", name="National IBR", base_url=sim.url + "/"
            )
            ibr_service = IBRService(data_source, self.env)
            self.assertEqual(ibr_service.data_source, self.connection)
            result = ibr_service.check_duplication(self.partner)
        self.assertTrue(result.get("is_duplicate"))
        joined = "\n".join(result.get("matched_programs", []))
        self.assertEqual(joined, "Cash Transfer Programme\nFood Voucher")
