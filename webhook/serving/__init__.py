"""The web layer: the Flask app and views, the gunicorn server and worker, TLS, policy
reload, metrics and logs."""
