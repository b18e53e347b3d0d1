"""parse_csr and the always-on structural checks: every CSRError code and every structure code."""

from __future__ import annotations

import dataclasses
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, x25519
from cryptography.x509.oid import AttributeOID, ExtendedKeyUsageOID, ExtensionOID, NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.builders import (
    EXTENSION_REQUEST_OID,
    build_csr,
    csr_to_der,
    extension_of,
    extension_request,
    oid,
    openssl_csr,
    private_key,
    raw_attribute,
    raw_csr,
    raw_extension,
    raw_name,
    seq,
    set_of,
    sign_info,
    spki_of,
    to_pem,
    utf8_name,
)
from webhook.checks import structure
from webhook.errors import CSRError
from webhook.response import MAX_CAUSE_TEXT
from webhook.x509 import der
from webhook.x509.csr import MS_EXTENSION_REQUEST_OID, ParsedCSR, parse_csr
from webhook.x509.oids import EKU_USAGE_NAMES

KU_DIGITAL_SIGNATURE = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
SAN = ExtensionOID.SUBJECT_ALTERNATIVE_NAME


def codes(csr: ParsedCSR) -> list[str]:
    return [v.code for v in structure.violations(csr)]


def parse_raw(der_bytes: bytes) -> ParsedCSR:
    return parse_csr(to_pem(der_bytes))


def fatal(request: bytes) -> str:
    with pytest.raises(CSRError) as caught:
        parse_csr(request)
    assert caught.value.violation.field == "spec.request"
    return caught.value.code


def general_names(*names: bytes) -> bytes:
    return raw_extension(SAN, seq(*names))


# ---- CSRError ----------------------------------------------------------------------------------


def test_size_is_checked_before_parsing() -> None:
    valid = build_csr(common_name="a")
    assert fatal(valid + b" " * (64 * 1024 + 1 - len(valid))) == "csr.too_large"
    assert parse_csr(valid + b" " * (64 * 1024 - len(valid))).subject_values("commonName") == ("a",)


@pytest.mark.parametrize(
    "request_pem", [b"", b"invalid data", to_pem(b"\x30\x00").replace(b"MAA", b"?!")]
)
def test_rejects_request_without_pem_block(request_pem: bytes) -> None:  # vectors 1, 2
    assert fatal(request_pem) == "csr.pem_missing"


def test_rejects_two_pem_blocks() -> None:
    one = build_csr(common_name="a")
    assert fatal(one + one) == "csr.pem_multiple"
    assert fatal(one + to_pem(b"\x30\x00", "CERTIFICATE")) == "csr.pem_multiple"


def test_allows_text_around_the_block_like_go() -> None:
    request = b"Leading text\n" + build_csr(common_name="a") + b"Trailing text\n"
    assert parse_csr(request).subject_values("commonName") == ("a",)


@pytest.mark.parametrize("label", ["NEW CERTIFICATE REQUEST", "CERTIFICATE", "certificate request"])
def test_rejects_other_block_types(label: str) -> None:
    assert fatal(to_pem(csr_to_der(build_csr(common_name="a")), label)) == "csr.pem_type"


def test_rejects_pem_headers() -> None:
    pem = build_csr(common_name="a").replace(b"-----\n", b"-----\nProc-Type: 4,ENCRYPTED\n", 1)
    assert fatal(pem) == "csr.pem_headers"


@pytest.mark.parametrize(
    "der_bytes",
    [
        b"",
        b"\x30\x03\x02\x01\x00",
        csr_to_der(build_csr(common_name="a")) + b"\x00",
        sign_info(
            seq(der.encode_tlv(der.INTEGER, b"\x01"), seq(), spki_of("ecdsa-p256"), b"\xa0\x00")
        ),
        sign_info(seq(der.encode_tlv(der.INTEGER, b"\x00"), seq(), spki_of("ecdsa-p256"))),
    ],
    ids=["empty", "not-a-csr", "trailing-bytes", "version-2", "no-attributes"],
)
def test_rejects_der_that_does_not_parse(der_bytes: bytes) -> None:
    assert fatal(to_pem(der_bytes)) == "csr.der_invalid"


def _info(spki: bytes) -> bytes:
    return seq(
        der.encode_tlv(der.INTEGER, b"\x00"),
        utf8_name((NameOID.COMMON_NAME, "a")),
        spki,
        b"\xa0\x00",
    )


def test_rejects_unknown_public_key_algorithm() -> None:
    spki = seq(seq(oid("1.2.3.4")), der.encode_tlv(der.BIT_STRING, b"\x00abc"))
    request = seq(_info(spki), seq(oid("1.3.101.112")), der.encode_tlv(der.BIT_STRING, b"\x00"))
    assert fatal(to_pem(request)) == "csr.public_key_unsupported"


def test_rejects_unknown_signature_algorithm() -> None:
    info = _info(spki_of("ecdsa-p256"))
    key = private_key("ecdsa-p256")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    signature = key.sign(info, ec.ECDSA(hashes.SHA256()))
    request = seq(info, seq(oid("1.2.3.4")), der.encode_tlv(der.BIT_STRING, b"\x00" + signature))
    assert fatal(to_pem(request)) == "csr.signature_unsupported"


