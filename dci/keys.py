"""Keys: JWK/JWKS parsing, key-id handling, key sets and our own signing keys.

JWK decoding is delegated to joserfc; this module adds the policy that DCI
needs: public keys only, Ed25519 or RSA >= 2048 bits, one normalised
algorithm name per key, and ``kid`` values of the form
``{sender_id}|{key_id}|{algorithm}``.
"""

import hashlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from joserfc.jwk import OKPKey, RSAKey

from . import jsontext
from .errors import KeyFormatError, UnknownKey

__all__ = [
    "ED25519",
    "RS256",
    "KeyId",
    "KeySet",
    "PublicKey",
    "SigningKey",
    "jose_key",
    "normalise_algorithm",
    "parse_jwks",
    "public_key_from_jwk",
    "public_key_from_pem",
    "sender_keys",
]

ED25519 = "ed25519"
RS256 = "rs256"
MIN_RSA_BITS = 2048

_ALGORITHM_ALIASES = {
    "ed25519": ED25519,
    "eddsa": ED25519,
    "rs256": RS256,
    "rsa-sha256": RS256,
    "rsa256": RS256,
}
# Stateless parameter objects, made once rather than on every verification.
_PKCS1V15 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()
# JWK members that only a private key has; a JWKS must never publish them.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_JOSE_CLASSES = {ED25519: OKPKey, RS256: RSAKey}
_JOSE_NAMES = {ED25519: "EdDSA", RS256: "RS256"}


def normalise_algorithm(name):
    """Map the spellings peers use (``Ed25519``, ``EdDSA``, ``RS256`` ...) to ours."""
    try:
        return _ALGORITHM_ALIASES[str(name).strip().lower()]
    except KeyError:
        raise KeyFormatError(f"unsupported signature algorithm {name!r}") from None


def jose_key(key, algorithm):
    """``key`` (a ``cryptography`` key or JWK dict) as the joserfc key of our ``algorithm``."""
    return _JOSE_CLASSES[algorithm].import_key(key)


@dataclass(frozen=True)
class KeyId:
    """A DCI key id: ``{sender_id}|{key_id}|{algorithm}``."""

    sender_id: str
    key_id: str
    algorithm: str

    @classmethod
    def parse(cls, kid):
        parts = kid.split("|") if isinstance(kid, str) else []
        if len(parts) != 3 or not all(p and p == p.strip() for p in parts):
            raise KeyFormatError(f"key id {kid!r} is not 'sender|key|algorithm'")
        return cls(parts[0], parts[1], normalise_algorithm(parts[2]))

    def __str__(self):
        return f"{self.sender_id}|{self.key_id}|{self.algorithm}"


def _algorithm_of(key):
    if isinstance(key, ed25519.Ed25519PublicKey):
        return ED25519
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise KeyFormatError(
                f"RSA key of {key.key_size} bits is too short (minimum {MIN_RSA_BITS})"
            )
        return RS256
    raise KeyFormatError(f"unsupported key type {type(key).__name__}")


@dataclass(frozen=True)
class PublicKey:
    """A trusted verification key; its algorithm comes from the key itself."""

    kid: str
    key: object = field(repr=False, compare=False)
    algorithm: str = ""

    def __post_init__(self):
        own = _algorithm_of(self.key)
        if self.algorithm and normalise_algorithm(self.algorithm) != own:
            raise KeyFormatError(f"key {self.kid!r} is {own} but is declared as {self.algorithm!r}")
        object.__setattr__(self, "algorithm", own)

    @property
    def pem(self):
        return self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    @property
    def fingerprint(self):
        """SHA-256 of the DER SubjectPublicKeyInfo, hex: stable across formats."""
        der = self.key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return hashlib.sha256(der).hexdigest()

    def to_jwk(self):
        jwk = jose_key(self.key, self.algorithm).as_dict(private=False)
        jwk.update(kid=self.kid, alg=_JOSE_NAMES[self.algorithm], use="sig")
        return jwk

    def signs(self, signature, data):
        """True when ``signature`` is this key's signature of ``data``."""
        try:
            if self.algorithm == ED25519:
                self.key.verify(signature, data)
            else:
                self.key.verify(signature, data, _PKCS1V15, _SHA256)
        except InvalidSignature:
            return False
        return True


