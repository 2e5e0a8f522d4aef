"""The asset registry: DynamoDB on AWS, SQLite in the embedded profile."""