def test_rejects_signature_that_does_not_verify() -> None:
    valid = csr_to_der(build_csr(common_name="a"))
    tampered = valid.replace(b"\x0c\x01a", b"\x0c\x01b")
    assert fatal(to_pem(tampered)) == "csr.signature_invalid"


def test_rejects_key_that_cannot_sign() -> None:
    spki = (
        x25519.X25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    request = seq(_info(spki), seq(oid("1.3.101.112")), der.encode_tlv(der.BIT_STRING, bytes(65)))
    assert fatal(to_pem(request)) == "csr.signature_invalid"


def test_rejects_signature_algorithm_that_does_not_fit_the_key() -> None:
    valid = csr_to_der(build_csr(common_name="a"))
    info = der.children(der.read_single(valid))[0].raw
    signature = der.children(der.read_single(valid))[2].raw
    rsa_alg = seq(oid("1.2.840.113549.1.1.11"), der.encode_tlv(0x05, b""))
    assert fatal(to_pem(seq(info, rsa_alg, signature))) == "csr.signature_invalid"


# ---- what a CSR says ---------------------------------------------------------------------------


def test_reads_subject_sans_and_usage_extensions() -> None:
    csr = parse_csr(
        build_csr(
            common_name="system:node:a",
            organization=["system:nodes", "other"],
            dns_names=["a.example.com"],
            ip_addresses=["10.0.0.1", "fd00::1"],
            uris=["spiffe://cluster/ns/x"],
            emails=["a@example.com"],
            extensions=[
                (x509.KeyUsage(True, False, True, False, False, False, False, False, False), True),
                (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
                (x509.BasicConstraints(ca=False, path_length=None), True),
            ],
        )
    )
    assert [(a.name, a.value, a.rdn_index) for a in csr.subject] == [
        ("commonName", "system:node:a", 0),
        ("organization", "system:nodes", 1),
        ("organization", "other", 2),
    ]
    assert csr.subject[0].oid == NameOID.COMMON_NAME.dotted_string
    assert csr.dns_names == ("a.example.com",)
    assert csr.ip_addresses == ("10.0.0.1", "fd00::1")
    assert csr.uris == ("spiffe://cluster/ns/x",)
    assert csr.email_addresses == ("a@example.com",)
    assert csr.other_names == ()
    assert [(e.oid, e.critical, e.name) for e in csr.extensions] == [
        (SAN.dotted_string, False, "subjectAlternativeName"),
        (ExtensionOID.KEY_USAGE.dotted_string, True, "keyUsage"),
        (ExtensionOID.EXTENDED_KEY_USAGE.dotted_string, False, "extendedKeyUsage"),
        (ExtensionOID.BASIC_CONSTRAINTS.dotted_string, True, "basicConstraints"),
    ]
    assert csr.key_usage == frozenset({"digital signature", "key encipherment"})
    assert csr.extended_key_usage == (ExtendedKeyUsageOID.SERVER_AUTH.dotted_string,)
    assert EKU_USAGE_NAMES[csr.extended_key_usage[0]] == "server auth"
    assert csr.basic_constraints_ca is False
    assert csr.attribute_oids == ()
    assert csr.problems == ()
    assert codes(csr) == []


def test_leaves_absent_extensions_as_none() -> None:
    csr = parse_csr(build_csr(common_name="a"))
    assert (csr.key_usage, csr.extended_key_usage, csr.basic_constraints_ca) == (None, None, None)


def test_maps_every_key_usage_bit_to_its_kubernetes_name() -> None:
    usage = x509.KeyUsage(True, True, True, True, True, True, True, True, True)
    csr = parse_csr(build_csr(extensions=[(usage, True)]))
    assert csr.key_usage == frozenset(
        {
            "digital signature",
            "content commitment",
            "key encipherment",
            "data encipherment",
            "key agreement",
            "cert sign",
            "crl sign",
            "encipher only",
            "decipher only",
        }
    )


def test_keeps_der_and_exports_the_public_key() -> None:
    pem = build_csr(key="rsa-2048")
    csr = parse_csr(pem)
    assert csr.der == csr_to_der(pem)
    assert (
        x509.load_der_x509_csr(csr.der)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        == csr.public_key_der
    )
    assert "der=" not in repr(csr)


@pytest.mark.parametrize(
    ("kind", "key", "signature"),
    [
        ("rsa-2048", ("rsa", 2048, 65537, None), ("sha256WithRSAEncryption", "sha256")),
        ("ecdsa-p256", ("ecdsa", 256, None, "P-256"), ("ecdsa-with-SHA256", "sha256")),
        ("ecdsa-p384", ("ecdsa", 384, None, "P-384"), ("ecdsa-with-SHA256", "sha256")),
        ("ecdsa-p521", ("ecdsa", 521, None, "P-521"), ("ecdsa-with-SHA256", "sha256")),
        ("ed25519", ("ed25519", None, None, None), ("ED25519", None)),
        ("ed448", ("ed448", None, None, None), ("ED448", None)),
        ("dsa-2048", ("dsa", 2048, None, None), ("dsa_with_SHA256", "sha256")),
    ],
)
def test_describes_key_and_signature(
    kind: str, key: tuple[object, ...], signature: tuple[str, str | None]
) -> None:
    csr = parse_csr(build_csr(key=kind, common_name="a"))
    assert (csr.key.type, csr.key.bits, csr.key.exponent, csr.key.curve) == key
    assert (csr.signature_algorithm, csr.signature_hash) == signature


def test_names_ecdsa_sha384_signature() -> None:
    csr = parse_csr(build_csr(key="ecdsa-p384", hash_alg=hashes.SHA384()))
    assert (csr.signature_algorithm, csr.signature_hash) == ("ecdsa-with-SHA384", "sha384")


def test_names_pss_signature_with_its_hash() -> None:
    key = private_key("rsa-2048")
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    pss = padding.PSS(padding.MGF1(hashes.SHA384()), padding.PSS.DIGEST_LENGTH)
    pem = builder.sign(key, hashes.SHA384(), rsa_padding=pss).public_bytes(
        serialization.Encoding.PEM
    )
    csr = parse_csr(pem)
    assert (csr.signature_algorithm, csr.signature_hash) == ("rsassaPss", "sha384")


@pytest.mark.parametrize(
    ("key", "hash_name", "algorithm"),
    [
        ("rsa-2048", "sha1", "sha1WithRSAEncryption"),
        ("ecdsa-p256", "sha1", "ecdsa-with-SHA1"),
        ("dsa-2048", "sha1", "dsaWithSHA1"),
        ("rsa-2048", "md5", "md5WithRSAEncryption"),
    ],
)
def test_verifies_legacy_signatures_leaving_refusal_to_policy(
    key: str, hash_name: str, algorithm: str
) -> None:
    csr = parse_raw(raw_csr(key=key, hash_name=hash_name))
    assert (csr.signature_algorithm, csr.signature_hash) == (algorithm, hash_name)
    assert codes(csr) == []


def test_rejects_legacy_signature_that_does_not_verify() -> None:
    valid = raw_csr(key="rsa-2048", hash_name="sha1")
    tampered = valid.replace(b"\x0c\x03raw", b"\x0c\x03rax")
    assert fatal(to_pem(tampered)) == "csr.signature_invalid"


def test_reads_multi_valued_rdns_in_order() -> None:
    subject = x509.Name(
        [
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, "cn"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "org"),
                ]
            ),
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "ou")]
            ),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.GIVEN_NAME, "given")]),
        ]
    )
    csr = parse_csr(build_csr(subject=subject))
    assert [(a.name, a.value, a.rdn_index) for a in csr.subject] == [
        ("commonName", "cn", 0),
        ("organization", "org", 0),
        ("organizationalUnit", "ou", 1),
        (None, "given", 2),
    ]
    assert csr.subject[3].oid == NameOID.GIVEN_NAME.dotted_string


