"""Signer policies: the format as JSON Schema (`schema`) and its check (`validation`), typed values
(`model`), one document built (`build`), loading (`loader`)."""
