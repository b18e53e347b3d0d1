"""csr-webhook: admission webhook enforcing signer policy on CertificateSigningRequests."""

__version__ = "0.1.0"
