"""Names for OIDs: subject attributes, key usages, extended key usages, signature algorithms.

Tables only, shared by the CSR parser and the certificate checks; no parsing here.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.x509.oid import (
    ExtendedKeyUsageOID,
    ExtensionOID,
    NameOID,
    SignatureAlgorithmOID,
)

SUBJECT_NAMES = {
    NameOID.COMMON_NAME.dotted_string: "commonName",
    NameOID.ORGANIZATION_NAME.dotted_string: "organization",
    NameOID.ORGANIZATIONAL_UNIT_NAME.dotted_string: "organizationalUnit",
    NameOID.COUNTRY_NAME.dotted_string: "country",
    NameOID.LOCALITY_NAME.dotted_string: "locality",
    NameOID.STATE_OR_PROVINCE_NAME.dotted_string: "province",
    NameOID.STREET_ADDRESS.dotted_string: "streetAddress",
    NameOID.POSTAL_CODE.dotted_string: "postalCode",
    NameOID.SERIAL_NUMBER.dotted_string: "serialNumber",
}

# Kubernetes usage names (pkg/controller/certificates/authority/policies.go). The IPsec and SGC
# OIDs are Go crypto/x509's; cryptography.x509.oid has no constants for them.
EKU_USAGE_NAMES = {
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE.dotted_string: "any",
    ExtendedKeyUsageOID.SERVER_AUTH.dotted_string: "server auth",
    ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string: "client auth",
    ExtendedKeyUsageOID.CODE_SIGNING.dotted_string: "code signing",
    ExtendedKeyUsageOID.EMAIL_PROTECTION.dotted_string: "email protection",
    ExtendedKeyUsageOID.TIME_STAMPING.dotted_string: "timestamping",
    ExtendedKeyUsageOID.OCSP_SIGNING.dotted_string: "ocsp signing",
    "1.3.6.1.5.5.7.3.5": "ipsec end system",
    "1.3.6.1.5.5.7.3.6": "ipsec tunnel",
    "1.3.6.1.5.5.7.3.7": "ipsec user",
    "1.3.6.1.4.1.311.10.3.3": "microsoft sgc",
    "2.16.840.1.113730.4.1": "netscape sgc",
}

KEY_USAGE_BITS = (
    ("digital_signature", "digital signature"),
    ("content_commitment", "content commitment"),
    ("key_encipherment", "key encipherment"),
    ("data_encipherment", "data encipherment"),
    ("key_agreement", "key agreement"),
    ("key_cert_sign", "cert sign"),
    ("crl_sign", "crl sign"),
)

_S = SignatureAlgorithmOID
SIGNATURE_NAMES = {
    _S.RSA_WITH_MD5: "md5WithRSAEncryption",
    _S.RSA_WITH_SHA1: "sha1WithRSAEncryption",
    _S._RSA_WITH_SHA1: "sha1WithRSA",
    _S.RSA_WITH_SHA224: "sha224WithRSAEncryption",
    _S.RSA_WITH_SHA256: "sha256WithRSAEncryption",
    _S.RSA_WITH_SHA384: "sha384WithRSAEncryption",
    _S.RSA_WITH_SHA512: "sha512WithRSAEncryption",
    _S.RSA_WITH_SHA3_224: "id-rsassa-pkcs1-v1_5-with-sha3-224",
    _S.RSA_WITH_SHA3_256: "id-rsassa-pkcs1-v1_5-with-sha3-256",
    _S.RSA_WITH_SHA3_384: "id-rsassa-pkcs1-v1_5-with-sha3-384",
    _S.RSA_WITH_SHA3_512: "id-rsassa-pkcs1-v1_5-with-sha3-512",
    _S.RSASSA_PSS: "rsassaPss",
    _S.ECDSA_WITH_SHA1: "ecdsa-with-SHA1",
    _S.ECDSA_WITH_SHA224: "ecdsa-with-SHA224",
    _S.ECDSA_WITH_SHA256: "ecdsa-with-SHA256",
    _S.ECDSA_WITH_SHA384: "ecdsa-with-SHA384",
    _S.ECDSA_WITH_SHA512: "ecdsa-with-SHA512",
    _S.ECDSA_WITH_SHA3_224: "id-ecdsa-with-sha3-224",
    _S.ECDSA_WITH_SHA3_256: "id-ecdsa-with-sha3-256",
    _S.ECDSA_WITH_SHA3_384: "id-ecdsa-with-sha3-384",
    _S.ECDSA_WITH_SHA3_512: "id-ecdsa-with-sha3-512",
    _S.DSA_WITH_SHA1: "dsaWithSHA1",
    _S.DSA_WITH_SHA224: "dsa_with_SHA224",
    _S.DSA_WITH_SHA256: "dsa_with_SHA256",
    _S.DSA_WITH_SHA384: "dsa_with_SHA384",
    _S.DSA_WITH_SHA512: "dsa_with_SHA512",
    _S.ED25519: "ED25519",
    _S.ED448: "ED448",
}
# cryptography's is_signature_valid refuses these hashes; Go's CSR CheckSignature accepts
# SHA-1, so we verify them ourselves and leave refusing them to the signature-algorithm check.
LEGACY_SIGNATURES = {
    _S.RSA_WITH_MD5: rsa.RSAPublicKey,
    _S.RSA_WITH_SHA1: rsa.RSAPublicKey,
    _S._RSA_WITH_SHA1: rsa.RSAPublicKey,
    _S.ECDSA_WITH_SHA1: ec.EllipticCurvePublicKey,
    _S.DSA_WITH_SHA1: dsa.DSAPublicKey,
}
# PKCS#9 extensionRequest (RFC 2985 §5.4.2) and Microsoft's msExtReq, which OpenSSL and
# cryptography also read extensions from; cryptography.x509.oid defines neither.
EXTENSION_REQUEST_OID = "1.2.840.113549.1.9.14"
MS_EXTENSION_REQUEST_OID = "1.3.6.1.4.1.311.2.1.14"
CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
EXTENSION_NAMES = {
    value.dotted_string: "".join(
        word.capitalize() if i else word.lower() for i, word in enumerate(attr.split("_"))
    )
    for attr, value in vars(ExtensionOID).items()
    if isinstance(value, x509.ObjectIdentifier)
}


# What a policy may list in constraints.signatureAlgorithms, and the default when it lists none
# (docs/policy-reference.md §3.6): RSA PKCS#1 v1.5 or PSS, ECDSA with SHA-256/384/512, Ed25519,
# Ed448.
ACCEPTABLE_SIGNATURE_ALGORITHMS = frozenset(
    {
        "sha256WithRSAEncryption",
        "sha384WithRSAEncryption",
        "sha512WithRSAEncryption",
        "rsassaPss",
        "ecdsa-with-SHA256",
        "ecdsa-with-SHA384",
        "ecdsa-with-SHA512",
        "ED25519",
        "ED448",
    }
)

# pkg/controller/certificates/authority/policies.go: both spellings give the same bit or OID.
USAGE_SYNONYMS = {"signing": "digital signature", "s/mime": "email protection"}
