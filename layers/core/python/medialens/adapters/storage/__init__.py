"""Blob storage: S3 on AWS, a directory tree in the embedded profile; addresses are s3:// URIs."""
