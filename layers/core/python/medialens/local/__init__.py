"""Local runtime: the AWS pipeline on one machine (embedded or against an AWS emulator)."""
