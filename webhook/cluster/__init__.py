"""The cluster's facts from the Kubernetes API: watch-backed caches of Nodes and pending CSRs
behind the webhook.facts.ClusterFacts interface, and the credentials to reach the API."""
