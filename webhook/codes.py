"""Every violation code the webhook emits, with what it means, in one table.

`csr-webhook test` refuses a suite that expects a code outside it and suggests the nearest one.
Pure data; tests/test_codes.py keeps it equal to the documented catalogue, to the union of the
codes the checks declare (`CODES`) and to the codes the test suite sees the webhook emit.
"""

from __future__ import annotations

import difflib
import functools

# Code -> what it means, in the order docs/policy-reference.md lists them (tests/test_codes.py
# keeps the two equal, word for word). Every check module declares the codes it can emit
# (`CODES`), each a subset of this table.
CATALOGUE: dict[str, str] = {
    "csr.encoding": "`spec.request` is not valid base64",
    "csr.too_large": "`spec.request` is over 64 KiB",
    "csr.pem_missing": "no well-formed `CERTIFICATE REQUEST` PEM block",
    "csr.pem_multiple": "more than one PEM block",
    "csr.pem_type": "the PEM block is not a `CERTIFICATE REQUEST`",
    "csr.pem_headers": "the PEM block carries headers",
    "csr.der_invalid": "the DER is not a CertificationRequest, or its subject is malformed",
    "csr.public_key_unsupported": (
        "the public key cannot be read (here or by Go: an RSA key without NULL parameters)"
    ),
    "csr.signature_unsupported": (
        "the signature cannot be verified (unknown algorithm, or RSASSA-PSS parameters Go does not "
        "verify)"
    ),
    "csr.signature_invalid": "the signature does not verify (no proof of possession)",
    "csr.subject_value_not_string": "a subject value is not an ASN.1 string type",
    "csr.subject_value_undecodable": "a subject value does not decode",
    "csr.subject_string_type": (
        "a subject value of a string type Go does not read as we do (VisibleString, "
        "UniversalString, TeletexString, ...)"
    ),
    "csr.attribute_invalid": (
        "a malformed attribute, or `extensionRequest` not exactly once with one value"
    ),
    "csr.attribute_not_allowed": (
        "an attribute other than `extensionRequest` (challengePassword, ...)"
    ),
    "csr.extension_unparseable": "an extension does not parse",
    "csr.extension_duplicate": "an extension appears twice",
    "csr.san_multiple": "more than one subjectAltName extension",
    "csr.san_kind_not_allowed": "a SAN that is not DNS, IP, URI or email",
    "csr.control_character": "a control character in a subject value or a SAN",
    "csr.common_name_multiple": "more than one commonName",
    "csr.dns_syntax": (
        "a DNS SAN that is not an LDH host name (length, empty label, trailing dot, characters)"
    ),
    "csr.dns_ip_literal": "a DNS SAN that is an IP address",
    "csr.dns_punycode": "an `xn--` label that is not valid punycode",
    "csr.dns_unicode": "a non-ASCII DNS SAN (use the A-label)",
    "csr.dns_wildcard": "`*` anywhere but as the whole left-most label",
    "csr.uri_syntax": (
        "a URI SAN Go's signer would refuse or issue rewritten (characters outside RFC 3986, a bad "
        "`%` escape, an IP-literal or empty host, an empty fragment)"
    ),
    "csr.email_unicode": "a non-ASCII email SAN, which Go refuses",
    "csr.san_required": "`requireAnySAN` is set and the CSR has no SAN",
    "subject.not_allowed": (
        "an attribute the rule does not list, or a value matching none of its patterns"
    ),
    "subject.required": "a `required` attribute is absent",
    "subject.too_many": (
        "more occurrences than `maxItems`, or more than 100 subject attributes in all"
    ),
    "subject.unknown_attribute": "an attribute OID outside the nine policy attributes",
    "dns.not_allowed": (
        "a DNS SAN the rule does not permit (kind not listed, or no pattern matches)"
    ),
    "dns.required": "`dnsNames.required` and no DNS SAN",
    "dns.too_many": "more DNS SANs than `maxItems`, or more than 1000",
    "dns.wildcard_not_allowed": "a wildcard DNS SAN without `allowWildcardNames`",
    "ip.not_allowed": "an IP SAN the rule does not permit",
    "ip.required": "`ipAddresses.required` and no IP SAN",
    "ip.too_many": "more IP SANs than `maxItems`, or more than 1000",
    "uri.not_allowed": "a URI SAN the rule does not permit",
    "uri.required": "`uris.required` and no URI SAN",
    "uri.too_many": "more URI SANs than `maxItems`, or more than 1000",
    "email.not_allowed": "an email SAN the rule does not permit",
    "email.required": "`emailAddresses.required` and no email SAN",
    "email.too_many": "more email SANs than `maxItems`, or more than 1000",
    "usages.not_allowed": "an entry of `spec.usages` outside `allowed.usages`",
    "usages.required": "an entry of `requiredUsages` missing from `spec.usages`",
    "usages.extension_mismatch": (
        "the CSR's keyUsage / extendedKeyUsage asks for something `spec.usages` does not"
    ),
    "extensions.not_allowed": "an extension OID outside the standard set and `allowed.extensions`",
    "extensions.unknown_critical": "the same, marked critical",
    "key.type_not_allowed": "a key type the rule does not accept (DSA and unknown types always)",
    "key.rsa_size": "RSA size outside `minBits`..`maxBits`",
    "key.rsa_exponent": "RSA public exponent other than 65537",
    "key.curve_not_allowed": "an ECDSA curve outside `curves`",
    "signature.weak": "SHA-1 or MD5 (never accepted)",
    "signature.not_allowed": "an algorithm outside `signatureAlgorithms` (or the default set)",
    "lifetime.missing": "`lifetime.max` is set and the CSR has no `expirationSeconds`",
    "lifetime.too_long": (
        "`expirationSeconds` above `lifetime.max`; for a PodCertificateRequest, "
        "`maxExpirationSeconds` above `podCertificates.maxExpirationSeconds`, or a leaf valid "
        "longer than `issued.lifetime.max` or `maxExpirationSeconds`"
    ),
    "lifetime.too_short": (
        "`expirationSeconds` below `lifetime.min`; for a PodCertificateRequest, a leaf valid "
        "shorter than `issued.lifetime.min`"
    ),
    "ca.not_allowed": (
        "a CA request (`CA:TRUE`, `cert sign` or `crl sign`) under a rule without `isCA`"
    ),
    "requester.not_permitted": "no rule's `requesters` admit the requester",
    "requester.too_many_pending": (
        "at CREATE, the requester already has `maxPending` pending CSRs of the signer"
    ),
    "requester.pending_unknown": (
        "at CREATE, a rule has `maxPending` and the requester's pending CSRs cannot be counted "
        "now (no cluster connection, or the watch has not synced)"
    ),
    "node.unknown": (
        "a rule has `constraints.node` and the Node cannot be looked up now (no cluster "
        "connection, or the watch has not synced)"
    ),
    "node.not_found": ("`mustExist` and no Node is named `${node}`, or the requester is no node"),
    "node.san_not_an_address": (
        "a DNS or IP SAN that is none of the Node's addresses of the `sansFromAddresses` types"
    ),
    "node.address_shared": (
        "a DNS or IP SAN that is an address of the requesting Node and also of another Node "
        "(`sharedAddresses: Deny`)"
    ),
    "deny.dns": "a DNS SAN matches `deny.dnsNames`",
    "deny.ip": "an IP SAN matches `deny.ipAddresses`",
    "deny.uri": "a URI SAN matches `deny.uris`",
    "deny.email": "an email SAN matches `deny.emailAddresses`",
    "deny.subject": "a subject value matches `deny.subject`",
    "signer.unmatched": "no policy governs the signer and `--unmatched-signers` is `deny`",
    "transition.condition_status": (
        "an Approved, Denied or Failed condition (or a PodCertificateRequest's Issued) whose "
        "status is not `True`"
    ),
    "transition.condition_duplicate": (
        "a condition type twice (for a PodCertificateRequest: more than one of Issued, Denied and"
        " Failed)"
    ),
    "transition.approved_and_denied": "Approved and Denied together",
    "transition.condition_removed": "an Approved, Denied or Failed condition removed",
    "transition.condition_modified": "an Approved, Denied or Failed condition changed",
    "transition.approval_subresource_required": (
        "Approved or Denied added other than through `/approval`"
    ),
    "transition.status_subresource_required": (
        "Failed or the certificate added (or a PodCertificateRequest's status changed) other than"
        " through `/status`"
    ),
    "transition.certificate_unapproved": (
        "a certificate on a CSR that is not Approved, or is Denied or Failed"
    ),
    "transition.certificate_modified": "an issued certificate changed or removed",
    "transition.certificate_malformed": (
        "`status.certificate` is not base64 or not well-formed `CERTIFICATE` PEM, or a "
        "certificate's serial number is not positive (RFC 5280)"
    ),
    "transition.denied_after_issue": "Denied added to a CSR whose certificate was issued",
    "transition.spec_changed": (
        "an update changes `spec` (any key, on any endpoint); the field names the first changed key"
    ),
    "transition.main_resource_modified": "an update of the main resource changes status",
    "approval.not_approver": "the caller is not in `approval.approvers`",
    "approval.self_approval": "the requester approves its own CSR under `selfApproval: Deny`",
    "approval.recheck_failed": "the CSR no longer passes the policy (its violations follow)",
    "issuance.not_issuer": "the caller is not in `issuance.issuers`",
    "issuance.node_binding_failed": (
        "no rule permits the CSR now and the node binding is why (its `node.` violations follow)"
    ),
    "issuance.requester_not_permitted": (
        "a certificate for a requester no rule applies to ([§3.9](#39-specissuance))"
    ),
    "issuance.public_key_mismatch": "the certificate's public key is not the CSR's",
    "issuance.subject_not_requested": "a subject attribute the CSR does not have",
    "issuance.san_not_requested": "a SAN the CSR does not have",
    "issuance.lifetime_too_long": (
        "valid longer than the [lifetime bound](#39-specissuance) + 5 minutes"
    ),
    "issuance.ca_not_allowed": "a CA certificate under a rule without `isCA`",
    "issuance.usage_not_requested": "a key usage or extended key usage outside `spec.usages`",
    "issuance.untrusted_issuer": (
        "not issued by the `caBundle` CAs (directly or through the chain given)"
    ),
    "issuance.request_unparseable": (
        "the CSR's own request does not parse, so the certificate cannot be compared"
    ),
    "issuance.certificate_unparseable": (
        "a certificate of `status.certificate` (the leaf or one that follows it) cannot be read: "
        "its public key, validity or structure"
    ),
    "issuance.extension_unparseable": (
        "an extension of a certificate of `status.certificate` cannot be read (cryptography cannot "
        "represent it, say an `x400Address` or `ediPartyName` name) or occurs twice"
    ),
    "pod.not_governed": (
        "a PodCertificateRequest for a signer whose policy has no `podCertificates`"
    ),
    "pod.requester_not_permitted": "the creator is not admitted by `podCertificates.requesters`",
    "pod.node_mismatch": "a node creates a request for a pod on another node (`spec.nodeName`)",
    "pod.namespace_not_allowed": "the pod's namespace matches none of `pods.namespaces`",
    "pod.service_account_not_allowed": (
        "the pod's service account matches none of `pods.serviceAccounts`"
    ),
    "pod.stub_invalid": (
        "`spec.stubPKCS10Request` missing, not base64, over 10 KiB, not a PKCS#10 request or its "
        "signature does not verify (or, in v1beta1, neither it nor `pkixPublicKey` is set)"
    ),
    "pod.proof_invalid": (
        "v1beta1: `pkixPublicKey` is no public key, or `proofOfPossession` does not verify over "
        "`spec.podUID`"
    ),
    "pod.annotation_not_allowed": (
        "an `unverifiedUserAnnotations` key absent from `annotations.allowed`"
    ),
    "pod.annotation_value_not_allowed": (
        "an `unverifiedUserAnnotations` value matching none of its key's patterns"
    ),
    "pod.terminal_changed": "the status of an Issued, Denied or Failed request changed",
    "pod.fields_not_empty": (
        "Denied or Failed (or no Issued condition) with the chain or a time set"
    ),
    "pod.issuer_not_permitted": "the status writer is not in `podCertificates.issuers`",
    "pod.chain_invalid": (
        "an Issued request's `certificateChain` is empty, over 100 KiB or 10 certificates, not "
        "`CERTIFICATE` PEM, or a certificate cannot be read"
    ),
    "pod.key_mismatch": "the leaf's public key is not the stub's (or `pkixPublicKey`'s)",
    "pod.san_not_allowed": "a leaf SAN matching none of the expanded `issued` patterns of its kind",
    "pod.subject_not_allowed": (
        "a leaf subject attribute outside `issued.subject`, or a value matching none of its "
        "expanded patterns"
    ),
    "pod.ca_not_allowed": "the leaf is a CA (`CA:TRUE`)",
    "pod.usage_not_allowed": "a leaf key usage or extended key usage outside `issued.usages`",
    "pod.times_mismatch": "`status.notBefore` or `status.notAfter` is not the leaf's",
    "pod.refresh_out_of_range": (
        "`status.beginRefreshAt` absent or outside [`notBefore`, `notAfter`]"
    ),
    "pod.chain_untrusted": "the chain does not verify to `podCertificates.caBundle`",
}
KNOWN_CODES: frozenset[str] = frozenset(CATALOGUE)
FAMILIES: frozenset[str] = frozenset(code.split(".")[0] + "." for code in KNOWN_CODES)
_BY_FAMILY: dict[str, frozenset[str]] = {
    family: frozenset(c for c in KNOWN_CODES if c.startswith(family)) for family in FAMILIES
}


def is_known(code: str) -> bool:
    """A code the webhook emits, or a family (`dns.`) some emitted code belongs to."""
    if code.endswith("."):
        return any(known.startswith(code) for known in KNOWN_CODES)
    return code in KNOWN_CODES


@functools.lru_cache(maxsize=1024)
def nearest(code: str) -> str | None:
    """The known code (or family, for a family) most like `code`, if any is close. Looks within
    the code's family when that family exists (a typo is rarely in the family name), which
    keeps a suite full of typos cheap to report."""
    if code.endswith("."):
        candidates = FAMILIES
    else:
        family = code.split(".", maxsplit=1)[0] + "."
        candidates = _BY_FAMILY.get(family, KNOWN_CODES)
    found = difflib.get_close_matches(code, sorted(candidates), n=1, cutoff=0.6)
    if not found and candidates is not KNOWN_CODES and not code.endswith("."):
        found = difflib.get_close_matches(code, sorted(KNOWN_CODES), n=1, cutoff=0.6)
    return found[0] if found else None
