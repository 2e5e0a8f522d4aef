"""Two stacks per environment: ``data`` (state that outlives deployments) and ``pipeline``."""
