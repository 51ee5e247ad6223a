"""Trusted IBR senders: constraints, JWKS fetching and every way it fails,
rotation, the refresh rate limit, the daily cron and access rights.

JWKS documents are served by a real HTTP server on loopback started by each
test; only 127.0.0.1 is let through Odoo's test-mode request guard (see
``IbrCase._request_handler``), never the internet.
"""

import datetime
import json
import ssl
import tempfile
import time
from pathlib import Path
from unittest.mock import patch

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from psycopg2 import IntegrityError

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import new_test_user, tagged
from odoo.tools import mute_logger

from ..dci import messages
from ..dci.errors import SignatureInvalid, UnknownKey
from ..dci.keys import SigningKey
from ..dci.netguard import FetchPolicy
from ..dci.signatures import SignaturePolicy, sign_envelope, verify_signature
from ..dci.testing import LoopbackServer
from .common import IBR_SENDER_ID, IbrCase

SENDER_LOGGER = "odoo.addons.spp_dci_client_ibr.models.ibr_sender"


def jwks(*keys, **extra):
    """A route answering a JWKS of ``keys`` (core ``SigningKey`` objects or JWK dicts)."""
    jwk_list = [k if isinstance(k, (dict, str)) else k.public.to_jwk() for k in keys]
    return 200, {}, json.dumps({"keys": jwk_list, **extra}).encode()


def signed(key):
    """An envelope signed by ``key``, as an IBR would send it."""
    header = messages.callback_header("on-search", key.kid.split("|")[0], status="succ")
    return sign_envelope(header, {"transaction_id": "t"}, key)


def verify(sender, envelope):
    verify_signature(
        envelope["signature"],
        envelope["header"],
        envelope["message"],
        sender.get_verifier().get,
        SignaturePolicy(),
    )