@pytest.mark.parametrize(
    ("tag", "content", "value"),
    [
        (der.PRINTABLE_STRING, b"p", "p"),
        (der.IA5_STRING, b"i", "i"),
        (der.NUMERIC_STRING, b"12 3", "12 3"),
        (der.BMP_STRING, "ü".encode("utf-16-be"), "ü"),
    ],
)
def test_decodes_every_string_type_go_reads(tag: int, content: bytes, value: str) -> None:
    csr = parse_raw(raw_csr(subject=raw_name([(NameOID.ORGANIZATION_NAME, tag, content)])))
    assert csr.subject_values("organization") == (value,)
    assert codes(csr) == []


@pytest.mark.parametrize(
    ("tag", "content", "type_name"),
    [
        (der.VISIBLE_STRING, b"system:node:n1", "VisibleString"),
        (der.UNIVERSAL_STRING, "ü".encode("utf-32-be"), "UniversalString"),
        (der.T61_STRING, b"caf\xe9", "TeletexString"),
        (0x19, b"g", "GraphicString"),
        (0x1B, b"g", "GeneralString"),
        (0x15, b"v", "VideotexString"),
    ],
)
def test_denies_string_types_go_does_not_read_as_we_do(
    tag: int, content: bytes, type_name: str
) -> None:
    subject = raw_name(
        [(NameOID.COMMON_NAME, tag, content)],
        [(NameOID.ORGANIZATION_NAME, der.UTF8_STRING, b"o")],
    )
    csr = parse_raw(raw_csr(subject=subject))
    # Left out, as Go leaves it out: a `required` commonName is then missing here too.
    assert csr.subject_values("commonName") == ()
    assert csr.subject_values("organization") == ("o",)
    [problem] = csr.problems
    assert (problem.code, problem.field) == (
        "csr.subject_string_type",
        "spec.request.subject.commonName",
    )
    assert type_name in problem.message
    assert "use UTF8String or PrintableString" in problem.message
    assert codes(csr) == ["csr.subject_string_type"]


