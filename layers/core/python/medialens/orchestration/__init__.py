"""The workflow definition and the resources it needs, for local profiles and tests."""
