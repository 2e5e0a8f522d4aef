"""The medialens CDK app (``cdk synth -c env=dev``); see docs/deploy.md."""