@pytest.mark.parametrize(
    ("tag", "content", "says"),
    [
        (der.NUMERIC_STRING, b"12a", "byte 0x61 is outside the NumericString alphabet"),
        (der.IA5_STRING, b"a\x80", "byte 0x80 is outside the IA5String alphabet"),
        (der.BMP_STRING, b"\x00a\x00\x00", "NUL terminator"),
        (der.BMP_STRING, b"\xd8\x3d\xde\x00", "U+D83D is not a BMP character"),
        (der.BMP_STRING, b"\xff\xfe", "U+FFFE is not a BMP character"),
        (der.BMP_STRING, b"\xfd\xd0", "U+FDD0 is not a BMP character"),
    ],
)
def test_reads_string_values_with_gos_rules(tag: int, content: bytes, says: str) -> None:
    csr = parse_raw(raw_csr(subject=raw_name([(NameOID.COMMON_NAME, tag, content)])))
    assert csr.subject_values("commonName") == ()
    [problem] = csr.problems
    assert problem.code == "csr.subject_value_undecodable"
    assert says in problem.message


def test_reads_subjects_cryptography_would_warn_about_or_refuse() -> None:
    subject = raw_name(
        [(NameOID.COMMON_NAME, der.UTF8_STRING, b"a" * 100)],
        [(NameOID.COUNTRY_NAME, der.PRINTABLE_STRING, b"USA")],
        [
            (NameOID.ORGANIZATION_NAME, der.UTF8_STRING, b"o"),
            (NameOID.ORGANIZATION_NAME, der.UTF8_STRING, b"o"),
        ],
    )
    csr = parse_raw(raw_csr(subject=subject))
    assert csr.subject_values("commonName") == ("a" * 100,)
    assert csr.subject_values("country") == ("USA",)
    assert csr.subject_values("organization") == ("o", "o")


def test_records_non_string_subject_value_as_problem() -> None:
    subject = raw_name(
        [(NameOID.COMMON_NAME, der.INTEGER, b"\x01")],
        [(NameOID.ORGANIZATION_NAME, der.UTF8_STRING, b"o")],
    )
    csr = parse_raw(raw_csr(subject=subject))
    assert csr.subject_values("organization") == ("o",)
    assert csr.subject_values("commonName") == ()
    assert [(v.code, v.field) for v in csr.problems] == [
        ("csr.subject_value_not_string", "spec.request.subject.commonName")
    ]
    assert codes(csr) == ["csr.subject_value_not_string"]


def test_records_undecodable_subject_value_as_problem() -> None:
    csr = parse_raw(raw_csr(subject=raw_name([(NameOID.COMMON_NAME, der.UTF8_STRING, b"a\xffb")])))
    assert codes(csr) == ["csr.subject_value_undecodable"]


def test_malformed_extension_is_a_violation_naming_its_oid() -> None:
    bad_usage = raw_extension(ExtensionOID.KEY_USAGE, b"\x05\x00")
    good_san = extension_of(x509.SubjectAlternativeName([x509.DNSName("ok.example")]))
    csr = parse_raw(raw_csr(extensions=[good_san, bad_usage]))
    (problem,) = csr.problems
    assert problem.code == "csr.extension_unparseable"
    assert problem.field == "spec.request.extensions[1]"
    assert ExtensionOID.KEY_USAGE.dotted_string in problem.message
    assert csr.dns_names == ("ok.example",)
    assert csr.key_usage is None
    assert [e.oid for e in csr.extensions] == [
        SAN.dotted_string,
        ExtensionOID.KEY_USAGE.dotted_string,
    ]


@pytest.mark.parametrize(
    "extension",
    [
        general_names(der.encode_tlv(0x82, b"\xff.example")),
        general_names(der.encode_tlv(0x87, b"\x01\x02\x03")),
        seq(oid(ExtensionOID.KEY_USAGE)),
        seq(
            oid(ExtensionOID.BASIC_CONSTRAINTS),
            der.encode_tlv(der.BOOLEAN, b"\x00"),
            der.encode_tlv(der.OCTET_STRING, seq()),
        ),
        raw_extension(ExtensionOID.KEY_USAGE, der.encode_tlv(der.BIT_STRING, b"\x07\x01")),
    ],
    ids=[
        "non-ascii-dns",
        "three-byte-ip",
        "no-value",
        "explicit-false-critical",
        "encipher-only-without-agreement",
    ],
)
def test_extensions_cryptography_fails_on_lazily_are_violations(extension: bytes) -> None:
    csr = parse_raw(raw_csr(extensions=[extension]))
    assert codes(csr) == ["csr.extension_unparseable"]


def test_reports_duplicate_extensions_by_oid() -> None:
    usage = extension_of(KU_DIGITAL_SIGNATURE)
    csr = parse_raw(raw_csr(extensions=[usage, usage]))
    assert len(csr.extensions) == 2
    (violation,) = structure.violations(csr)
    assert violation.code == "csr.extension_duplicate"
    assert violation.field == "spec.request.extensions[1]"
    assert ExtensionOID.KEY_USAGE.dotted_string in violation.message


