"""Every exception csr-webhook raises on purpose, in one tree (imports only webhook.decision).

    CsrWebhookError                 catch this to catch them all; anything else is a bug
    ├── ReviewError                 the body is not a usable AdmissionReview v1 (HTTP 400)
    ├── PolicyError                 policy files and their parts
    │   ├── SourceError             a file that cannot (or may not) be read
    │   └── PatternError            a pattern that does not compile (kind, pattern, problem)
    ├── X509Error                   bytes that are not the X.509 the caller expected
    │   ├── DERError                not the DER structure asked for
    │   ├── CSRError                spec.request cannot be interpreted at all (code, message)
    │   └── CertificateFormatError  status.certificate breaks the API server's rules
    ├── ServingError                the HTTP server's own refusals
    │   ├── FramingError            a request that cannot be served (status, message)
    │   ├── ResponseTooLargeError   a response over its bound (an OSError too, for gunicorn)
    │   └── SnapshotError           a published TLS or policy file that cannot be used
    ├── ClusterError                the Kubernetes API connection (webhook.cluster)
    │   └── CredentialsError        no usable kubeconfig or in-cluster credentials
    └── AuthoringError              the authoring commands (csr-webhook eval, test, configmap)
        ├── UsageError              a command line that cannot be run
        ├── InputError              eval's input, naming file, document and problem
        ├── ConfigMapError          a policy directory that does not make a ConfigMap
        └── SpecError               a test case's request or certificate that cannot be made

The leaves keep the built-in base they always had (ValueError, OSError) beside their branch,
so `except ValueError` around a parser still catches them. Each is raised from the module
named in its docstring and importable from there too. Policy *violations* are no exception:
they are values (webhook.decision.Violation), and a check never raises for bad input.
"""

from __future__ import annotations

from webhook.decision import Violation


class CsrWebhookError(Exception):
    """The root: an error csr-webhook raised on purpose, with a message naming the value."""


class ReviewError(CsrWebhookError, ValueError):
    """The body is not a usable AdmissionReview v1; the message says which field and why.
    Raised only by webhook.admission, answered with HTTP 400 by webhook.serving.views."""


class PolicyError(CsrWebhookError):
    """A policy, a policy file or a part of one cannot be used."""


class SourceError(PolicyError, ValueError):
    """A file that cannot be read, or may not be; the message says why and follows
    "cannot read <file>: " (webhook.policy.source)."""


class PatternError(PolicyError, ValueError):
    """A pattern that cannot be compiled (webhook.matching). Carries the kind, the pattern
    text and the problem."""

    def __init__(self, kind: str, pattern: str, problem: str) -> None:
        super().__init__(f"{kind} pattern {pattern!r}: {problem}")
        self.kind = kind
        self.pattern = pattern
        self.problem = problem


class X509Error(CsrWebhookError, ValueError):
    """Bytes that are not the X.509 structure the caller expected (webhook.x509)."""


class DERError(X509Error):
    """The bytes are not the DER structure the caller expected (webhook.x509.der)."""


class CSRError(X509Error):
    """`spec.request` cannot be interpreted at all (webhook.x509.csr); `code` and `message`
    are the violation it becomes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def violation(self) -> Violation:
        return Violation(code=self.code, field="spec.request", message=self.message)


class CertificateFormatError(X509Error):
    """The bytes break the API server's rules for status.certificate; str() says how
    (webhook.x509.certificate)."""


class ServingError(CsrWebhookError):
    """The HTTP server refuses a connection, a request or a file (webhook.serving)."""


class FramingError(ServingError):
    """The request cannot be served; `status` is the HTTP answer, `message` names the value
    (webhook.serving.framing)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ResponseTooLargeError(ServingError, OSError):
    """The response outgrew its bound (an OSError, so gunicorn passes it on unanswered;
    webhook.serving.rendering)."""


class SnapshotError(ServingError):
    """A published file that cannot be used; the message says which and why
    (webhook.serving.snapshot)."""


class ClusterError(CsrWebhookError):
    """The Kubernetes API cannot be reached or read (webhook.cluster)."""


class CredentialsError(ClusterError):
    """No usable credentials for the API; the message names the file or what is missing
    (webhook.cluster.client)."""


class AuthoringError(CsrWebhookError):
    """An authoring command cannot do what it was asked (webhook.authoring, webhook.cli)."""


class UsageError(AuthoringError):
    """A command line that cannot be run; the message says what to change (webhook.cli)."""


class InputError(AuthoringError):
    """Input eval cannot use; the message names the file, the document and what is wrong
    (webhook.authoring.evaluate)."""


class ConfigMapError(AuthoringError):
    """The policy directory cannot become the ConfigMap; the message lists every problem
    (webhook.authoring.configmap)."""


class SpecError(AuthoringError, ValueError):
    """A request or certificate description in a test case that cannot be made; `path` names
    the field (webhook.authoring.generate, webhook.authoring.issue)."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
