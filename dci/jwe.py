"""Encrypted messages: the spec's ``EncryptedMessage``, a flattened JWE.

The spec's shape is ``{"header": {"alg", "enc", "kid"}, "encrypted_key",
"iv", "ciphertext", "tag"}`` (base64url members, no ``protected`` member, so
the additional authenticated data is empty). We also read a flattened JWE
that carries a ``protected`` header, as JOSE libraries write by default.
Algorithms: ``RSA-OAEP-256`` or ``ECDH-ES+A256KW`` (P-256) for the key,
``A256GCM`` for the content; the cryptography is joserfc's algorithm models.

The message is encrypted first and the envelope signed afterwards: the
signature covers the header and the *encrypted* message, as sent (the spec
and OpenCRVS do so). Every failure is :class:`~dci.errors.EncryptionInvalid`.
"""

import base64
import binascii
import json
import re
import secrets

from joserfc.errors import JoseError
from joserfc.jwe import FlattenedJSONEncryption, JWERegistry
from joserfc.jwk import ECKey, RSAKey

from . import jsontext
from .errors import EncryptionInvalid
from .keys import MIN_RSA_BITS

__all__ = [
    "ALGORITHMS",
    "A256GCM",
    "ECDH_ES_A256KW",
    "RSA_OAEP_256",
    "EncryptionKey",
    "RecipientKey",
    "decrypt",
    "encrypt",
    "is_encrypted",
    "recipient_from_jwks",
]

RSA_OAEP_256 = "RSA-OAEP-256"
ECDH_ES_A256KW = "ECDH-ES+A256KW"
A256GCM = "A256GCM"
ALGORITHMS = (RSA_OAEP_256, ECDH_ES_A256KW)
_KTY_OF = {RSA_OAEP_256: "RSA", ECDH_ES_A256KW: "EC"}
_ALG_OF_KTY = {"RSA": RSA_OAEP_256, "EC": ECDH_ES_A256KW}
_MEMBERS = ("encrypted_key", "iv", "ciphertext", "tag")
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")  # unpadded, as RFC 7515 section 2 says
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def _registry(alg):
    return JWERegistry(algorithms=[alg, A256GCM])


def _import(jwk_or_key, alg):
    """A joserfc key of the type ``alg`` needs (RSA >= 2048 bits, EC P-256)."""
    key = (RSAKey if _KTY_OF[alg] == "RSA" else ECKey).import_key(jwk_or_key)
    if _KTY_OF[alg] == "RSA" and key.public_key.key_size < MIN_RSA_BITS:
        raise EncryptionInvalid(f"RSA encryption key shorter than {MIN_RSA_BITS} bits")
    if _KTY_OF[alg] == "EC" and key.curve_name != "P-256":
        raise EncryptionInvalid(f"EC encryption key on {key.curve_name}, not P-256")
    return key


class RecipientKey:
    """A peer's public encryption key (``use: enc``), with its kid and algorithm."""

    def __init__(self, jwk, kid, alg):
        if alg not in ALGORITHMS:
            raise EncryptionInvalid(f"unsupported key algorithm {alg!r}")
        self.kid, self.alg = kid, alg
        self.key = _import(jwk, alg)
        if self.key.is_private:
            raise EncryptionInvalid(f"encryption key {kid!r} carries private material")


