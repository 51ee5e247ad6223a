"""OpenSPP2 parity: the public surface of upstream's ``spp_dci_client_ibr``,
used the way upstream's own tests and its callers use it (xml ids, view
anchors, the router module, the service, the verifier, the routers hook,
senders, registrant identifiers, spp_registry's groups, the development
switch, the schemas package, taking over an upstream database, the .pot)."""

import asyncio
import json
import re
from pathlib import Path
from types import SimpleNamespace
from unittest.mock import patch

from fastapi import APIRouter
from lxml import etree
from starlette.datastructures import Headers

from odoo.exceptions import AccessError, UserError
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tools.translate import TranslationModuleReader

from odoo.addons.fastapi.models.fastapi_endpoint import FastapiEndpoint as BaseEndpoint

from ..dci import messages
from ..dci import schemas as core_schemas
from ..dci.errors import LengthRequired
from ..dci.keys import SigningKey
from ..dci.signatures import sign_envelope
from ..dci.simulator import IbrSimulator
from ..models.res_partner import identifiers_from_reg_ids
from .common import IBR_SENDER_ID, OUR_SENDER_ID, IbrCase

MODULE = "spp_dci_client_ibr"
ADDON_ROOT = Path(__file__).resolve().parents[1]


def run(coro):
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())  # the abandoned body streams
        loop.close()


class FakeRequest:
    """Just what the router reads of a Starlette request, counting what is read."""

    def __init__(self, headers, chunks):
        self.headers = Headers(headers)
        self.chunks = list(chunks)
        self.read = 0

    async def stream(self):
        for chunk in self.chunks:
            self.read += len(chunk)
            yield chunk


