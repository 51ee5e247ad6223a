"""The dialect a connection's IBR speaks (``dci/dialects.py``): a preset, or custom.

The preset sets where the IBR serves its operations, what it does with our
``sender_uri``, the signature form and our key ids; the form explains each.
A peer that looks our key up by its JWK thumbprint finds it under that kid
too in our JWKS.
"""

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..dci import dialects
from ..dci.errors import DCIError
from ..dci.keys import SigningKey

PRESETS = [(d.name, d.label) for d in dialects.DIALECTS.values()] + [("custom", "Custom")]


class IbrConnectionDialect(models.Model):
    _inherit = "spp.dci.ibr.connection"

    peer_dialect = fields.Selection(
        PRESETS,
        string="IBR Dialect",
        default="openspp2",
        required=True,
        help="How this IBR differs from the SPDCI API: where it serves its operations, "
        "where it sends its answers, how it signs and names keys.",
    )
    peer_dialect_help = fields.Text(string="What the Dialect Means", compute="_compute_dialect")
    operation_path = fields.Char(
        default="/registry/{op}",
        help="Custom dialect: the path of an operation under the base URL; {op} is e.g. "
        "search, sync/search, txn/status.",
    )
    callback_style = fields.Selection(
        [
            (dialects.FULL_URL, "Posts to the callback URL we send"),
            (dialects.BASE_URL, "Appends /on-<action> to what we send"),
        ],
        default=dialects.FULL_URL,
    )
    signature_scheme = fields.Selection(
        [(dialects.CAVAGE, "DCI signature"), (dialects.JWS, "Compact JWS")],
        default=dialects.CAVAGE,
    )
    kid_style = fields.Selection(
        [(dialects.DCI_KID, "sender|key|algorithm"), (dialects.THUMBPRINT_KID, "JWK thumbprint")],
        string="Key ID Style",
        default=dialects.DCI_KID,
    )

    @api.depends("peer_dialect")
    def _compute_dialect(self):
        for conn in self:
            preset = dialects.DIALECTS.get(conn.peer_dialect)
            conn.peer_dialect_help = (
                preset.explanation
                if preset
                else self.env._("The four settings below, as this IBR needs them.")
            )

    @api.constrains("peer_dialect", "operation_path")
    def _check_dialect(self):
        for conn in self.filtered(lambda c: c.peer_dialect == "custom"):
            try:
                conn._dialect()
            except DCIError:
                raise ValidationError(
                    self.env._(
                        "The operation path must start with / and contain {op}, "
                        "e.g. /registry/{op}."
                    )
                ) from None

    def _dialect_problems(self):
        """``(what, fix)`` when the dialect needs what the connection lacks."""
        self.ensure_one()
        sender_id = self.our_sender_id or ""
        if self.peer_dialect == "opencrvs" and not sender_id.startswith(("https://", "http://")):
            return [
                (
                    self.env._(
                        "OpenCRVS fetches our keys at <our sender ID>/.well-known/jwks.json, "
                        "and our sender ID %(id)s is not a URL",
                        id=sender_id,
                    ),
                    self.env._(
                        "set our sender ID to the URL of our API, %(url)s, then rotate the "
                        "signing key",
                        url=self._our_base_url() + "/dci_api",
                    ),
                )
            ]
        return []

    def _dialect(self):
        """This connection's :class:`~dci.dialects.Dialect`."""
        self.ensure_one()
        if self.peer_dialect != "custom":
            return dialects.dialect(self.peer_dialect)
        return dialects.dialect("openspp2").with_(
            operation_path=self.operation_path or "",
            callback_style=self.callback_style or dialects.FULL_URL,
            signature=self.signature_scheme or dialects.CAVAGE,
            kid_style=self.kid_style or dialects.DCI_KID,
        )

    @api.model
    def _thumbprint_jwks(self):
        """Our signing keys again under their JWK thumbprint, for the connections
        whose IBR looks keys up that way (OpenCRVS)."""
        keys = []
        for conn in self.sudo().search([("signing_kid", "!=", False)]):
            if conn._dialect().kid_style != dialects.THUMBPRINT_KID:
                continue
            try:
                key = SigningKey.from_pem(conn.signing_private_key, conn.signing_kid)
            except DCIError:
                continue  # a broken key is not published; the form shows it
            keys.append(conn._dialect().key_for(key).public.to_jwk())
        return keys
