"""Shared fixtures for the Odoo suite: a trusted IBR sender with a real key,
a connection with our own signing key, registrants, and signed callbacks."""

import json
import logging
from contextlib import contextmanager
from unittest.mock import patch
from urllib.parse import urlsplit

from odoo import api
from odoo.modules.registry import DummyRLock, Registry
from odoo.tests import HttpCase
from odoo.tests.common import _super_send, new_test_user

from odoo.addons.fastapi.tests.common import FastAPITransactionCase

from ..dci import messages
from ..dci.keys import KeySet, SigningKey
from ..dci.simulator import IbrSimulator
from ..dci.simulator.dataset import beneficiary  # noqa: F401 - re-exported for tests
from ..dci.testing import answer_item, signed_callback
from ..models import db_retry

IBR_SENDER_ID = "ibr.test"
JSON = {"Content-Type": "application/json"}
OUR_SENDER_ID = "spmis.test"


class _LogRecorder(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@contextmanager
def recorded_logs():
    """Every log record of every thread (server threads included) meanwhile."""
    recorder = _LogRecorder()
    root = logging.getLogger()
    root.addHandler(recorder)
    try:
        yield recorder.records
    finally:
        root.removeHandler(recorder)


class LoopbackRequests:
    """Test-class mixin: requests to loopback servers started by the tests
    are sent as they are (Odoo's test guard would rewrite our (connect, read)
    timeout tuples); every other request still meets Odoo's guard."""

    @classmethod
    def _request_handler(cls, s, r, /, **kw):
        if urlsplit(r.url).hostname == "127.0.0.1":
            return _super_send(s, r, **kw)
        return super()._request_handler(s, r, **kw)


class CommittingHttpCase(LoopbackRequests, HttpCase):
    """An ``HttpCase`` whose server requests run in their own real transactions.

    Out of registry test mode, each request opens an ordinary cursor, so
    concurrent requests are truly concurrent and commit like in production.
    Only the registry lock is lifted, as ``HttpCase`` does: the test runner
    holds it while it runs the tests, and the server threads would wait on it.
    Subclasses commit their own data and remove it in a class cleanup.
    """

    registry_test_mode = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.startClassPatcher(patch.object(Registry, "_lock", DummyRLock()))
        # refusals its requests commit are logged: remove them with the rest
        with cls.registry.cursor() as cr:
            cr.execute("SELECT coalesce(max(id), 0) FROM spp_dci_delivery_log")
            cls._delivery_logs_before = cr.fetchone()[0]
        cls.addClassCleanup(cls._remove_delivery_logs)

    @classmethod
    def _remove_delivery_logs(cls):
        with cls.registry.cursor() as cr:
            cr.execute(
                "DELETE FROM spp_dci_delivery_log WHERE id > %s", (cls._delivery_logs_before,)
            )


class SimulatorCommittedCase(CommittingHttpCase):
    """A ``CommittingHttpCase`` with the built-in IBR simulator on loopback and,
    committed, a sender trusting it, a connection to it (``connection_vals``
    added) and an officer; all removed in the class cleanup. ``cls.requests``
    lists ``(action, request)`` of every request the simulator took."""

    label = "committed test"
    our_sender_id = "spmis.committed"
    officer_login = "committed_officer"
    connection_vals = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sim = IbrSimulator().start()
        cls.addClassCleanup(cls.sim.stop)
        cls.requests = []
        read_request = cls.sim.read_request

        def recording_read_request(raw, action, model, *args, **kwargs):
            envelope, request = read_request(raw, action, model, *args, **kwargs)
            cls.requests.append((action, request))
            return envelope, request

        cls.sim.read_request = recording_read_request
        with cls.registry.cursor() as cr:
            env = api.Environment(cr, api.SUPERUSER_ID, {})
            sender = env["spp.dci.ibr.sender"].create(
                {"name": f"Simulator ({cls.label})", "sender_id": cls.sim.sender_id}
            )
            sender._store_keys([cls.sim.signing_key.public])
            connection = env["spp.dci.ibr.connection"].create(
                {
                    "name": f"Simulator ({cls.label})",
                    "base_url": cls.sim.url,
                    "our_sender_id": cls.our_sender_id,
                    "receiver_id": cls.sim.sender_id,
                    "ibr_sender_id": sender.id,
                    "callback_url": f"{cls.base_url()}/dci_api/ibr/on-search",
                    "sequence": 0,
                    **cls.connection_vals,
                }
            )
            connection.action_generate_signing_key()
            cls.sim.client_keys = KeySet([connection._signing_key().public])
            officer = new_test_user(
                env, login=cls.officer_login, groups="spp_dci_client_ibr.group_ibr_officer"
            )
            cls.ids = {
                "sender": sender.id,
                "connection": connection.id,
                "officer": officer.id,
                "partners": [],
            }
        cls.addClassCleanup(cls._remove_committed_data)

    @classmethod
    def _remove_committed_data(cls):
        with cls.registry.cursor() as cr:
            env = api.Environment(cr, api.SUPERUSER_ID, {"active_test": False})
            connection = env["spp.dci.ibr.connection"].browse(cls.ids["connection"])
            checks = env["spp.dci.duplication.check"].search(
                [("data_source_id", "=", connection.id)]
            )
            checks.message_ids.unlink()
            checks.unlink()
            env["spp.dci.ibr.transaction"].search([("connection_id", "=", connection.id)]).unlink()
            sender_id = cls.sim.sender_id
            env["spp.dci.replay.entry"].search([("sender_id", "=", sender_id)]).unlink()
            env["spp.dci.callback.orphan"].search([("sender_id", "=", sender_id)]).unlink()
            connection.message_ids.unlink()
            connection.unlink()
            env["spp.dci.ibr.sender"].browse(cls.ids["sender"]).unlink()
            env["res.partner"].browse(cls.ids["partners"]).unlink()
            officer = env["res.users"].browse(cls.ids["officer"])
            partner = officer.partner_id
            officer.unlink()
            partner.unlink()

    def setUp(self):
        super().setUp()
        self.requests.clear()
        self.sim.stats.clear()

    def searches(self):
        """``(transaction id, [reference ids])`` of each search the IBR took."""
        return [
            (request.transaction_id, [i.reference_id for i in request.search_request])
            for _action, request in self.requests
            if hasattr(request, "search_request")
        ]

    @contextmanager
    def env_cursor(self, uid=api.SUPERUSER_ID):
        with self.registry.cursor() as cr:
            yield api.Environment(cr, uid, {})

    def queue_as_officer(self, values):
        """The officer checks one new registrant per identifier of ``values``
        and presses Check (committed); returns the checks' ids."""
        with self.env_cursor() as env:
            partners = env["res.partner"].create(
                [{"name": f"{self.label} registrant {n}"} for n in range(len(values))]
            )
            self.ids["partners"].extend(partners.ids)
        with self.env_cursor(self.ids["officer"]) as env:
            checks = env["spp.dci.duplication.check"].create(
                [
                    {
                        "partner_id": partner_id,
                        "identifier_type": "NID",
                        "identifier_value": value,
                        "data_source_id": self.ids["connection"],
                    }
                    for partner_id, value in zip(partners.ids, values, strict=True)
                ]
            )
            checks.action_run_check()
            return checks.ids


class IbrFixtures:
    """Test-class mixin: an IBR sender we trust (Ed25519), a connection to it,
    two registrants, an officer and a viewer; the outbox commits as flushes."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # the test cursor cannot commit: the outbox's commits become flushes
        cls.startClassPatcher(patch.object(db_retry, "commit", lambda env: env.flush_all()))
        cls.env = cls.env(context=dict(cls.env.context, tracking_disable=True))
        cls.ibr_key = SigningKey.generate(IBR_SENDER_ID, "ed25519", key_id="k1")
        cls.sender = cls.env["spp.dci.ibr.sender"].create(
            {"name": "Test IBR", "sender_id": IBR_SENDER_ID}
        )
        cls.sender._store_keys([cls.ibr_key.public])
        cls.connection = cls.env["spp.dci.ibr.connection"].create(
            {
                "name": "Test IBR connection",
                "base_url": "http://127.0.0.1:9",
                "our_sender_id": OUR_SENDER_ID,
                "receiver_id": IBR_SENDER_ID,
                "ibr_sender_id": cls.sender.id,
                # these tests look at one send: a transient failure spends the budget
                # at once (tests/test_reliability.py tests the resends)
                "retry_max_attempts": 1,
            }
        )
        cls.connection.action_generate_signing_key()
        cls.partner = cls.env["res.partner"].create({"name": "Registrant One"})
        cls.partner2 = cls.env["res.partner"].create({"name": "Registrant Two"})
        cls.officer = new_test_user(
            cls.env, login="ibr_officer", groups="spp_dci_client_ibr.group_ibr_officer"
        )
        cls.viewer = new_test_user(
            cls.env, login="ibr_viewer", groups="spp_dci_client_ibr.group_ibr_viewer"
        )
        cls.env["ir.config_parameter"].sudo().set_param(
            "spp_dci_client_ibr.allow_private_jwks_urls", "True"
        )

    def set_param(self, key, value):
        self.env["ir.config_parameter"].sudo().set_param(f"spp_dci_client_ibr.{key}", value)

    def check_in_ibr(self, partners, identifier_type="NID"):
        """The officer's "Check in IBR" on ``partners``; return the batch's checks
        (those created so far: a large batch is expanded by the send job)."""
        wizard = (
            self.env["spp.dci.check.wizard"]
            .with_user(self.officer)
            .create({"partner_ids": [(6, 0, partners.ids)], "identifier_type": identifier_type})
        )
        action = wizard.action_confirm()
        return self.env["spp.dci.duplication.check"].search(action["params"]["next"]["domain"])

    def make_check(self, partner=None, value="1000000001", **vals):
        return self.env["spp.dci.duplication.check"].create(
            {
                "partner_id": (partner or self.partner).id,
                "identifier_type": "NID",
                "identifier_value": value,
                "data_source_id": self.connection.id,
                **vals,
            }
        )

    def mark_sent(self, check, transaction_id="txn-1", correlation_id="corr-1"):
        """Put a check in ``checking`` as if its search had been acknowledged."""
        txn = self.env["spp.dci.ibr.transaction"].search(
            [("transaction_id", "=", transaction_id)]
        ) or self.env["spp.dci.ibr.transaction"].create(
            {
                "transaction_id": transaction_id,
                "connection_id": check.data_source_id.id or self.connection.id,
                "state": "sent",
                "correlation_id": correlation_id,
            }
        )
        reference_id = messages.new_id()
        check.write(
            {
                "state": "checking",
                "reference_id": reference_id,
                "transaction_id": transaction_id,
                "ibr_transaction_id": txn.id,
                "sent_at": check.check_date,
            }
        )
        return reference_id

    def on_search_body(
        self,
        items,
        *,
        transaction_id="txn-1",
        correlation_id="corr-1",
        key=None,
        sender_id=IBR_SENDER_ID,
        header_status="succ",
        **header,
    ):
        """Signed ``on-search`` callback bytes for ``items`` (search_response entries)."""
        message = {
            "transaction_id": transaction_id,
            "correlation_id": correlation_id,
            "search_response": items,
        }
        envelope = signed_callback(
            key or self.ibr_key,
            message,
            sender_id=sender_id,
            receiver_id=OUR_SENDER_ID,
            status=header_status,
            **header,
        )
        return json.dumps(envelope).encode()

    item = staticmethod(answer_item)


class IbrCase(IbrFixtures, LoopbackRequests, FastAPITransactionCase):
    """The fixtures, with the OCA fastapi test client for the callback routes."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.endpoint = cls.env.ref("spp_dci_client_ibr.fastapi_endpoint_dci_api")
        cls.runner = cls.env.ref("spp_dci_client_ibr.user_ibr_callback")

    def post(self, body, path="/ibr/on-search", headers=None):
        """POST ``body`` to the real ``dci_api`` app, as the API's own user."""
        with self._create_test_client(
            app=self.endpoint._get_app(), user=self.runner, raise_server_exceptions=False
        ) as client:
            return client.post(path, content=body, headers=headers or JSON)


class IbrHttpCase(IbrFixtures, LoopbackRequests, HttpCase):
    """The fixtures, with Odoo's HTTP server and a browser (tours)."""