@tagged("post_install", "-at_install")
class TestOpenSppParity(IbrCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.endpoint = cls.env.ref(f"{MODULE}.fastapi_endpoint_dci_api")
        cls.runner = cls.env.ref(f"{MODULE}.user_ibr_callback")
        cls.checks = cls.env["spp.dci.duplication.check"]

    def ref(self, xmlid):
        return self.env.ref(f"{MODULE}.{xmlid}")

    def arch(self, xmlid):
        return etree.fromstring(self.ref(xmlid).arch_db)

    def post(self, body, path="/ibr/on-search", headers=None):
        with self._create_test_client(
            app=self.endpoint._get_app(), user=self.runner, raise_server_exceptions=False
        ) as client:
            return client.post(
                path, content=body, headers=headers or {"Content-Type": "application/json"}
            )

    # -- 1. xml ids, names, anchors, labels -----------------------------------

    def test_upstream_xml_ids_names_and_menu_places(self):
        models = {
            "view_dci_duplication_check_tree": "ir.ui.view",
            "view_dci_duplication_check_form": "ir.ui.view",
            "view_dci_duplication_check_search": "ir.ui.view",
            "action_dci_duplication_check": "ir.actions.act_window",
            "menu_dci_duplication_check": "ir.ui.menu",
            "view_spp_dci_ibr_sender_tree": "ir.ui.view",
            "view_spp_dci_ibr_sender_form": "ir.ui.view",
            "view_spp_dci_ibr_sender_search": "ir.ui.view",
            "action_spp_dci_ibr_sender": "ir.actions.act_window",
            "menu_spp_dci_ibr_sender": "ir.ui.menu",
        }
        for xmlid, model in models.items():
            self.assertEqual(self.ref(xmlid)._name, model, xmlid)
        checks = self.ref("action_dci_duplication_check")
        # titles say what the menus say (upstream's were "DCI Duplication Checks"
        # and "IBR Sender Registry" under menus "IBR Duplication Checks", "IBR Senders")
        self.assertEqual(
            (checks.name, checks.path),
            ("IBR Duplication Checks", "registry-dci-duplication-checks"),
        )
        self.assertEqual(checks.search_view_id, self.ref("view_dci_duplication_check_search"))
        self.assertEqual(self.ref("action_spp_dci_ibr_sender").name, "IBR Senders")
        # Settings > Technical > DCI > Activity Logs / Configuration
        technical = self.env.ref("base.menu_custom")
        for menu, name, parent in (
            ("menu_dci_duplication_check", "IBR Duplication Checks", "Activity Logs"),
            ("menu_spp_dci_ibr_sender", "IBR Senders", "Configuration"),
        ):
            menu = self.ref(menu)
            self.assertEqual((menu.name, menu.parent_id.name), (name, parent))
            self.assertEqual(menu.parent_id.parent_id.name, "DCI")
            self.assertEqual(menu.parent_id.parent_id.parent_id, technical)
        self.assertEqual(self.ref("menu_dci_duplication_check").action, checks)
        # the check action's URL path (/odoo/registry-dci-duplication-checks)
        self.assertEqual(
            self.env["ir.actions.act_window"].search(
                [("path", "=", "registry-dci-duplication-checks")]
            ),
            checks,
        )

    def test_view_anchors_other_modules_hook_into(self):
        form = self.arch("view_dci_duplication_check_form")
        for page in ("matched_programs", "raw_response", "error_info", "notes"):
            self.assertTrue(form.xpath(f"//page[@name='{page}']"), page)
        for group in ("registrant_info", "check_info"):
            self.assertTrue(form.xpath(f"//group[@name='{group}']"), group)
        sender = self.arch("view_spp_dci_ibr_sender_form")
        self.assertTrue(sender.xpath("//div[@name='button_box']"))
        for page in ("public_key", "notes"):
            self.assertTrue(sender.xpath(f"//page[@name='{page}']"), page)
        # personal data stays gated behind our group, pages included
        pii = f"{MODULE}.group_ibr_pii"
        for xmlid in ("view_dci_duplication_check_tree", "view_dci_duplication_check_form"):
            for node in self.arch(xmlid).xpath("//field[@name='identifier_value']"):
                self.assertIn(pii, node.get("groups", ""))
        for page in ("matched_programs", "raw_response"):
            self.assertIn(pii, form.xpath(f"//page[@name='{page}']")[0].get("groups", ""))
        # an inheriting view written against upstream's anchors applies
        views = self.env["ir.ui.view"]
        for parent, anchors in (
            (
                "view_dci_duplication_check_form",
                [
                    "//page[@name='matched_programs']",
                    "//group[@name='check_info']",
                    "//page[@name='error_info']",
                ],
            ),
            (
                "view_spp_dci_ibr_sender_form",
                ["//div[@name='button_box']", "//page[@name='public_key']"],
            ),
        ):
            for number, anchor in enumerate(anchors):
                views.create(
                    {
                        "name": f"parity.{parent}.{number}",
                        "model": self.ref(parent).model,
                        "inherit_id": self.ref(parent).id,
                        "arch": f'<xpath expr="{anchor}" position="inside">'
                        f'<span class="parity-{number}">x</span></xpath>',
                    }
                )
            arch = etree.fromstring(
                self.env[self.ref(parent).model].get_view(self.ref(parent).id)["arch"]
            )
            for number in range(len(anchors)):
                self.assertTrue(arch.xpath(f"//span[@class='parity-{number}']"), (parent, number))

    def test_upstream_field_labels(self):
        sender_fields = self.env["spp.dci.ibr.sender"]._fields
        self.assertEqual(sender_fields["sender_id"].string, "Sender ID")
        self.assertEqual(sender_fields["jwks_url"].string, "JWKS URL")
        labels = {name: field.string for name, field in self.checks._fields.items()}
        for name, label in (
            ("partner_id", "Registrant"),
            ("identifier_type", "Identifier Type"),
            ("identifier_value", "Identifier Value"),
            ("check_date", "Check Date"),
            ("matched_programs", "Matched Programs"),
            ("raw_response", "Raw Response"),
            ("error_message", "Error Message"),
        ):
            self.assertEqual(labels[name], label)

    # -- 2. routers/callback.py --------------------------------------------

    def test_router_module_and_handler_names(self):
        from odoo.addons.spp_dci_client_ibr.routers import callback

        routes = {route.path: route.endpoint for route in callback.ibr_callback_router.routes}
        self.assertIs(routes["/ibr/on-search"], callback.receive_ibr_search_response)
        self.assertIs(routes["/ibr/on-subscribe"], callback.receive_ibr_subscribe_response)
        self.assertIn(callback.ibr_callback_router, self.endpoint._get_fastapi_routers())

    def test_process_ibr_search_result_delegates_to_the_model_hook(self):
        from odoo.addons.spp_dci_client_ibr.routers.callback import _process_ibr_search_result

        check = self.make_check()
        reference = self.mark_sent(check, correlation_id="CORR-9")
        item = self.item(reference, [{"programs": [{"name": "Cash Transfer"}]}])
        # unknown sender: nothing applied
        self.assertFalse(_process_ibr_search_result(self.env, item, "ibr.unknown", "CORR-9"))
        self.assertEqual(check.state, "checking")
        model = type(self.checks)
        with patch.object(
            model,
            "_process_ibr_search_result",
            autospec=True,
            side_effect=model._process_ibr_search_result,
        ) as hook:
            updated = _process_ibr_search_result(self.env, item, IBR_SENDER_ID, "CORR-9")
        self.assertEqual(updated, check)
        hook.assert_called_once()
        self.assertEqual((check.state, check.result), ("completed", "possible_match"))
        self.assertEqual(check.matched_programs, "Cash Transfer")
        # found by the correlation id alone (no reference echoed), applied once
        second = self.make_check(value="1000000002")
        self.mark_sent(second, transaction_id="txn-2", correlation_id="CORR-10")
        item = dict(self.item("not-ours"), reference_id="not-ours")
        self.assertEqual(
            _process_ibr_search_result(self.env, item, IBR_SENDER_ID, "CORR-10"), second
        )
        self.assertEqual((second.state, second.result), ("completed", "no_match"))
        self.assertFalse(_process_ibr_search_result(self.env, item, IBR_SENDER_ID, "CORR-10"))

    def test_body_without_length_gets_411_and_is_never_read(self):
        from odoo.addons.spp_dci_client_ibr.routers.callback import _read_body

        json_type = {"content-type": "application/json"}
        chunked = FakeRequest(dict(json_type, **{"transfer-encoding": "chunked"}), [b"{}"] * 3)
        with self.assertRaises(LengthRequired) as caught:
            run(_read_body(chunked, 100))
        self.assertEqual((caught.exception.http_status, chunked.read), (411, 0))
        no_length = FakeRequest(json_type, [b"{}"])
        with self.assertRaises(LengthRequired):
            run(_read_body(no_length, 100))
        self.assertEqual(no_length.read, 0)
        # a declared length is a cap too: reading stops as soon as it is passed
        liar = FakeRequest(dict(json_type, **{"content-length": "10"}), [b"x" * 8] * 100)
        with self.assertRaises(Exception) as caught:
            run(_read_body(liar, 100))
        self.assertEqual(caught.exception.http_status, 413)
        self.assertEqual(liar.read, 16)
        too_big = FakeRequest(dict(json_type, **{"content-length": "101"}), [b"x" * 101])
        with self.assertRaises(Exception) as caught:
            run(_read_body(too_big, 100))
        self.assertEqual((caught.exception.http_status, too_big.read), (413, 0))
        # through the app: a chunked body is answered 411 with a spec ERR ack
        check = self.make_check()
        reference = self.mark_sent(check)
        body = self.on_search_body([self.item(reference)])

        def chunks():
            yield body[:10]
            yield body[10:]

        response = self.post(chunks())
        self.assertEqual(response.status_code, 411, response.text)
        ack = response.json()["message"]
        self.assertEqual((ack["ack_status"], ack["error"]["code"]), ("ERR", "err.request.bad"))
        self.assertEqual(check.state, "checking")
        self.assertEqual(self.post(body).status_code, 200)
        self.assertEqual(check.state, "completed")

    # -- 3. services/ibr_service.py -------------------------------------------

    def test_ibr_service_against_a_loopback_ibr(self):
        from odoo.addons.spp_dci_client_ibr.services.ibr_service import (
            BeneficiaryInfo,
            DuplicationResult,
            IBRService,
        )

        with self.assertRaises(ValueError):
            IBRService(None, self.env)
        partner_model = type(self.env["res.partner"])
        with IbrSimulator() as sim:
            self.sender.write({"sender_id": sim.sender_id})
            self.sender._store_keys([sim.signing_key.public])
            self.connection.write({"base_url": sim.url, "mode": "sync"})
            service = IBRService(self.connection, self.env)
            with self.assertRaises(ValueError):
                service.check_duplication(None)
            with self.assertRaises(UserError) as caught:
                service.check_duplication(self.partner)
            self.assertIn("no identifiers configured", str(caught.exception))
            with patch.object(
                partner_model,
                "_get_ibr_identifiers",
                return_value=[("NID", "1000000001"), ("UIN", "U-77")],
            ):
                result = service.check_duplication(self.partner)
            self.assertEqual(set(result), {"is_duplicate", "matched_programs", "raw_response"})
            self.assertTrue(result["is_duplicate"])
            self.assertEqual(
                result["matched_programs"], ["Cash Transfer Programme", "Food Voucher"]
            )
            self.assertEqual(len(result["raw_response"]), 1)  # one batched, signed search
            with patch.object(
                partner_model, "_get_ibr_identifiers", return_value=[("NID", "1000000003")]
            ):
                result = service.check_duplication(self.partner)
                detailed = service.check_duplication_result(self.partner)
            self.assertEqual((result["is_duplicate"], result["matched_programs"]), (False, []))
            self.assertEqual(detailed.result, "no_match")

            found = service.search_beneficiary("NID", "1000000001")
            self.assertEqual(len(found), 1)
            self.assertEqual(
                set(found[0]), {"reference_id", "name", "identifiers", "programs", "raw_data"}
            )
            self.assertEqual(found[0]["name"], "Amina Diallo")
            self.assertEqual(found[0]["programs"], ["Cash Transfer Programme"])
            self.assertIn({"type": "NID", "value": "1000000001"}, found[0]["identifiers"])
            self.assertEqual(service.search_beneficiary("NID", "1000000003"), [])

            status = service.get_enrollment_status("NID", "1000000001")
            self.assertEqual(
                (status["enrolled"], status["programs"]), (True, ["Cash Transfer Programme"])
            )
            self.assertEqual(status["beneficiary_info"]["name"], "Amina Diallo")
            ended = service.get_enrollment_status("NID", "1000000002")
            self.assertEqual((ended["enrolled"], ended["programs"]), (False, ["School Feeding"]))
            none = service.get_enrollment_status("NID", "1000000003")
            self.assertEqual(none, {"enrolled": False, "programs": [], "beneficiary_info": None})
        # the IBR is down: an error, never "no duplicate" (upstream's false negative)
        with IbrSimulator(failures={"http-500"}) as sim:
            self.connection.base_url = sim.url
            with patch.object(
                partner_model, "_get_ibr_identifiers", return_value=[("NID", "1000000001")]
            ):
                with (
                    self.assertRaises(UserError) as caught,
                    self.assertLogs("odoo.addons.spp_dci_client_ibr.services.ibr_service", "INFO"),
                ):
                    IBRService(self.connection, self.env).check_duplication(self.partner)
            self.assertIn("Failed to search", str(caught.exception))
            with (
                self.assertRaises(UserError),
                self.assertLogs("odoo.addons.spp_dci_client_ibr.services.ibr_service", "INFO"),
            ):
                IBRService(self.connection, self.env).search_beneficiary("NID", "1")
        # the value objects
        self.assertEqual(
            DuplicationResult().to_dict(),
            {"is_duplicate": False, "matched_programs": [], "raw_response": {}},
        )
        info = BeneficiaryInfo("UIN", "U-1")
        self.assertEqual((info.name, info.programs, info.metadata), (None, [], {}))
        self.assertEqual(
            BeneficiaryInfo("UIN", "U-1", "Jo", ["P"], {"x": 1}).to_dict(),
            {
                "identifier_type": "UIN",
                "identifier_value": "U-1",
                "name": "Jo",
                "programs": ["P"],
                "metadata": {"x": 1},
            },
        )

    # -- 4. get_verifier ------------------------------------------------------

    def test_get_verifier_contract(self):
        head = messages.callback_header(
            "on-search", IBR_SENDER_ID, status="succ", receiver_id=OUR_SENDER_ID
        )
        envelope = sign_envelope(head, {"transaction_id": "t", "search_response": []}, self.ibr_key)
        verifier = self.sender.get_verifier()
        self.assertIs(
            verifier.verify(envelope["signature"], envelope["header"], envelope["message"]), True
        )
        tampered = dict(envelope["message"], transaction_id="t2")
        self.assertIs(verifier.verify(envelope["signature"], envelope["header"], tampered), False)
        header = dict(envelope["header"], sender_id="someone.else")
        self.assertIs(verifier.verify(envelope["signature"], header, envelope["message"]), False)
        self.assertIs(verifier.verify("garbage", envelope["header"], envelope["message"]), False)
        other = SigningKey.generate(IBR_SENDER_ID, key_id="k1")  # same kid, other key
        forged = sign_envelope(head, envelope["message"], other)
        self.assertIs(verifier.verify(forged["signature"], head, envelope["message"]), False)
        # what our inbound path needs: key lookup by kid
        self.assertEqual(verifier.get(self.ibr_key.kid).pem, self.ibr_key.public.pem)
        bare = self.env["spp.dci.ibr.sender"].create({"name": "Bare", "sender_id": "ibr.bare"})
        with self.assertRaises(UserError) as caught:
            bare.get_verifier()
        self.assertIn("ibr.bare", str(caught.exception))

    # -- 5. cooperative _get_fastapi_routers --------------------------------

    def test_routers_added_by_other_modules_survive(self):
        other = APIRouter()

        @other.get("/other/ping")
        def ping():
            return {"pong": True}

        original = BaseEndpoint._get_fastapi_routers

        def with_other(endpoint):
            routers = original(endpoint)
            return [*routers, other] if endpoint.app == "dci_api" else routers

        with patch.object(BaseEndpoint, "_get_fastapi_routers", with_other):
            routers = self.endpoint._get_fastapi_routers()
            app = self.endpoint._get_app()
        from odoo.addons.spp_dci_client_ibr.routers import ibr_callback_router

        self.assertEqual(routers, [other, ibr_callback_router])
        with self._create_test_client(app=app, user=self.runner) as client:
            self.assertEqual(client.get("/other/ping").json(), {"pong": True})
            self.assertEqual(client.get("/ibr/jwks.json").status_code, 200)
        self.assertEqual(self.endpoint._get_fastapi_routers(), [ibr_callback_router])

    # -- 6. senders and keys --------------------------------------------------

    def test_sender_with_name_and_sender_id_only(self):
        senders = self.env["spp.dci.ibr.sender"]
        sender = senders.create({"name": "Minimal", "sender_id": "ibr.minimal"})
        self.assertFalse(sender.algorithm)
        self.assertEqual(senders.get_by_sender_id("ibr.minimal"), sender)
        rsa = SigningKey.generate("ibr.pasted", "rs256")
        pasted = senders.create(
            {"name": "Pasted", "sender_id": "ibr.pasted", "public_key": rsa.public.pem}
        )
        self.assertEqual(pasted.algorithm, "rs256")
        head = messages.callback_header("on-search", "ibr.pasted", status="succ")
        envelope = sign_envelope(head, {"transaction_id": "t"}, rsa)
        self.assertTrue(
            pasted.get_verifier().verify(envelope["signature"], head, envelope["message"])
        )
        ed = SigningKey.generate("ibr.minimal")
        sender.public_key = ed.public.pem  # pasted later: the algorithm follows the key
        self.assertEqual(sender.algorithm, "ed25519")

    def test_jwk_to_pem_raises_user_errors_callers_can_match(self):
        sender = self.sender
        for jwk, word in (
            ({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}, "unsupported"),
            ({"kty": "OKP", "crv": "X25519", "x": "AA"}, "unsupported"),
            ({"kty": "oct", "k": "AA"}, "unsupported"),
            ({"kty": "OKP", "crv": "Ed25519"}, "missing"),
            ({"kty": "RSA", "n": "AQAB"}, "missing"),
        ):
            with self.assertRaises(UserError, msg=jwk) as caught:
                sender._jwk_to_pem(jwk)
            self.assertIn(word, str(caught.exception).lower(), jwk)
        good = self.ibr_key.public.to_jwk()
        self.assertEqual(sender._jwk_to_pem(good), self.ibr_key.public.pem)

    # -- 7. registrant identifiers from reg_ids ------------------------------

    def test_identifiers_from_reg_ids_shaped_records(self):
        def code(value):  # spp.vocabulary.code: a code, and no ``name``
            return SimpleNamespace(code=value, display=f"{value} label")

        reg_ids = [
            SimpleNamespace(id_type_id=code("UIN"), value="U-1", status=False),
            SimpleNamespace(id_type_id=code("BRN"), value="B-9", status="valid"),
            SimpleNamespace(id_type_id=code("NID"), value="N-0", status="invalid"),
            SimpleNamespace(id_type_id=code("MRN"), value="", status="valid"),
            SimpleNamespace(id_type_id=False, value="X-1", status=False),
            SimpleNamespace(id_type_id=code("UIN"), value="U-1", status="valid"),
        ]
        expected = [("UIN", "U-1"), ("BRN", "B-9")]
        self.assertEqual(identifiers_from_reg_ids(reg_ids), expected)
        partner_model = type(self.env["res.partner"])
        self.assertEqual(self.partner._get_ibr_identifiers(), [])  # no spp_registry here
        fields = dict(partner_model._fields, reg_ids=partner_model._fields["child_ids"])
        with (
            patch.object(partner_model, "_fields", fields),
            patch.object(partner_model, "reg_ids", property(lambda _self: reg_ids), create=True),
        ):
            self.assertEqual(self.partner._get_ibr_identifiers(), expected)

    # -- 8. spp_registry's groups ---------------------------------------------

    def test_registry_groups_get_upstream_rights(self):
        groups = self.env["res.groups"]
        registry = {}
        for role in ("viewer", "officer", "manager"):
            group = groups.create({"name": f"Registry {role} (test)"})
            self.env["ir.model.data"].create(
                {
                    "module": "spp_registry",
                    "name": f"group_registry_{role}",
                    "model": "res.groups",
                    "res_id": group.id,
                }
            )
            registry[role] = group
        linked = groups._link_upstream_groups()
        self.assertEqual(linked, registry["viewer"] | registry["officer"] | registry["manager"])
        self.assertFalse(groups._link_upstream_groups(), "linked once, then left alone")
        groups._register_hook()  # the registry-load hook does the same, harmlessly
        self.assertIn(self.ref("group_ibr_officer"), registry["officer"].implied_ids)
        users = {
            role: new_test_user(
                self.env, login=f"registry_{role}", groups=f"spp_registry.group_registry_{role}"
            )
            for role in registry
        }
        check = self.make_check()
        vals = {"partner_id": self.partner.id, "identifier_type": "NID", "identifier_value": "9"}
        # viewer: read only
        self.assertTrue(check.with_user(users["viewer"]).read(["state"]))
        with self.assertRaises(AccessError):
            self.checks.with_user(users["viewer"]).create(vals)
        # officer: read, write, create, no delete
        created = self.checks.with_user(users["officer"]).create(vals)
        created.with_user(users["officer"]).write({"notes": "seen"})
        with self.assertRaises(AccessError):
            created.with_user(users["officer"]).unlink()
        # manager: everything
        created.with_user(users["manager"]).unlink()
        # senders: every internal user reads, only administrators change
        for user in users.values():
            self.assertTrue(self.sender.with_user(user).read(["sender_id"]))
            with self.assertRaises(AccessError):
                self.sender.with_user(user).write({"notes": "x"})

    # -- 9. the development switch, version ------------------------------------

    def test_upstream_allow_unsigned_switch(self):
        check = self.make_check()
        reference = self.mark_sent(check)
        unsigned = json.loads(self.on_search_body([self.item(reference)]))
        unsigned["signature"] = "unsigned-stub"
        body = json.dumps(unsigned).encode()
        response = self.post(body)
        self.assertEqual(response.json()["message"]["error"]["code"], "err.signature.missing")
        self.env["ir.config_parameter"].sudo().set_param("dci.allow_unsigned_requests", "true")
        with self.assertLogs("odoo.addons.spp_dci_client_ibr.dci.inbound", "WARNING"):
            self.assertEqual(self.post(body).status_code, 200)
        self.assertEqual(check.state, "completed")

    def test_version_is_not_below_upstream(self):
        version = self.env["ir.module.module"].search([("name", "=", MODULE)]).installed_version
        parts = tuple(int(p) for p in version.split("."))
        self.assertGreaterEqual(parts, (19, 0, 2, 0, 0))

    # -- 10. the schemas package -------------------------------------------

    def test_schemas_package(self):
        from odoo.addons.spp_dci_client_ibr import schemas

        for name in core_schemas.__all__:
            self.assertIs(getattr(schemas, name), getattr(core_schemas, name), name)
        envelope = schemas.DCIEnvelope.model_validate(
            json.loads(self.on_search_body([self.item("r")]))
        )
        self.assertEqual(envelope.header["sender_id"], IBR_SENDER_ID)
        response = schemas.SearchResponse.model_validate(envelope.message)
        self.assertEqual(response.search_response[0].reference_id, "r")

    # -- 12. taking over an upstream database ----------------------------------

    def test_migration_from_an_openspp2_database(self):
        from odoo.addons.spp_dci_client_ibr.models.openspp_migration import pre_migrate

        cr = self.env.cr
        check = self.make_check()
        waiting = self.make_check(value="1000000002")
        answered = self.make_check(value="1000000003")
        self.env.flush_all()
        # upstream's shape: data_source_id points at spp.dci.data.source
        cr.execute(
            """CREATE TABLE spp_dci_data_source (id serial PRIMARY KEY, name varchar,
                   base_url varchar, our_sender_id varchar, receiver_id varchar, timeout int4);
               INSERT INTO spp_dci_data_source (id, name, base_url, our_sender_id, timeout)
                    VALUES (77, 'National IBR', 'https://ibr.example.org/api', 'openspp.test', 20);
               ALTER TABLE spp_dci_duplication_check
                   DROP CONSTRAINT spp_dci_duplication_check_data_source_id_fkey;
               UPDATE spp_dci_duplication_check SET data_source_id = 77 WHERE id IN %s;
               UPDATE spp_dci_duplication_check SET state = 'checking' WHERE id = %s;
               UPDATE spp_dci_duplication_check SET state = 'completed', result = 'no_match',
                      completed_at = NULL WHERE id = %s;
               ALTER TABLE spp_dci_duplication_check ADD CONSTRAINT upstream_fk
                   FOREIGN KEY (data_source_id) REFERENCES spp_dci_data_source (id)""",
            ((check.id, waiting.id, answered.id), waiting.id, answered.id),
        )
        self.env.invalidate_all()
        # a sender whose key was pasted without an algorithm, as upstream allowed
        self.sender.key_ids.unlink()
        self.sender.write({"public_key": self.ibr_key.public.pem, "algorithm": False})
        self.env.flush_all()
        pre_migrate(cr)
        pre_migrate(cr)  # runs twice harmlessly
        self.env["spp.dci.ibr.openspp2.migration"]._migrate()
        self.env["spp.dci.ibr.openspp2.migration"]._migrate()
        self.env.invalidate_all()
        connection = check.data_source_id
        self.assertEqual(connection, waiting.data_source_id)
        self.assertEqual(
            (
                connection.name,
                connection.base_url,
                connection.our_sender_id,
                connection.timeout,
                connection.active,
            ),
            (
                "National IBR (from OpenSPP2)",
                "https://ibr.example.org/api",
                "openspp.test",
                20,
                False,
            ),
        )
        self.assertEqual(self.sender.algorithm, "ed25519")
        self.assertEqual(waiting.state, "failed")
        self.assertIn("Retry", waiting.error_message)
        self.assertEqual(check.state, "ready")
        # upstream's answered check is dated, so its result's age counts
        self.assertEqual(answered.completed_at, answered.write_date)
        self.assertEqual(
            self.env["spp.dci.ibr.connection"]
            .with_context(active_test=False)
            .search_count([("name", "=", "National IBR (from OpenSPP2)")]),
            1,
        )

    # -- 11. the .pot is current -------------------------------------------

    def test_pot_lists_exactly_the_terms_of_the_code(self):
        reader = TranslationModuleReader(self.env.cr, modules=[MODULE])
        terms = {
            row[4]
            for row in reader
            if row[0] == MODULE and not re.search(r"/\.(venv|odoo-demo)/", row[2] or "")
        }
        pot = (ADDON_ROOT / "i18n" / f"{MODULE}.pot").read_text(encoding="utf-8")
        listed = {_po_string(m) for m in re.findall(r'^msgid ((?:".*"\n)+)', pot, re.M)} - {""}
        self.assertEqual(
            (sorted(terms - listed)[:10], sorted(listed - terms)[:10]),
            ([], []),
            "i18n/spp_dci_client_ibr.pot is stale: export it again (README, Translations)",
        )

    def test_french_translation_loads(self):
        self.env["res.lang"]._activate_lang("fr_FR")
        self.env["ir.module.module"]._load_module_terms([MODULE], ["fr_FR"], overwrite=True)
        french = self.env(context=dict(self.env.context, lang="fr_FR"))
        action = french.ref(f"{MODULE}.action_dci_duplication_check")
        self.assertEqual(action.name, "Vérifications de doublons IBR")
        self.assertEqual(
            french["spp.dci.ibr.sender"]._fields["sender_id"].get_description(french)["string"],
            "Identifiant d'émetteur",
        )
        bare = french["spp.dci.ibr.sender"].create({"name": "Nu", "sender_id": "ibr.nu"})
        with self.assertRaises(UserError) as caught:
            bare.get_verifier()
        self.assertIn("Aucune clé publique disponible", str(caught.exception))


def _po_string(block):
    """The text of a (possibly multi-line) PO string."""
    parts = re.findall(r'^"(.*)"$', block, re.M)
    text = "".join(parts)
    return text.replace('\\"', '"').replace("\\n", "\n").replace("\\t", "\t").replace("\\\\", "\\")


@tagged("post_install", "-at_install")
class TestChunkedOverHttp(HttpCase):
    """Odoo's real HTTP server: a chunked body (no Content-Length) gets 411."""

    def test_chunked_callback_gets_411(self):
        self.env.ref(f"{MODULE}.fastapi_endpoint_dci_api")._handle_registry_sync()
        sent = []

        def body():
            for chunk in (b'{"header": {}, ', b'"message": {}}'):
                sent.append(chunk)
                yield chunk

        response = self.url_open(
            "/dci_api/ibr/on-search", data=body(), headers={"Content-Type": "application/json"}
        )
        self.assertEqual(response.status_code, 411, response.text)
        ack = response.json()["message"]
        self.assertEqual((ack["ack_status"], ack["error"]["code"]), ("ERR", "err.request.bad"))