def test_reports_second_san_extension_and_reads_both() -> None:
    first = extension_of(x509.SubjectAlternativeName([x509.DNSName("a.example")]))
    second = extension_of(x509.SubjectAlternativeName([x509.DNSName("b.example")]))
    csr = parse_raw(raw_csr(extensions=[first, second]))
    san = ExtensionOID.SUBJECT_ALTERNATIVE_NAME.dotted_string
    assert [e.oid for e in csr.extensions] == [san, san]
    assert csr.dns_names == ("a.example", "b.example")
    assert codes(csr) == ["csr.san_multiple"]


def test_reads_extensions_from_every_extension_request() -> None:
    usage = extension_of(KU_DIGITAL_SIGNATURE)
    eku = extension_of(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]))
    twice = parse_raw(raw_csr(extensions=[usage], attributes=[extension_request(eku)]))
    assert twice.extended_key_usage == (ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string,)
    assert codes(twice) == ["csr.attribute_invalid"]
    two_values = raw_attribute(EXTENSION_REQUEST_OID, seq(usage), seq(usage))
    csr = parse_raw(raw_csr(extensions=None, attributes=[two_values]))
    assert codes(csr) == ["csr.attribute_invalid", "csr.extension_duplicate"]


@pytest.mark.parametrize(
    ("request_oid", "code"),
    [(EXTENSION_REQUEST_OID, "csr.attribute_invalid"), (MS_EXTENSION_REQUEST_OID, None)],
)
def test_an_extension_request_without_a_value_is_read_not_a_crash(
    request_oid: str, code: str | None
) -> None:
    # cryptography 43 panics (PanicException, not an Exception) when asked for the extensions
    # of such a CSR; we read them one by one instead. An empty msExtReq is no problem of its
    # own (the structure check refuses the attribute).
    usage = extension_of(KU_DIGITAL_SIGNATURE)
    alone = parse_raw(raw_csr(extensions=None, attributes=[raw_attribute(request_oid)]))
    assert alone.key_usage is None
    assert [p.code for p in alone.problems] == ([code] if code else [])
    both = [raw_attribute(request_oid), extension_request(usage)]
    second = parse_raw(raw_csr(extensions=None, attributes=both))
    assert second.key_usage == frozenset({"digital signature"})
    assert [p.code for p in second.problems] == ([code, code] if code else [])


def test_malformed_extension_request_is_a_problem() -> None:
    broken = raw_attribute(EXTENSION_REQUEST_OID, der.encode_tlv(der.OCTET_STRING, b"x"))
    assert codes(parse_raw(raw_csr(extensions=None, attributes=[broken]))) == [
        "csr.attribute_invalid"
    ]


def test_reports_other_attributes() -> None:
    password = raw_attribute(
        AttributeOID.CHALLENGE_PASSWORD, der.encode_tlv(der.PRINTABLE_STRING, b"pw")
    )
    csr = parse_raw(raw_csr(extensions=[], attributes=[password]))
    assert csr.attribute_oids == (AttributeOID.CHALLENGE_PASSWORD.dotted_string,)
    (violation,) = structure.violations(csr)
    assert violation.code == "csr.attribute_not_allowed"
    assert "challengePassword" in violation.message


def test_cryptography_made_challenge_password_is_reported() -> None:
    csr = parse_csr(
        build_csr(common_name="a", attributes=[(AttributeOID.CHALLENGE_PASSWORD, b"pw")])
    )
    assert codes(csr) == ["csr.attribute_not_allowed"]


def test_reads_extensions_from_ms_extension_request_and_reports_it() -> None:
    san = extension_of(x509.SubjectAlternativeName([x509.DNSName("hidden.example")]))
    ms = raw_attribute("1.3.6.1.4.1.311.2.1.14", seq(san))
    csr = parse_raw(raw_csr(extensions=None, attributes=[ms]))
    assert csr.dns_names == ("hidden.example",)
    assert codes(csr) == ["csr.attribute_not_allowed"]


def test_reports_san_kinds_other_than_dns_ip_uri_email() -> None:
    others = [
        x509.OtherName(
            x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3"), der.encode_tlv(der.UTF8_STRING, b"u@x")
        ),
        x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "d")])),
        x509.RegisteredID(x509.ObjectIdentifier("1.2.3.4")),
    ]
    csr = parse_csr(build_csr(dns_names=["a.example"], other_sans=others))
    assert csr.other_names == (
        "otherName:1.3.6.1.4.1.311.20.2.3",
        "directoryName:CN=d",
        "registeredID:1.2.3.4",
    )
    assert codes(csr) == ["csr.san_kind_not_allowed"] * 3
    assert next(structure.violations(csr)).field == "spec.request.otherNames[0]"