def self_signed_cert(directory):
    """A certificate for 127.0.0.1 that no trust store knows; return (cert, key) paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = Path(directory, "cert.pem"), Path(directory, "key.pem")
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


@tagged("post_install", "-at_install")
class TestIbrSender(IbrCase):
    def new_sender(self, url, sender_id="ibr.fetch", name="Fetched IBR"):
        return self.env["spp.dci.ibr.sender"].create(
            {"name": name, "sender_id": sender_id, "jwks_url": url}
        )

    def key_lines(self, sender):
        return sender.key_ids.mapped(lambda k: (k.kid, k.state, k.public_key, k.fetched_at))

    # -- constraints ---------------------------------------------------------

    def test_sender_id_is_unique(self):
        with self.assertRaises(IntegrityError), mute_logger("odoo.sql_db"):
            with self.env.cr.savepoint():
                self.env["spp.dci.ibr.sender"].create({"name": "Dup", "sender_id": IBR_SENDER_ID})
                self.env.flush_all()

    def test_sender_id_format_and_urls(self):
        ok = self.env["spp.dci.ibr.sender"].create(
            {"name": "Fine", "sender_id": "ibr.Example-1_x", "jwks_url": "https://x.org/j"}
        )
        self.assertEqual(ok.sender_id, "ibr.Example-1_x")
        for bad in ("has space", "semi;colon", "pipe|char", "slash/char", " ", "é"):
            with self.assertRaises(ValidationError, msg=bad), self.env.cr.savepoint():
                self.env["spp.dci.ibr.sender"].create({"name": "Bad", "sender_id": bad})
        for url in ("ftp://example.org/jwks.json", "file:///etc/passwd", "example.org/jwks"):
            with self.assertRaises(ValidationError, msg=url), self.env.cr.savepoint():
                self.new_sender(url)

    def test_pasted_key_must_be_a_public_key_of_its_algorithm(self):
        with self.assertRaises(ValidationError), self.env.cr.savepoint():
            self.sender.public_key = "not a key"
        rsa = SigningKey.generate("ibr.manual", "rs256")
        with self.assertRaises(ValidationError), self.env.cr.savepoint():
            self.sender.public_key = rsa.private_pem()  # a private key is never stored
        with self.assertRaises(ValidationError), self.env.cr.savepoint():
            self.env["spp.dci.ibr.sender"].create(
                {
                    "name": "Manual",
                    "sender_id": "ibr.manual",
                    "public_key": rsa.public.pem,
                    "algorithm": "ed25519",  # the key is RSA: would never verify
                }
            )

    def test_pasted_pem_without_jwks_keeps_working(self):
        key = SigningKey.generate("ibr.manual", "rs256")
        sender = self.env["spp.dci.ibr.sender"].create(
            {
                "name": "Manual",
                "sender_id": "ibr.manual",
                "public_key": key.public.pem,
                "algorithm": "rs256",
            }
        )
        self.assertFalse(sender.key_ids)
        verify(sender, signed(key))
        with self.assertRaises(SignatureInvalid):
            verify(sender, signed(SigningKey.generate("ibr.manual", "rs256")))
        self.assertEqual(sender.get_by_sender_id("ibr.manual"), sender)
        sender.active = False
        self.assertFalse(sender.get_by_sender_id("ibr.manual"))

    # -- fetching ------------------------------------------------------------

    def test_fetch_keeps_only_this_senders_keys(self):
        first = SigningKey.generate("ibr.fetch", "rs256", key_id="k1")
        second = SigningKey.generate("ibr.fetch", key_id="k2")
        stranger = SigningKey.generate("ibr.other", key_id="x")
        with LoopbackServer({"/jwks.json": jwks(first, second, stranger)}) as server:
            sender = self.new_sender(server.url + "/jwks.json")
            action = sender.action_fetch_public_key()
            self.assertEqual(len(server.requests), 1)
            method, path, headers, _body = server.requests[0]
        self.assertEqual((method, path), ("GET", "/jwks.json"))
        self.assertEqual(headers.get("Accept"), "application/json")
        self.assertEqual(action["tag"], "display_notification")
        self.assertEqual(action["params"]["type"], "success")
        self.assertIn("2", action["params"]["message"])
        self.assertEqual(sorted(sender.key_ids.mapped("kid")), sorted([first.kid, second.kid]))
        self.assertEqual(
            {k.kid: k.algorithm for k in sender.key_ids},
            {first.kid: "rs256", second.kid: "ed25519"},
        )
        self.assertEqual(
            {k.kid: k.fingerprint for k in sender.key_ids},
            {first.kid: first.public.fingerprint, second.kid: second.public.fingerprint},
        )
        self.assertEqual(sender.algorithm, "rs256")  # the current key is the first published
        self.assertEqual(sender.public_key.strip(), first.public.pem.strip())
        self.assertTrue(sender.last_key_fetch)
        self.assertFalse(sender.last_fetch_error)
        verify(sender, signed(first))  # each kid picks its own key
        verify(sender, signed(second))
        with self.assertRaises(UnknownKey):
            verify(sender, signed(stranger))

    def test_every_fetch_failure_says_why_and_keeps_keys(self):
        good = SigningKey.generate("ibr.fetch", key_id="good")
        ed_key = SigningKey.generate("ibr.fetch", key_id="mismatch").public.to_jwk()
        routes = {
            "/jwks.json": jwks(good),
            "/missing": (404, {}, b"{}"),
            "/html": (200, {"Content-Type": "text/html"}, b"<html></html>"),
            "/broken": (200, {}, b"{not json"),
            "/nokeys": (200, {}, b'{"no": "keys"}'),
            "/others": jwks(SigningKey.generate("ibr.other")),
            "/x25519": jwks(
                {
                    "kty": "OKP",
                    "crv": "X25519",
                    "kid": "ibr.fetch|x|ed25519",
                    "x": "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo",
                }
            ),
            "/private": jwks(dict(good.public.to_jwk(), d="AAAA")),
            "/odd-kids": jwks(dict(good.public.to_jwk(), kid=5), {"kid": None}, "not a jwk"),
            "/encryption": jwks(dict(good.public.to_jwk(), use="enc")),
            "/kid-lies": jwks(dict(ed_key, kid="ibr.fetch|mismatch|rs256")),  # alg: EdDSA
            "/huge": (200, {}, b'{"keys": [], "pad": "' + b"x" * 300_000 + b'"}'),
            "/loop": (302, {"Location": "/loop"}, b""),
        }
        expectations = {
            "/missing": "HTTP 404",
            "/html": "text/html",
            "/broken": "valid JSON",
            "/nokeys": "'keys'",
            "/others": "no usable key",
            "/x25519": "unsupported key type",
            "/private": "private key material",
            "/odd-kids": "no usable key",
            "/encryption": "not a signature key",
            "/kid-lies": "rs256",
            "/huge": "more than",
            "/loop": "redirected",
        }
        with LoopbackServer(routes) as server:
            sender = self.new_sender(server.url + "/jwks.json")
            sender.fetch_public_key()
            before = self.key_lines(sender)
            fields_before = (sender.public_key, sender.algorithm, sender.last_key_fetch)
            for path, text in expectations.items():
                sender.jwks_url = server.url + path
                with self.assertRaises(UserError, msg=path) as error:
                    sender.fetch_public_key()
                self.assertIn(text, str(error.exception), path)
                self.assertIn(sender.name, str(error.exception), path)
                self.assertEqual(self.key_lines(sender), before, path)
                self.assertEqual(
                    (sender.public_key, sender.algorithm, sender.last_key_fetch),
                    fields_before,
                    path,
                )

    def test_timeout_is_a_user_error(self):
        def slow(handler, body):
            time.sleep(0.6)
            return jwks()

        with LoopbackServer({"/slow": slow}) as server:
            sender = self.new_sender(server.url + "/slow")
            policy = FetchPolicy(allow_private=True, connect_timeout=1, read_timeout=0.2)
            with patch.object(type(sender), "_fetch_policy", return_value=policy):
                with self.assertRaises(UserError) as error:
                    sender.fetch_public_key()
        self.assertIn("did not answer in time", str(error.exception))
        self.assertFalse(sender.key_ids)

    def test_the_fetch_policy_is_hardened(self):
        policy = self.sender._fetch_policy()
        self.assertTrue(policy.verify_tls)
        self.assertTrue(policy.allow_private)  # the test class allows loopback
        self.assertLessEqual(max(policy.timeout), 30)
        self.assertLessEqual(policy.max_bytes, 1024 * 1024)
        self.assertLessEqual(policy.max_redirects, 5)
        self.set_param("allow_private_jwks_urls", "False")
        self.assertFalse(self.sender._fetch_policy().allow_private)

    def test_tls_certificates_are_verified(self):
        with tempfile.TemporaryDirectory() as directory:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self_signed_cert(directory))
        server = LoopbackServer({"/jwks.json": jwks(SigningKey.generate("ibr.fetch"))})
        server.httpd.socket = context.wrap_socket(server.httpd.socket, server_side=True)
        with server:
            sender = self.new_sender(server.url.replace("http://", "https://") + "/jwks.json")
            with self.assertRaises(UserError) as error:
                sender.fetch_public_key()
        self.assertIn("TLS verification failed", str(error.exception))
        self.assertEqual(server.requests, [])
        self.assertFalse(sender.key_ids)

    def test_private_addresses_need_the_system_parameter(self):
        self.set_param("allow_private_jwks_urls", "False")
        with LoopbackServer({"/jwks.json": jwks(SigningKey.generate("ibr.fetch"))}) as server:
            sender = self.new_sender(server.url + "/jwks.json")
            with self.assertRaises(UserError) as error:
                sender.fetch_public_key()
            self.assertEqual(server.requests, [])  # refused before connecting
            self.assertIn("not a public address", str(error.exception))
            self.set_param("allow_private_jwks_urls", "True")
            sender.action_fetch_public_key()
            self.assertEqual(len(server.requests), 1)
        self.assertEqual(len(sender.key_ids), 1)

    # -- rotation and refresh --------------------------------------------------

    def test_rotation_retires_keys_no_longer_published(self):
        old = SigningKey.generate("ibr.fetch", key_id="old")
        new = SigningKey.generate("ibr.fetch", "rs256", key_id="new")
        routes = {"/jwks.json": jwks(old, new)}
        with LoopbackServer(routes) as server:
            sender = self.new_sender(server.url + "/jwks.json")
            sender.fetch_public_key()
            self.assertEqual(sender.published_key_count, 2)
            verify(sender, signed(old))
            routes["/jwks.json"] = jwks(new)
            sender.fetch_public_key()
        states = {k.kid: k.state for k in sender.key_ids}
        self.assertEqual(states, {old.kid: "retired", new.kid: "published"})
        self.assertEqual(sender.published_key_count, 1)
        self.assertEqual((sender.algorithm, sender.public_key), ("rs256", new.public.pem))
        verify(sender, signed(new))
        with self.assertRaises(UnknownKey):
            verify(sender, signed(old))

    def test_refresh_on_unknown_kid_is_rate_limited(self):
        key = SigningKey.generate("ibr.fetch", key_id="k")
        with LoopbackServer({"/jwks.json": jwks(key)}) as server:
            sender = self.new_sender(server.url + "/jwks.json")
            refreshed = sender._refresh_keys_if_allowed()
            self.assertEqual(len(server.requests), 1)
            self.assertIn(key.kid, refreshed)
            self.assertIsNone(sender._refresh_keys_if_allowed())  # within the interval
            self.assertEqual(len(server.requests), 1)
            self.set_param("key_refresh_min_interval", "0")
            self.assertIn(key.kid, sender._refresh_keys_if_allowed())
            self.assertEqual(len(server.requests), 2)

    def test_refresh_rate_limit_survives_a_rollback(self):
        """A refused callback rolls its transaction back; the refresh it caused
        must still count, or every forged kid would make us fetch the JWKS."""
        with LoopbackServer({"/jwks.json": (500, {}, b"{}")}) as server:
            sender = self.new_sender(server.url + "/jwks.json")
            self.env.flush_all()
            with self.assertRaises(RuntimeError), self.env.cr.savepoint():
                self.assertIsNone(sender._refresh_keys_if_allowed())
                self.assertIn("HTTP 500", sender.last_fetch_error)
                raise RuntimeError("the callback was refused")
            sender.invalidate_recordset()
            self.assertFalse(sender.last_key_fetch)  # the database forgot the attempt ...
            self.assertIsNone(sender._refresh_keys_if_allowed())
            self.assertEqual(len(server.requests), 1)  # ... the rate limit did not

    def test_refresh_failure_is_recorded_not_raised(self):
        with LoopbackServer({"/jwks.json": (200, {"Content-Type": "text/html"}, b"<p>")}) as srv:
            sender = self.new_sender(srv.url + "/jwks.json")
            sender._store_keys([SigningKey.generate("ibr.fetch", key_id="kept").public])
            sender.last_key_fetch = False
            self.assertIsNone(sender._refresh_keys_if_allowed())
        self.assertIn("text/html", sender.last_fetch_error)
        self.assertEqual(sender.key_ids.mapped("state"), ["published"])

    # -- the daily cron --------------------------------------------------------

    def test_cron_isolates_failures(self):
        good_key = SigningKey.generate("ibr.good", key_id="g")
        other_key = SigningKey.generate("ibr.crash", key_id="c")
        with LoopbackServer(
            {
                "/good": jwks(good_key),
                "/bad": (500, {}, b"{}"),
                "/crash": jwks(other_key),
                "/archived": jwks(),
            }
        ) as server:
            # processed in name order: the failing ones come first
            bad = self.new_sender(server.url + "/bad", sender_id="ibr.bad", name="A bad")
            crash = self.new_sender(server.url + "/crash", sender_id="ibr.crash", name="B crash")
            good = self.new_sender(server.url + "/good", sender_id="ibr.good", name="C good")
            archived = self.new_sender(server.url + "/archived", sender_id="ibr.old", name="D")
            archived.active = False
            real_to_pem = type(crash)._jwk_to_pem

            def to_pem(sender, jwk):
                if sender.sender_id == "ibr.crash":
                    raise RuntimeError("a bug in an override")
                return real_to_pem(sender, jwk)

            cron = self.env.ref("spp_dci_client_ibr.ir_cron_refresh_sender_keys")
            self.assertTrue(cron.active)
            self.assertEqual((cron.interval_number, cron.interval_type), (1, "days"))
            with (
                patch.object(type(crash), "_jwk_to_pem", to_pem),
                mute_logger(SENDER_LOGGER),
            ):
                cron.ir_actions_server_id.run()  # what the scheduler executes
            paths = [path for _m, path, _h, _b in server.requests]
        self.assertNotIn("/archived", paths)
        self.assertEqual(sorted(paths), ["/bad", "/crash", "/good"])
        self.assertEqual(good.key_ids.kid, good_key.kid)
        self.assertTrue(good.last_key_fetch)
        self.assertFalse(good.last_fetch_error)
        self.assertIn("HTTP 500", bad.last_fetch_error)
        self.assertTrue(crash.last_fetch_error)
        self.assertFalse(bad.key_ids | crash.key_ids)
        self.assertFalse(self.sender.last_fetch_error)  # no JWKS URL: left alone
        # a later success clears the error shown on the sender
        with LoopbackServer({"/jwks.json": jwks(SigningKey.generate("ibr.bad"))}) as server:
            (good | crash).active = False
            bad.jwks_url = server.url + "/jwks.json"
            self.env["spp.dci.ibr.sender"]._cron_refresh_keys()
        self.assertFalse(bad.last_fetch_error)
        self.assertEqual(len(bad.key_ids), 1)

    # -- access rights ---------------------------------------------------------

    def test_access_rights(self):
        user = new_test_user(self.env, login="plain_user", groups="base.group_user")
        admin = new_test_user(self.env, login="sys_admin", groups="base.group_system")
        senders = self.env["spp.dci.ibr.sender"]
        keys = self.env["spp.dci.ibr.sender.key"]
        self.assertEqual(senders.with_user(user).search([("id", "=", self.sender.id)]), self.sender)
        self.assertEqual(self.sender.with_user(user).key_ids.kid, self.ibr_key.kid)
        with self.assertRaises(AccessError):
            self.sender.with_user(user).write({"name": "changed"})
        with self.assertRaises(AccessError):
            senders.with_user(user).create({"name": "x", "sender_id": "x"})
        with self.assertRaises(AccessError):
            self.sender.with_user(user).unlink()
        with self.assertRaises(AccessError):
            self.sender.key_ids.with_user(user).write({"state": "retired"})
        with self.assertRaises(AccessError):
            self.sender.with_user(user).callback_token  # noqa: B018 - the read is the test
        # system administrators: full CRUD, keys included
        as_admin = senders.with_user(admin)
        created = as_admin.create({"name": "New", "sender_id": "ibr.new"})
        created.write({"name": "Renamed", "callback_token": "secret"})
        self.assertEqual(created.callback_token, "secret")
        key = SigningKey.generate("ibr.new")
        keys.with_user(admin).create(
            {
                "sender_id": created.id,
                "kid": key.kid,
                "algorithm": "ed25519",
                "public_key": key.public.pem,
            }
        )
        created.unlink()
        self.assertFalse(created.exists())