class EncryptionKey:
    """One of our own private decryption keys (published with ``use: enc``)."""

    def __init__(self, private_key, kid, alg):
        if alg not in ALGORITHMS:
            raise EncryptionInvalid(f"unsupported key algorithm {alg!r}")
        self.kid, self.alg = kid, alg
        self.key = _import(private_key, alg)
        if not self.key.is_private:
            raise EncryptionInvalid(f"decryption key {kid!r} has no private part")

    @classmethod
    def generate(cls, sender_id, alg=RSA_OAEP_256, key_id=None):
        if alg not in ALGORITHMS:
            raise EncryptionInvalid(f"unsupported key algorithm {alg!r}")
        key_id = key_id or secrets.token_hex(4)
        if alg == RSA_OAEP_256:
            key = RSAKey.generate_key(MIN_RSA_BITS, private=True)
        else:
            key = ECKey.generate_key("P-256", private=True)
        return cls(key.private_key, f"{sender_id}|{key_id}|enc", alg)

    @classmethod
    def from_pem(cls, pem, kid):
        """Our key from its PEM; the algorithm follows the key type."""
        data = pem.encode() if isinstance(pem, str) else pem
        for kty, loader in (("RSA", RSAKey), ("EC", ECKey)):
            try:
                key = loader.import_key(data)
            except (ValueError, TypeError, JoseError):
                continue
            return cls(key.private_key or key.public_key, kid, _ALG_OF_KTY[kty])
        raise EncryptionInvalid("not an RSA or EC P-256 private key in PEM")

    def private_pem(self):
        return self.key.as_pem(private=True).decode()

    def public_jwk(self):
        jwk = self.key.as_dict(private=False)
        jwk.update(kid=self.kid, alg=self.alg, use="enc")
        return jwk

    def recipient(self):
        """This key's public half, as a peer sees it."""
        return RecipientKey(self.key.as_dict(private=False), self.kid, self.alg)


def recipient_from_jwks(document):
    """The first ``use: enc`` key of a JWKS (dict, str or bytes), as OpenCRVS picks it.

    Its ``alg`` is taken from the JWK, or follows its type when absent.
    """
    if isinstance(document, (bytes, str)):
        try:
            document = jsontext.loads(document)
        except ValueError:
            raise EncryptionInvalid("JWKS is not acceptable JSON") from None
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise EncryptionInvalid("JWKS has no 'keys' list")
    for jwk in keys:
        if not isinstance(jwk, dict) or jwk.get("use") != "enc":
            continue
        if _PRIVATE_MEMBERS & jwk.keys():
            raise EncryptionInvalid(f"JWKS key {jwk.get('kid')!r} carries private material")
        kid, alg = jwk.get("kid"), jwk.get("alg") or _ALG_OF_KTY.get(jwk.get("kty"))
        if not (isinstance(kid, str) and kid):
            raise EncryptionInvalid("the JWKS encryption key has no kid")
        try:
            return RecipientKey(jwk, kid, alg)
        except (ValueError, TypeError, KeyError, JoseError):
            raise EncryptionInvalid(f"malformed encryption key {kid!r}") from None
    raise EncryptionInvalid("the JWKS has no encryption key (use: enc)")


def is_encrypted(message):
    """True when ``message`` has the members of an ``EncryptedMessage``."""
    return isinstance(message, dict) and "ciphertext" in message and "iv" in message


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(value, name):
    if not isinstance(value, str) or not _B64URL.match(value):
        raise EncryptionInvalid(f"encrypted message {name} is not base64url text")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise EncryptionInvalid(f"encrypted message {name} is not base64url") from None


def encrypt(message, recipient):
    """``message`` (a JSON object) encrypted to ``recipient``, in the spec's shape."""
    plaintext = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
    registry = _registry(recipient.alg)
    enc, alg = registry.get_enc(A256GCM), registry.get_alg(recipient.alg)
    jwe = FlattenedJSONEncryption({}, plaintext)
    jwe.add_recipient({"alg": recipient.alg, "enc": A256GCM, "kid": recipient.kid}, recipient.key)
    target = jwe.recipients[0]
    cek, iv = enc.generate_cek(), enc.generate_iv()
    if recipient.alg == ECDH_ES_A256KW:
        alg.prepare_ephemeral_key(target)  # adds "epk" to the header
        target.encrypted_key = alg.wrap_cek_with_auk(cek, alg.encrypt_agreed_upon_key(enc, target))
    else:
        target.encrypted_key = alg.encrypt_cek(cek, target)
    ciphertext, tag = enc.encrypt(plaintext, cek, iv, b"")  # no protected header: empty AAD
    return {
        "header": dict(target.header),
        "encrypted_key": _b64(target.encrypted_key),
        "iv": _b64(iv),
        "ciphertext": _b64(ciphertext),
        "tag": _b64(tag),
    }


