"""Running steps for the workflow: answering task tokens, heartbeats, the heavy worker loop."""
