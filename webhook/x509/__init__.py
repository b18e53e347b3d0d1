"""X.509 and its encodings: PEM, DER, CSRs, certificates, OIDs and key algorithms; parsers
only, no policy."""