def test_reads_rest_of_san_around_kinds_cryptography_cannot_represent() -> None:
    edi = der.encode_tlv(0xA5, seq())
    csr = parse_raw(raw_csr(extensions=[general_names(der.encode_tlv(0x82, b"a.example"), edi)]))
    assert csr.dns_names == ("a.example",)
    assert csr.other_names == ("ediPartyName",)
    assert codes(csr) == ["csr.san_kind_not_allowed"]


def directory_name_with_untagged_value() -> bytes:
    """directoryName [4] holding CN whose value has tag 0, a tag no string type has:
    cryptography 44 to 49 raise KeyError (not ValueError) from .extensions on it."""
    value = der.encode_tlv(0x00, b"d")
    name = seq(set_of(seq(oid(NameOID.COMMON_NAME), value)))
    return der.encode_tlv(0xA4, name)


def test_directory_name_with_unknown_value_tag_is_a_violation_not_a_crash() -> None:
    sans = general_names(der.encode_tlv(0x82, b"a.example"), directory_name_with_untagged_value())
    csr = parse_raw(raw_csr(extensions=[sans]))
    assert [(v.code, v.field) for v in structure.violations(csr)] == [
        ("csr.extension_unparseable", "spec.request.extensions[0]")
    ]


def test_openssl_made_csr_parses_like_cryptography_made_one(tmp_path: Path) -> None:
    made_by_openssl = parse_csr(
        openssl_csr(
            tmp_path,
            key="ecdsa-p256",
            subj="/CN=system:node:a/O=system:nodes",
            addext=[
                "subjectAltName=DNS:a.example,IP:10.0.0.1",
                "keyUsage=critical,digitalSignature",
            ],
        )
    )
    made_by_cryptography = parse_csr(
        build_csr(
            common_name="system:node:a",
            organization=["system:nodes"],
            dns_names=["a.example"],
            ip_addresses=["10.0.0.1"],
            extensions=[(KU_DIGITAL_SIGNATURE, True)],
        )
    )
    assert list(tmp_path.iterdir()) == [tmp_path / "openssl.cnf"]
    assert dataclasses.replace(made_by_openssl, der=b"") == dataclasses.replace(
        made_by_cryptography, der=b""
    )


# ---- structure ---------------------------------------------------------------------------------


def test_reports_control_characters_in_subject_and_sans() -> None:
    subject = raw_name(
        [(NameOID.COMMON_NAME, der.UTF8_STRING, b"a\x00b")],
        [(NameOID.ORGANIZATION_NAME, der.UTF8_STRING, "x\x85y".encode())],
        [(NameOID.ORGANIZATIONAL_UNIT_NAME, der.UTF8_STRING, b"del\x7f")],
    )
    sans = general_names(
        der.encode_tlv(0x86, b"https://a/\x01"),
        der.encode_tlv(0x81, b"a\n@b.example"),
        der.encode_tlv(0x82, b"a\tb.example"),
    )
    violations = list(structure.violations(parse_raw(raw_csr(subject=subject, extensions=[sans]))))
    assert [(v.code, v.field) for v in violations] == [
        ("csr.control_character", "spec.request.subject.commonName"),
        ("csr.control_character", "spec.request.subject.organization"),
        ("csr.control_character", "spec.request.subject.organizationalUnit"),
        ("csr.control_character", "spec.request.dnsNames[0]"),
        ("csr.control_character", "spec.request.uris[0]"),
        ("csr.control_character", "spec.request.emailAddresses[0]"),
    ]
    assert "'a\\x00b'" in violations[0].message
    assert all("\n" not in v.message and "\x00" not in v.message for v in violations)


def test_reports_more_than_one_common_name() -> None:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "first"),
            x509.NameAttribute(NameOID.COMMON_NAME, "second"),
        ]
    )
    (violation,) = structure.violations(parse_csr(build_csr(subject=subject)))
    assert (violation.code, violation.field) == (
        "csr.common_name_multiple",
        "spec.request.subject.commonName",
    )
    assert "'first'" in violation.message and "'second'" in violation.message


@pytest.mark.parametrize(
    "name",
    [
        "a.example.com",
        "A-1.Example.COM",
        "*.example.com",
        "xn--bcher-kva.example",
        "XN--BCHER-KVA.example",
        "1.2.3.4.nip.io",
        "123",
        "a" * 63 + ".example",
        ".".join(["a" * 63] * 3) + "." + "a" * 61,
    ],
)
def test_accepts_well_formed_dns_names(name: str) -> None:
    assert codes(parse_csr(build_csr(dns_names=[name]))) == []


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("a..example", "csr.dns_syntax"),
        ("a.example.", "csr.dns_syntax"),
        ("", "csr.dns_syntax"),
        ("-a.example", "csr.dns_syntax"),
        ("a-.example", "csr.dns_syntax"),
        ("a_b.example", "csr.dns_syntax"),
        ("a b.example", "csr.dns_syntax"),
        ("a" * 64 + ".example", "csr.dns_syntax"),
        (".".join(["a" * 63] * 4), "csr.dns_syntax"),
        ("1.2.3.4", "csr.dns_ip_literal"),
        ("010.0.0.1", "csr.dns_ip_literal"),
        ("::1", "csr.dns_ip_literal"),
        ("xn--abc-d.example", "csr.dns_punycode"),
        ("xn--a.example", "csr.dns_punycode"),
        ("XN--ABC-D.example", "csr.dns_punycode"),
        ("a*.example.com", "csr.dns_wildcard"),
        ("*.*.example.com", "csr.dns_wildcard"),
        ("a.*.example.com", "csr.dns_wildcard"),
        ("*", "csr.dns_wildcard"),
    ],
)
def test_reports_malformed_dns_names(name: str, code: str) -> None:
    violations = list(structure.violations(parse_csr(build_csr(dns_names=["ok.example", name]))))
    assert [v.code for v in violations] == [code]
    assert violations[0].field == "spec.request.dnsNames[1]"
    assert repr(name)[:20] in violations[0].message


