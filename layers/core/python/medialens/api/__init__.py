"""The search API: one Powertools REST resolver (``medialens.api.app.app``) served by API Gateway
on AWS and by ``medialens serve`` locally."""
