"""End-to-end encryption of a connection's messages (the spec's ``is_msg_encrypted``).

Our encryption key is generated and rotated like the signing key: its private
part is read by system administrators only, never copied, blanked when the
database is neutralized; its public part is published in our JWKS with
``use: enc``. The IBR's key comes from its sender's JWKS (``use: enc``).
"""

import json

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..dci import jwe
from ..dci.errors import DCIError
from .ibr_sender import SENDER_MENU
from .notify import notification

ENCRYPTION_ALGORITHMS = [
    (jwe.RSA_OAEP_256, "RSA-OAEP-256"),
    (jwe.ECDH_ES_A256KW, "ECDH-ES+A256KW (P-256)"),
]


class IbrConnectionEncryption(models.Model):
    _inherit = "spp.dci.ibr.connection"

    is_msg_encrypted = fields.Boolean(
        string="Encrypt Messages",
        help="Encrypt every message to the IBR's encryption key (use: enc in its JWKS), and "
        "refuse its answers and callbacks unless they are encrypted to ours.",
    )
    encryption_algorithm = fields.Selection(
        ENCRYPTION_ALGORITHMS, default=jwe.RSA_OAEP_256, required=True
    )
    encryption_kid = fields.Char(string="Encryption Key ID", readonly=True, copy=False)
    encryption_public_key = fields.Text(
        string="Our Public Encryption Key", readonly=True, copy=False, help="Its public JWK."
    )
    encryption_private_key = fields.Text(groups="base.group_system", copy=False)
    has_encryption_key = fields.Boolean(compute="_compute_has_encryption_key")

    @api.depends("encryption_kid", "encryption_public_key")
    def _compute_has_encryption_key(self):
        for conn in self:
            conn.has_encryption_key = bool(conn.encryption_kid and conn.encryption_public_key)

    def action_generate_encryption_key(self):
        """Create a new encryption key pair (administrators only). Messages the
        IBR encrypted to the old key no longer open: it must fetch our JWKS again."""
        self._check_admin(self.env._("Only administrators can rotate our encryption key."))
        for conn in self:
            key = jwe.EncryptionKey.generate(conn.our_sender_id, conn.encryption_algorithm)
            conn.sudo().write(
                {
                    "encryption_kid": key.kid,
                    "encryption_public_key": json.dumps(key.public_jwk()),
                    "encryption_private_key": key.private_pem(),
                }
            )
        return notification(
            self.env._("Encryption key generated"),
            "\n".join(
                self.env._(
                    "%(name)s now opens messages encrypted to key %(kid)s. The IBR must fetch "
                    "our JWKS at %(url)s before it encrypts to it.",
                    name=conn.name,
                    kid=conn.encryption_kid,
                    url=conn._our_jwks_url(),
                )
                for conn in self
            ),
            "success",
        )

    def _encryption_problems(self):
        """``(what, fix)`` pairs keeping an encrypting connection from being used."""
        self.ensure_one()
        if not self.is_msg_encrypted:
            return []
        problems = []
        if not (self.encryption_kid and self.sudo().encryption_private_key):
            problems.append(
                (
                    self.env._("it encrypts messages but we have no encryption key"),
                    self.env._("generate one with Generate Encryption Key on the connection"),
                )
            )
        if self.ibr_sender_id and not self.ibr_sender_id.encryption_jwk:
            problems.append(
                (
                    self.env._(
                        "it encrypts messages but the IBR sender %(name)s has no encryption key",
                        name=self.ibr_sender_id.name,
                    ),
                    self.env._(
                        "click Fetch Public Key on the sender (%(menu)s): its JWKS must list a "
                        "key with use enc",
                        menu=SENDER_MENU,
                    ),
                )
            )
        return problems

    def _decryption_key(self):
        """Our :class:`~dci.jwe.EncryptionKey`, or ``None`` when there is none."""
        self.ensure_one()
        private_pem = self.sudo().encryption_private_key
        if not (private_pem and self.encryption_kid):
            return None
        try:
            return jwe.EncryptionKey.from_pem(private_pem, self.encryption_kid)
        except DCIError:
            return None  # unusable: an encrypted message to it is refused with its code

    def _encryption_options(self):
        """The :class:`~dci.client.IbrClient` keyword arguments of this connection's policy."""
        self.ensure_one()
        ours = self._decryption_key()
        options = {"decryption_keys": [ours] if ours else []}
        if not self.is_msg_encrypted:
            return options
        try:
            jwk = json.loads(self.ibr_sender_id.encryption_jwk or "{}")
            recipient = jwe.recipient_from_jwks({"keys": [jwk]})
        except (DCIError, ValueError):
            raise UserError(
                self.env._(
                    "IBR connection %(name)s encrypts messages, but its IBR sender has no usable "
                    "encryption key: fetch the sender's keys (%(menu)s).",
                    name=self.name,
                    menu=SENDER_MENU,
                )
            ) from None
        return dict(options, encrypt_to=recipient, require_encryption=True)

    @api.model
    def _encryption_jwks(self):
        """Our public encryption keys (every connection's), for the JWKS we publish."""
        keys = []
        for conn in self.sudo().search([("encryption_kid", "!=", False)]):
            try:
                keys.append(json.loads(conn.encryption_public_key))
            except (TypeError, ValueError):
                continue  # a broken key is not published
        return keys

    @api.model
    def _inbound_encryption(self):
        """``(our decryption keys, sender id -> must it encrypt)`` for the callback routes."""
        connections = (
            self.sudo().with_context(active_test=False).search([("encryption_kid", "!=", False)])
        )
        keys = [key for conn in connections if (key := conn._decryption_key())]
        encrypting = self.sudo().search([("is_msg_encrypted", "=", True)])
        required = set(encrypting.ibr_sender_id.mapped("sender_id"))
        return keys, required.__contains__