def test_reports_every_syntax_problem_of_a_name_in_one_violation() -> None:
    (violation,) = structure.violations(parse_csr(build_csr(dns_names=["-a..b_c."])))
    assert violation.code == "csr.dns_syntax"
    for part in ("trailing dot", "empty label", "'-a'", "'b_c'"):
        assert part in violation.message


def test_denies_unicode_dns_name_with_a_label_hint() -> None:
    csr = dataclasses.replace(parse_csr(build_csr(common_name="a")), dns_names=("bücher.example",))
    (violation,) = structure.violations(csr)
    assert violation.code == "csr.dns_unicode"
    assert "'xn--bcher-kva.example'" in violation.message


def test_collects_every_violation_at_once() -> None:
    usage = extension_of(KU_DIGITAL_SIGNATURE)
    sans = general_names(
        der.encode_tlv(0x82, b"a..b"),
        der.encode_tlv(0x82, b"1.2.3.4"),
        der.encode_tlv(0x88, oid("1.2.3")[2:]),
    )
    subject = raw_name(
        [(NameOID.COMMON_NAME, der.UTF8_STRING, b"x\x00")],
        [(NameOID.COMMON_NAME, der.UTF8_STRING, b"y")],
    )
    password = raw_attribute(
        AttributeOID.CHALLENGE_PASSWORD, der.encode_tlv(der.UTF8_STRING, b"pw")
    )
    bad = raw_extension(ExtensionOID.EXTENDED_KEY_USAGE, b"\x05\x00")
    csr = parse_raw(
        raw_csr(subject=subject, extensions=[usage, sans, usage, bad], attributes=[password])
    )
    assert sorted(codes(csr)) == sorted(
        [
            "csr.extension_unparseable",
            "csr.extension_duplicate",
            "csr.san_kind_not_allowed",
            "csr.attribute_not_allowed",
            "csr.control_character",
            "csr.common_name_multiple",
            "csr.dns_syntax",
            "csr.dns_ip_literal",
        ]
    )


def test_shows_values_whole_up_to_256_characters_and_cuts_longer_ones_with_their_length() -> None:
    names = ("b" * 256, "a" * 300, ".".join(f"x_{i}" for i in range(200)))
    csr = dataclasses.replace(parse_csr(build_csr(common_name="a")), dns_names=names)
    whole, cut, many = structure.violations(csr)
    assert whole.message.startswith(f"DNS name {'b' * 256!r}: ")
    assert cut.message.startswith(f"DNS name {'a' * 256!r}… (300 characters): ")
    # too long, and 200 distinct bad labels: four problems named, the rest counted, within a
    # cause's bound
    assert "; … 197 more; expected an LDH host name" in many.message
    assert len(many.message) <= MAX_CAUSE_TEXT


# ---- never raises ------------------------------------------------------------------------------

VALID_DER = csr_to_der(
    build_csr(
        common_name="system:node:a",
        organization=["system:nodes"],
        dns_names=["a.example"],
        ip_addresses=["10.0.0.1"],
        extensions=[
            (KU_DIGITAL_SIGNATURE, True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        ],
    )
)


def _parse_or_csr_error(request: bytes) -> None:
    try:
        csr = parse_csr(request)
    except CSRError as exc:
        violations = [exc.violation]
    else:
        violations = list(structure.violations(csr))
    assert all(v.code.startswith("csr.") for v in violations)


@settings(deadline=None, max_examples=200)
@given(st.binary(max_size=600))
def test_never_raises_but_csr_error_on_random_bytes(data: bytes) -> None:
    _parse_or_csr_error(data)
    _parse_or_csr_error(to_pem(data))


@settings(deadline=None, max_examples=200)
@given(st.integers(0, len(VALID_DER) - 1), st.integers(0, 255))
def test_never_raises_but_csr_error_on_mutated_der(position: int, value: int) -> None:
    mutated = bytearray(VALID_DER)
    mutated[position] = value
    _parse_or_csr_error(to_pem(bytes(mutated)))


@settings(deadline=None, max_examples=200)
@given(st.integers(0, 200), st.integers(0, 255))
def test_never_raises_on_mutated_unsigned_extension_payloads(position: int, value: int) -> None:
    # Mutating the signed DER mostly stops at the signature; mutate an extension and re-sign so
    # the lazily parsed parts are reached.
    san = extension_of(
        x509.SubjectAlternativeName(
            [
                x509.DNSName("a.example"),
                x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
                x509.OtherName(
                    x509.ObjectIdentifier("1.2.3"), der.encode_tlv(der.UTF8_STRING, b"x")
                ),
                x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "d")])),
            ]
        )
    )
    extensions = (
        san + extension_of(KU_DIGITAL_SIGNATURE) + extension_of(x509.BasicConstraints(True, 1))
    )
    mutated = bytearray(extensions)
    mutated[position % len(mutated)] = value
    payload = set_of(seq(bytes(mutated)))
    attribute = seq(oid(EXTENSION_REQUEST_OID), payload)
    _parse_or_csr_error(to_pem(raw_csr(extensions=None, attributes=[attribute])))


