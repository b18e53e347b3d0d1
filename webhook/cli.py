"""The `csr-webhook` command line: serve, approve, check, eval, test, schema.

Every `serve` flag also reads CSR_WEBHOOK_<FLAG> from the environment (flags win).
Exit codes: 0 success, 1 policy problems, 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import socket
import ssl
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType

from webhook import __version__
from webhook.errors import CredentialsError, UsageError
from webhook.policy.loader import LoadResult, load_policies
from webhook.serving.cluster import check_credentials
from webhook.serving.devcert import temporary_dev_certificate
from webhook.serving.logs import configure_decision_log
from webhook.serving.settings import Settings

ENV_PREFIX = "CSR_WEBHOOK_"
ALLOW_EMPTY_HELP = (
    "accept a policy set with no policy (every CSR then falls to --unmatched-signers); "
    "refused by default"
)
log = logging.getLogger("csr_webhook")
# The serve flags that take one of a few words. argparse checks a flag's word, not its
# variable's (a default), so settings_from_args checks those.
SERVE_CHOICES = {
    "--unmatched-signers": ["deny", "allow"],
    "--log-level": ["debug", "info", "warning", "error", "critical"],
    "--cluster": ["auto", "on", "off"],
    "--listeners": ["per-worker", "shared"],
}


def _env(name: str, default: str | None) -> str | None:
    return os.environ.get(ENV_PREFIX + name, default)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 0")
    return value


def _env_flag(name: str) -> bool:
    text = _env(name, "") or ""
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("", "0", "false", "no", "off"):
        return False
    raise UsageError(f"{ENV_PREFIX}{name}={text!r} is not a boolean (use true or false)")


def _host_port(text: str) -> str:
    _host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return text


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="run the admission webhook server")
    flags: list[tuple[str, str | None, object, str]] = [
        ("--policies", "./policies", str, "policy directory"),
        ("--bind", "0.0.0.0:8443", _host_port, "HTTPS admission endpoint HOST:PORT"),
        ("--tls-cert", None, str, "serving certificate (PEM)"),
        ("--tls-key", None, str, "serving key (PEM)"),
        ("--client-ca", None, str, "require client certificates signed by this CA"),
        ("--metrics-bind", "0.0.0.0:9090", _host_port, "plain-HTTP /metrics HOST:PORT"),
        ("--workers", "2", _positive_int, "gunicorn worker processes"),
        ("--threads", "4", _positive_int, "threads per worker"),
        ("--unmatched-signers", "deny", str, "deny or allow CSRs for signers without a policy"),
        ("--reload-interval", "5", _positive_float, "seconds between change polls"),
        ("--log-level", "info", str, "debug, info, warning, error"),
        ("--cluster", "auto", str, "connect to the Kubernetes API: auto, on or off"),
        ("--kubeconfig", None, str, "kubeconfig file for the API (default: in-cluster)"),
        (
            "--cluster-sync-grace",
            "30",
            _non_negative_float,
            "seconds /readyz waits for the cluster caches to sync",
        ),
        ("--listeners", "per-worker", str, "per-worker (SO_REUSEPORT) or shared listening socket"),
    ]
    for flag, default, kind, text in flags:
        env_name = flag[2:].upper().replace("-", "_")
        serve.add_argument(
            flag,
            default=_env(env_name, default),
            type=kind,  # type: ignore[arg-type]
            choices=SERVE_CHOICES.get(flag),
            help=f"{text} (env {ENV_PREFIX}{env_name}; default {default})",
        )
    serve.add_argument(
        "--allow-empty-policies",
        action="store_true",
        default=None,
        help=f"{ALLOW_EMPTY_HELP} (env {ENV_PREFIX}ALLOW_EMPTY_POLICIES=true)",
    )


def _add_approve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    approve = sub.add_parser(
        "approve",
        help="run the approval controller: approve (or deny) pending CSRs of signers whose "
        "policy sets approval.auto, as leader of a Lease",
    )
    flags: list[tuple[str, str | None, object, str]] = [
        ("--policies", "./policies", str, "policy directory"),
        ("--kubeconfig", None, str, "kubeconfig file (default: the pod's service account)"),
        ("--lease-namespace", "csr-webhook", str, "namespace of the leader election Lease"),
        ("--lease-name", "csr-webhook-approver", str, "name of the Lease"),
        ("--identity", None, str, "holder identity (default: host name and a random suffix)"),
        ("--lease-duration", "15", _positive_float, "seconds a standby waits out a silent leader"),
        ("--renew-deadline", "10", _positive_float, "seconds the leader may fail to renew"),
        ("--retry-period", "2", _positive_float, "seconds between Lease attempts"),
        ("--metrics-bind", "0.0.0.0:9090", _host_port, "plain-HTTP /metrics /healthz /readyz"),
        ("--workers", "2", _positive_int, "CSRs processed at once"),
        ("--reload-interval", "5", _positive_float, "seconds between policy directory polls"),
        ("--log-level", "info", str, "debug, info, warning, error"),
    ]
    for flag, default, kind, text in flags:
        approve.add_argument(
            flag,
            default=default,
            type=kind,  # type: ignore[arg-type]
            choices=["debug", "info", "warning", "error", "critical"]
            if flag == "--log-level"
            else None,
            help=text if default is None else f"{text} (default {default})",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="csr-webhook", description="Admission webhook for CertificateSigningRequests"
    )
    parser.add_argument("--version", action="version", version=f"csr-webhook {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_serve(sub)
    _add_approve(sub)
    check = sub.add_parser("check", help="lint policy files and directories")
    check.add_argument("paths", nargs="*", default=["policies"], help="files or directories")
    check.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    check.add_argument("--allow-empty-policies", action="store_true", help=ALLOW_EMPTY_HELP)
    test = sub.add_parser(
        "test",
        help="run policy test suites (*.test.yaml); exit 1 on a failing case, 2 on a broken suite",
    )
    test.add_argument("paths", nargs="*", default=["policies"], help="test files or directories")
    _add_eval(sub)
    sub.add_parser("schema", help="print the JSON Schema of SignerPolicy and PolicyTest files")
    return parser


def _add_eval(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    evaluate = sub.add_parser(
        "eval",
        help="decide CSR and PodCertificateRequest manifests, lists or AdmissionReviews as the "
        "webhook would on CREATE; exit 0 all allowed, 1 any denied, 2 bad input",
    )
    evaluate.add_argument("--policies", default="./policies", help="policy directory")
    evaluate.add_argument(
        "-f", "--filename", action="append", help="YAML/JSON input, '-' for stdin (repeatable)"
    )
    evaluate.add_argument(
        "--as",
        dest="as_user",
        help="requester username (default: a CSR's spec.username; for a PodCertificateRequest "
        "the node in spec.nodeName, system:node:<nodeName> in group system:nodes)",
    )
    evaluate.add_argument(
        "--as-group", dest="as_groups", action="append", default=[], help="requester group"
    )
    evaluate.add_argument("-o", "--output", choices=["text", "json"], default="text")
    evaluate.add_argument("--unmatched-signers", choices=["deny", "allow"], default="deny")
    evaluate.add_argument(
        "--nodes",
        metavar="FILE",
        help="Node manifests ('kubectl get nodes -o yaml'), the Nodes constraints.node sees",
    )
    evaluate.add_argument(
        "--count-pending",
        action="store_true",
        help="count the input's pending CSRs as the cluster's, for maxPending",
    )


def settings_from_args(args: argparse.Namespace) -> Settings:
    if (args.tls_cert is None) != (args.tls_key is None):
        raise UsageError("--tls-cert and --tls-key must be given together")
    for flag, words in SERVE_CHOICES.items():
        value = getattr(args, flag[2:].replace("-", "_"))
        if value not in words:  # only a variable's value can be: argparse checked the flag's
            name = ENV_PREFIX + flag[2:].upper().replace("-", "_")
            raise UsageError(f"{name}={value!r} is not one of {', '.join(words)}")
    return Settings(
        policies=Path(args.policies),
        bind=args.bind,
        tls_cert=Path(args.tls_cert) if args.tls_cert else None,
        tls_key=Path(args.tls_key) if args.tls_key else None,
        client_ca=Path(args.client_ca) if args.client_ca else None,
        metrics_bind=args.metrics_bind,
        workers=args.workers,
        threads=args.threads,
        unmatched_signers=args.unmatched_signers,
        reload_interval=args.reload_interval,
        log_level=args.log_level,
        allow_empty_policies=(
            args.allow_empty_policies
            if args.allow_empty_policies is not None
            else _env_flag("ALLOW_EMPTY_POLICIES")
        ),
        cluster=args.cluster,
        kubeconfig=Path(args.kubeconfig) if args.kubeconfig else None,
        cluster_sync_grace=args.cluster_sync_grace,
        listeners=args.listeners,
    )


def empty_set_refusal(where: str) -> str:
    return (
        f"no policy in {where}: every CSR in the cluster would fall to --unmatched-signers "
        "(deny by default); add a policy, or pass --allow-empty-policies if this is meant"
    )


def run_check(
    paths: Sequence[str], *, strict: bool = False, allow_empty_policies: bool = False
) -> int:
    result = load_policies([Path(p) for p in paths], lint=True)
    for problem in result.problems:
        print(problem)
    # What must travel with the policy files (make manifests-policies carries it; an overlay
    # must list it in its configMapGenerator).
    for name, needed in result.needs:
        print(f"policy {name!r} needs: {', '.join(needed)}")
    warnings = len(result.problems) - len(result.errors)
    if result.errors:
        print(f"{len(result.errors)} problem(s) in {len(result.files)} file(s)", file=sys.stderr)
        return 1
    empty = result.policy_set is not None and not result.policy_set.policies
    if empty and not allow_empty_policies:
        shown = ", ".join(repr(p) for p in paths)
        print(f"csr-webhook check: {empty_set_refusal(shown)}", file=sys.stderr)
        return 1
    if strict and warnings:
        print(f"{warnings} warning(s) in {len(result.files)} file(s) (--strict)", file=sys.stderr)
        return 1
    count = len(result.policy_set.policies) if result.policy_set else 0
    noted = f", {warnings} warning(s)" if warnings else ""
    print(f"ok: {count} policies in {len(result.files)} file(s){noted}", file=sys.stderr)
    return 0


def run_serve(settings: Settings) -> int:
    if not settings.policies.is_dir():
        raise UsageError(f"--policies {str(settings.policies)!r} is not a directory")
    result = load_policies([settings.policies])
    if result.policy_set is None:
        for problem in result.errors:
            print(problem, file=sys.stderr)
        print(
            f"refusing to start: {len(result.errors)} problem(s) in policy set "
            f"{str(settings.policies)!r}",
            file=sys.stderr,
        )
        return 1
    if not result.policy_set.policies and not settings.allow_empty_policies:
        refusal = empty_set_refusal(f"--policies {str(settings.policies)!r}")
        print(f"refusing to start: {refusal}", file=sys.stderr)
        return 1
    if settings.tls_cert is not None:
        return _serve(settings, result)
    # Until gunicorn installs its own handlers, SIGTERM must unwind through the block below,
    # which removes the development key.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    with temporary_dev_certificate() as (cert, key):
        print(f"development certificate written to {cert.parent}", file=sys.stderr)
        log.warning(
            "no --tls-cert/--tls-key: serving a self-signed development certificate from %s "
            "(removed at exit); not for production",
            cert.parent,
        )
        return _serve(replace(settings, tls_cert=cert, tls_key=key), result)


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    sys.exit(128 + signum)


def _serve(settings: Settings, result: LoadResult) -> int:
    assert result.policy_set is not None
    assert settings.tls_cert is not None
    assert settings.tls_key is not None
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            settings.tls_cert, settings.tls_key
        )
        if settings.client_ca is not None:
            ssl.create_default_context(cafile=str(settings.client_ca))
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot use TLS files: {exc}") from exc
    try:
        no_cluster = check_credentials(settings)
    except CredentialsError as exc:
        raise UsageError(str(exc)) from None
    if no_cluster is not None:
        log.warning("serving without cluster facts (rules that need them deny): %s", no_cluster)
    prepare_multiprocess_metrics()
    from webhook.serving.server import run_server  # noqa: PLC0415 - after the metrics directory is set

    run_server(settings, result.policy_set, result.sources)
    return 0


def _approve(args: argparse.Namespace) -> int:
    # One process: its metrics live in its own registry, never in a multiprocess directory
    # (the image sets PROMETHEUS_MULTIPROC_DIR for `serve`; prometheus_client reads it at import).
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    from webhook.approver.run import ApproverSettings, run_approve  # noqa: PLC0415 - see above

    identity = args.identity or f"{socket.gethostname()}_{secrets.token_hex(4)}"
    return run_approve(
        ApproverSettings(
            policies=Path(args.policies),
            kubeconfig=args.kubeconfig,
            lease_namespace=args.lease_namespace,
            lease_name=args.lease_name,
            identity=identity,
            lease_duration=args.lease_duration,
            renew_deadline=args.renew_deadline,
            retry_period=args.retry_period,
            metrics_bind=args.metrics_bind,
            workers=args.workers,
            reload_interval=args.reload_interval,
        )
    )


def prepare_multiprocess_metrics() -> Path:
    """A fresh, empty multiprocess metrics directory, set in the environment before
    prometheus_client is imported (it chooses its storage at import time)."""
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before multiprocess mode was set")
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if configured:
        directory = Path(configured)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
    else:
        directory = Path(tempfile.mkdtemp(prefix="csr-webhook-metrics-"))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    return directory


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(args, "log_level", "info").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        if args.command == "check":
            return run_check(
                args.paths, strict=args.strict, allow_empty_policies=args.allow_empty_policies
            )
        if args.command == "eval":
            from webhook.authoring.evaluate import run_eval  # noqa: PLC0415 - only for `eval`

            return run_eval(
                args.policies,
                args.filename or ["-"],
                args.as_user,
                args.as_groups,
                args.output,
                args.unmatched_signers,
                args.nodes,
                args.count_pending,
            )
        if args.command == "schema":
            from webhook.authoring.schema_cli import run_schema  # noqa: PLC0415 - only for `schema`

            return run_schema()
        if args.command == "test":
            from webhook.authoring.policytest import run_tests  # noqa: PLC0415 - only for `test`

            return run_tests(args.paths)
        if args.command == "approve":
            return _approve(args)
        settings = settings_from_args(args)  # a usage error configures nothing
        configure_decision_log()
        return run_serve(settings)
    except UsageError as exc:
        print(f"csr-webhook: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
