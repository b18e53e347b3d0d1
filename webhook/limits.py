"""Ceilings on how many entries of one kind a CSR may carry, whatever a policy says.

One table shared by the policy schema (no `maxItems` may exceed its ceiling) and the volume
check (a CSR over a ceiling is refused before any per-entry work) and the PodCertificateRequest
/status check (so is an issued leaf's SANs), so that the cost of a review stays linear in the
size of the request and bounded by these numbers.
"""

from __future__ import annotations

# SAN values of one kind (dnsNames, ipAddresses, uris, emailAddresses). Real certificates
# carry a few dozen at most; public CAs cap a certificate at 100 names.
MAX_SANS_PER_KIND = 1000
# Subject attributes in all RDNs together, and occurrences of one attribute.
MAX_SUBJECT_ATTRIBUTES = 100