@settings(deadline=None, max_examples=200)
@given(st.lists(st.text(max_size=80), max_size=4), st.lists(st.text(max_size=20), max_size=3))
def test_structure_never_raises_on_any_names(dns_names: list[str], common_names: list[str]) -> None:
    base = parse_csr(build_csr(common_name="a"))
    subject = tuple(
        dataclasses.replace(base.subject[0], value=value, rdn_index=i)
        for i, value in enumerate(common_names)
    )
    csr = dataclasses.replace(
        base, dns_names=tuple(dns_names), subject=subject, uris=tuple(common_names)
    )
    for violation in structure.violations(csr):
        assert "\n" not in violation.message


def test_refuses_a_malformed_block_beside_the_request() -> None:
    pem = build_csr(common_name="x")
    broken = b"-----BEGIN CERTIFICATE REQUEST-----\n%%%% not base64 %%%%\n-----END CERTIFICATE REQUEST-----\n"
    with pytest.raises(CSRError) as refused:
        parse_csr(broken + pem)
    assert refused.value.code == "csr.pem_multiple"
    assert "malformed PEM block" in refused.value.message


def test_rejects_rsa_key_without_null_parameters() -> None:
    # Go's x509.ParseCertificateRequest refuses it ("RSA key missing NULL parameters").
    _algorithm, bits = der.children(der.read_single(spki_of("rsa-2048")))
    spki = seq(seq(oid("1.2.840.113549.1.1.1")), bits.raw)
    subject = raw_name([(NameOID.COMMON_NAME, der.UTF8_STRING, b"no-null")])
    info = seq(der.encode_tlv(der.INTEGER, b"\x00"), subject, spki, b"\xa0\x00")
    with pytest.raises(CSRError) as caught:
        parse_csr(to_pem(sign_info(info, key="rsa-2048")))
    assert caught.value.code == "csr.public_key_unsupported"
    assert "RSA key parameters are absent; they must be NULL" in caught.value.message


def _pss_csr(
    hash_alg: hashes.SHA256 | hashes.SHA384 | hashes.SHA512, mgf: hashes.HashAlgorithm, salt: int
) -> bytes:
    key = private_key("rsa-2048")
    assert isinstance(key, rsa.RSAPrivateKey)
    pss = padding.PSS(mgf=padding.MGF1(mgf), salt_length=salt)
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pss")])
    )
    return builder.sign(key, hash_alg, rsa_padding=pss).public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize(
    ("hash_alg", "salt"), [(hashes.SHA256(), 32), (hashes.SHA384(), 48), (hashes.SHA512(), 64)]
)
def test_reads_rsa_pss_as_go_verifies_it(
    hash_alg: hashes.SHA256 | hashes.SHA384 | hashes.SHA512, salt: int
) -> None:
    csr = parse_csr(_pss_csr(hash_alg, hash_alg, salt))
    assert (csr.signature_algorithm, csr.signature_hash) == ("rsassaPss", hash_alg.name)


@pytest.mark.parametrize(
    ("hash_alg", "mgf", "salt", "says"),
    [
        (hashes.SHA256(), hashes.SHA256(), 20, "hash SHA-256, MGF1 with SHA-256, salt 20"),
        (hashes.SHA256(), hashes.SHA512(), 32, "hash SHA-256, MGF1 with SHA-512, salt 32"),
        (hashes.SHA512(), hashes.SHA512(), 32, "hash SHA-512, MGF1 with SHA-512, salt 32"),
    ],
)
def test_rejects_rsa_pss_parameters_go_cannot_verify(
    hash_alg: hashes.SHA256 | hashes.SHA512, mgf: hashes.HashAlgorithm, salt: int, says: str
) -> None:
    # Go's x509 maps these to UnknownSignatureAlgorithm; CheckSignature then fails.
    with pytest.raises(CSRError) as caught:
        parse_csr(_pss_csr(hash_alg, mgf, salt))
    assert caught.value.code == "csr.signature_unsupported"
    assert f"RSASSA-PSS with {says}, trailer 1" in caught.value.message
