"""webhook/errors.py is the one exception tree: every public exception class the package
defines sits under CsrWebhookError, is drawn in the module docstring, and keeps the built-in
base its callers catch."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import webhook
from webhook import errors
from webhook.errors import CsrWebhookError


def _public_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(webhook.__path__, "webhook."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__.startswith("webhook.")
                and not name.startswith("_")
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return found


def test_every_public_exception_is_in_the_tree() -> None:
    outside = sorted(
        name for name, cls in _public_exceptions().items() if not issubclass(cls, CsrWebhookError)
    )
    assert outside == []


def test_every_public_exception_is_defined_in_errors_and_drawn_in_its_docstring() -> None:
    defined = {name for name, cls in _public_exceptions().items()}
    assert {name.rsplit(".", 1)[0] for name in defined} == {"webhook.errors"}
    doc = errors.__doc__ or ""
    drawn = {line.split("── ")[1].split()[0] for line in doc.splitlines() if "── " in line}
    assert drawn | {"CsrWebhookError"} == {name.rsplit(".", 1)[1] for name in defined}


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (errors.ReviewError, ValueError),
        (errors.SourceError, ValueError),
        (errors.PatternError, ValueError),
        (errors.DERError, ValueError),
        (errors.CSRError, ValueError),
        (errors.CertificateFormatError, ValueError),
        (errors.ResponseTooLargeError, OSError),
    ],
)
def test_leaves_keep_the_builtin_base_callers_catch(
    cls: type[BaseException], builtin: type[BaseException]
) -> None:
    assert issubclass(cls, builtin)


def test_modules_raise_the_classes_of_the_tree() -> None:
    from webhook.matching.patterns import PatternKind, compile_pattern  # noqa: PLC0415
    from webhook.x509 import der  # noqa: PLC0415

    with pytest.raises(errors.PolicyError, match="dns pattern"):
        compile_pattern(PatternKind.DNS, "a..b")
    with pytest.raises(errors.X509Error):
        der.read_single(b"\x30")
