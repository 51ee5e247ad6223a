"""One public key an IBR sender publishes (or published) in its JWKS."""

from odoo import fields, models

from ..dci.keys import public_key_from_pem


class IbrSenderKey(models.Model):
    _name = "spp.dci.ibr.sender.key"
    _description = "IBR Sender Public Key"
    _order = "state, fetched_at desc"
    _rec_name = "kid"

    sender_id = fields.Many2one("spp.dci.ibr.sender", required=True, ondelete="cascade", index=True)
    kid = fields.Char(string="Key ID", required=True)
    algorithm = fields.Selection([("ed25519", "Ed25519"), ("rs256", "RSA-256")], required=True)
    public_key = fields.Text(required=True)
    fingerprint = fields.Char(help="SHA-256 of the DER public key.")
    fetched_at = fields.Datetime()
    state = fields.Selection(
        [("published", "Published"), ("retired", "Retired")],
        default="published",
        required=True,
        help="Retired keys are no longer in the sender's JWKS and verify nothing.",
    )

    _sender_kid_unique = models.Constraint(
        "UNIQUE(sender_id, kid)", "This sender already has a key with this key ID."
    )

    def _to_public_key(self):
        self.ensure_one()
        return public_key_from_pem(self.public_key, kid=self.kid, algorithm=self.algorithm)
