"""Signer policies: declared shape (`schema`), typed values (`model`), loading (`loader`)."""
