"""Flask application factory; wiring only, no request logic."""

from __future__ import annotations

from flask import Flask

from webhook.engine import EngineOptions
from webhook.serving import views
from webhook.serving.cluster import ClusterLink
from webhook.serving.metrics import ReviewMetrics
from webhook.serving.reload import PolicyView
from webhook.serving.settings import Settings


def create_app(
    settings: Settings,
    policies: PolicyView,
    metrics: ReviewMetrics | None = None,
    cluster: ClusterLink | None = None,
) -> Flask:
    app = Flask("webhook")
    app.config["MAX_CONTENT_LENGTH"] = views.MAX_BODY_BYTES
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["csr_webhook.settings"] = settings
    app.extensions["csr_webhook.policies"] = policies
    app.extensions["csr_webhook.metrics"] = metrics
    app.extensions["csr_webhook.cluster"] = cluster or ClusterLink()
    app.extensions["csr_webhook.options"] = EngineOptions(
        allow_unmatched_signers=settings.unmatched_signers == "allow"
    )
    app.register_blueprint(views.blueprint)
    app.wsgi_app = views.review_wsgi(app, app.wsgi_app)  # type: ignore[method-assign,assignment]
    return app