def public_key_from_jwk(jwk):
    """Build a :class:`PublicKey` from one JWK (OKP/Ed25519 or RSA)."""
    if not isinstance(jwk, dict):
        raise KeyFormatError("a JWK must be a JSON object")
    private = _PRIVATE_MEMBERS & jwk.keys()
    if private:
        raise KeyFormatError(
            f"JWK {jwk.get('kid')!r} carries private key material ({', '.join(sorted(private))})"
        )
    kid, declared = jwk.get("kid") or "", jwk.get("alg") or ""
    if not isinstance(kid, str) or not isinstance(declared, str):
        raise KeyFormatError("JWK kid and alg must be strings")
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "OKP" and crv == "Ed25519":
        algorithm = ED25519
    elif kty == "RSA":
        algorithm = RS256
    else:
        raise KeyFormatError(f"unsupported key type {kty!r}/{crv!r}")
    try:
        key = jose_key(jwk, algorithm).public_key
    except Exception as exc:  # joserfc raises all sorts (ValueError, KeyError, TypeError ...)
        raise KeyFormatError(f"malformed JWK {kid!r}: {type(exc).__name__}") from None
    if not declared and kid.count("|") == 2:
        declared = KeyId.parse(kid).algorithm
    return PublicKey(kid=kid, key=key, algorithm=declared)