def _headers(encrypted):
    """``(protected, aad, header)``: the optional protected header, the AAD, the merged header."""
    header = encrypted.get("header", {} if "protected" in encrypted else None)
    if not isinstance(header, dict):
        raise EncryptionInvalid("encrypted message header must be an object")
    if "protected" not in encrypted:
        protected, aad = {}, b""
    else:
        segment = encrypted["protected"]
        protected = jsontext.loads(_unb64(segment, "protected")) if segment else {}
        if not isinstance(protected, dict) or protected.keys() & header.keys():
            raise EncryptionInvalid("encrypted message protected header is not a distinct object")
        aad = segment.encode()
    merged = {**header, **protected}
    for name in ("alg", "enc", "kid"):
        if not isinstance(merged.get(name), str) or not merged[name]:
            raise EncryptionInvalid(f"encrypted message header lacks {name!r}")
    if merged["alg"] not in ALGORITHMS:
        raise EncryptionInvalid(f"unsupported key encryption {merged['alg']!r}")
    if merged["enc"] != A256GCM:
        raise EncryptionInvalid(f"unsupported content encryption {merged['enc']!r}")
    if "zip" in merged or "crit" in merged:
        raise EncryptionInvalid("compressed or critical-extension JWE is not accepted")
    return protected, aad, merged


def decrypt(encrypted, keys, *, max_depth=jsontext.MAX_DEPTH):
    """The message (a dict) inside ``encrypted``, decrypted with the one of our
    :class:`EncryptionKey` ``keys`` its ``kid`` names."""
    if not isinstance(encrypted, dict):
        raise EncryptionInvalid("encrypted message must be an object")
    extra = encrypted.keys() - {"header", "protected", *_MEMBERS}
    if extra:
        raise EncryptionInvalid(f"encrypted message has unexpected members {sorted(extra)}")
    protected, aad, header = _headers(encrypted)
    parts = {name: _unb64(encrypted.get(name), name) for name in _MEMBERS}
    key = next((k for k in keys if k.kid == header["kid"]), None)
    if key is None:
        raise EncryptionInvalid(f"no decryption key with id {header['kid']!r}")
    if key.alg != header["alg"]:
        raise EncryptionInvalid(f"key {key.kid!r} is for {key.alg}, not {header['alg']}")
    try:
        plaintext = _open(protected, aad, encrypted.get("header", {}), parts, key)
    except (JoseError, ValueError, TypeError, KeyError, AssertionError) as exc:
        # joserfc and cryptography raise all sorts; none says more than "does not decrypt"
        raise EncryptionInvalid(
            f"encrypted message does not decrypt ({type(exc).__name__})"
        ) from None
    try:
        message = jsontext.loads(plaintext, max_depth)
    except ValueError:
        raise EncryptionInvalid("decrypted message is not acceptable JSON") from None
    if not isinstance(message, dict):
        raise EncryptionInvalid("decrypted message is not an object")
    return message


def _open(protected, aad, header, parts, key):
    registry = _registry(key.alg)
    enc, alg = registry.get_enc(A256GCM), registry.get_alg(key.alg)
    jwe = FlattenedJSONEncryption(protected)
    jwe.add_recipient(dict(header), key.key)
    target = jwe.recipients[0]
    registry.check_header(target.headers(), True)
    target.encrypted_key = parts["encrypted_key"]
    if key.alg == ECDH_ES_A256KW:
        cek = alg.unwrap_cek_with_auk(
            target.encrypted_key, alg.decrypt_agreed_upon_key(enc, target)
        )
    else:
        cek = alg.decrypt_cek(target)
    enc.check_iv(parts["iv"])
    return enc.decrypt(parts["ciphertext"], parts["tag"], cek, parts["iv"], aad)