def public_key_from_pem(pem, kid="", algorithm=""):
    """Build a :class:`PublicKey` from a PEM SubjectPublicKeyInfo block."""
    data = pem.encode() if isinstance(pem, str) else pem
    if b"PRIVATE KEY" in data:
        raise KeyFormatError("expected a public key, got a private key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise KeyFormatError(f"not a PEM public key: {exc}") from None
    return PublicKey(kid=kid, key=key, algorithm=algorithm)


def parse_jwks(document):
    """Parse a JWKS (bytes, str or dict) into a :class:`KeySet`.

    Keys of other types or uses (encryption keys, other curves) are skipped
    and listed in ``KeySet.skipped``; a key carrying private material makes
    the whole document unacceptable.
    """
    if isinstance(document, (bytes, str)):
        try:
            document = jsontext.loads(document)
        except ValueError:
            raise KeyFormatError("JWKS is not acceptable JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeyFormatError("JWKS has no 'keys' list")
    keys, skipped = [], []
    for jwk in document["keys"]:
        kid = jwk.get("kid") if isinstance(jwk, dict) else None
        if isinstance(jwk, dict) and _PRIVATE_MEMBERS & jwk.keys():
            raise KeyFormatError(f"JWKS key {kid!r} carries private key material")
        if isinstance(jwk, dict) and jwk.get("use", "sig") != "sig":
            skipped.append((kid, "not a signature key"))
            continue
        try:
            keys.append(public_key_from_jwk(jwk))
        except KeyFormatError as exc:
            skipped.append((kid, exc.message))
    return KeySet(keys, skipped=skipped)


def sender_keys(document, sender_id, read=None):
    """The signature keys of ``sender_id`` in a JWKS document (a dict), each
    made by ``read(jwk)`` (default :func:`public_key_from_jwk`); a list.

    The document passes :func:`parse_jwks`'s whole-document checks first
    (private material refused). A key is the sender's when its kid starts with
    ``{sender_id}|`` or is the key's JWK thumbprint (OpenCRVS). Keys of other
    senders are ignored; this sender's keys that are not usable are named in the error raised
    (:class:`KeyFormatError`) when none is left.
    """
    parse_jwks(document)
    read = read or public_key_from_jwk
    prefix = f"{sender_id}|"
    keys, problems = [], []
    for jwk in document["keys"]:
        kid = jwk.get("kid") if isinstance(jwk, dict) else None
        if not isinstance(kid, str) or not (kid.startswith(prefix) or _is_thumbprint_kid(jwk)):
            continue
        if jwk.get("use", "sig") != "sig":
            problems.append(f"{kid}: not a signature key")
            continue
        try:
            keys.append(read(jwk))
        except KeyFormatError as exc:
            problems.append(f"{kid}: {exc.message}")
    if not keys:
        raise KeyFormatError(
            "; ".join(problems)
            or f"no key id starts with {prefix!r}: check that the sender id is the one "
            "the IBR signs with"
        )
    return keys


def _is_thumbprint_kid(jwk):
    """True when a JWK's kid is its own RFC 7638 thumbprint (OpenCRVS's key ids):
    such a kid names no sender, the JWKS it is read from does."""
    algorithm = {"OKP": ED25519, "RSA": RS256}.get(jwk.get("kty"))
    if algorithm is None or jwk.get("use", "sig") != "sig":
        return False
    try:
        return jose_key(jwk, algorithm).thumbprint() == jwk["kid"]
    except Exception:  # noqa: BLE001 - joserfc raises all sorts on a malformed JWK
        return False


class KeySet:
    """Trusted public keys by ``kid``; lookups raise, never return ``None``."""

    def __init__(self, keys=(), skipped=(), default=None):
        self._keys = {}
        self.skipped = list(skipped)
        # A key pasted by hand has no kid: it answers for any kid not listed.
        self.default = default
        for key in keys:
            self.add(key)

    def add(self, key):
        self._keys[key.kid] = key

    def get(self, kid):
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            key = self.default
        if key is None:
            raise UnknownKey(f"no trusted key with id {kid!r}")
        return key

    def for_sender(self, sender_id):
        """The keys whose kid is ``{sender_id}|...``."""
        prefix = f"{sender_id}|"
        return KeySet([k for k in self if k.kid.startswith(prefix)])

    def __iter__(self):
        return iter(self._keys.values())

    def __len__(self):
        return len(self._keys)

    def __contains__(self, kid):
        return isinstance(kid, str) and kid in self._keys


class SigningKey:
    """One of our own private signing keys, with its DCI key id."""

    def __init__(self, private_key, kid):
        self.private_key = private_key
        self.public = PublicKey(kid=kid, key=private_key.public_key())
        self.kid = kid
        self.algorithm = self.public.algorithm

    @classmethod
    def generate(cls, sender_id, algorithm=ED25519, key_id=None):
        algorithm = normalise_algorithm(algorithm)
        key_id = key_id or secrets.token_hex(4)
        return cls(_new_private_key(algorithm), str(KeyId(sender_id, key_id, algorithm)))

    @classmethod
    def from_pem(cls, pem, kid):
        return cls(_private_key_from_pem(pem), kid)

    @classmethod
    def from_file(cls, path, sender_id, algorithm=ED25519):
        """Our key kept in the PEM file ``path``: read if it exists, else made and saved (0600).

        Its key id is taken from the key's fingerprint, so the same file gives the same kid
        at every start; a file holding a key of another algorithm is refused.
        """
        algorithm = normalise_algorithm(algorithm)
        private = _read_key_file(path)
        created = private is None
        if created:
            private = _new_private_key(algorithm)
        held = PublicKey("", private.public_key())
        if held.algorithm != algorithm:
            raise KeyFormatError(f"key file {path} holds an {held.algorithm} key, not {algorithm}")
        key = cls(private, str(KeyId(sender_id, held.fingerprint[:8], algorithm)))
        if created:
            _write_new_private(path, key.private_pem())
        return key

    def private_pem(self):
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    def sign(self, data):
        if self.algorithm == ED25519:
            return self.private_key.sign(data)
        return self.private_key.sign(data, _PKCS1V15, _SHA256)

    def jwks(self):
        return {"keys": [self.public.to_jwk()]}


def _new_private_key(algorithm):
    if algorithm == ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=MIN_RSA_BITS)


def _private_key_from_pem(pem):
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFormatError(f"not an unencrypted PEM private key: {exc}") from None


def _read_key_file(path):
    """The private key in ``path`` (Ed25519 or RSA), ``None`` when there is no such file."""
    try:
        private = _private_key_from_pem(Path(path).read_bytes())
        _algorithm_of(private.public_key())  # an unusable key is refused naming the file
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KeyFormatError(f"cannot read key file {path}: {exc.strerror}") from None
    except KeyFormatError as exc:
        raise KeyFormatError(f"key file {path}: {exc.message}") from None
    return private


def _write_new_private(path, pem):
    """Write a new key file only its owner can read; never replace an existing one."""
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(pem)
