"""The one price table the cost model reads: AWS's published on-demand list prices for us-east-1
(USD, December 2026; taxes, free tier and data transfer out excluded), and the managed services
medialens is compared with. Override any of them with a JSON file of the same fields
(``medialens report --prices prices.json``) for another region, a savings plan or Spot."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Prices(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # What medialens runs on, per unit.
    lambda_gb_second: float = Field(0.0000166667, description="Lambda compute (x86), per GB-second")
    lambda_request: float = Field(0.0000002, description="Lambda, per invocation")
    lambda_memory_gb: float = Field(2.0, description="Memory of the light-step and ingest functions (config)")
    step_functions_transition: float = Field(0.000025, description="Standard workflow, per state transition")
    sqs_request: float = Field(0.0000004, description="SQS standard queue, per request")
    s3_put: float = Field(0.000005, description="S3 Standard PUT/POST/LIST, per request")
    s3_get: float = Field(0.0000004, description="S3 Standard GET, per request")
    s3_gb_month: float = Field(0.023, description="S3 Standard storage, per GB-month")
    dynamodb_write: float = Field(0.000000625, description="DynamoDB on-demand, per write request unit")
    dynamodb_read: float = Field(0.000000125, description="DynamoDB on-demand, per read request unit")
    gpu_instance_hour: float = Field(1.006, description="The heavy worker's instance (g5.xlarge on demand), per hour")
    opensearch_month: float = Field(
        26.3, description="The index's fixed capacity (t3.small.search, one node), per month; not per item"
    )

    # Managed services doing the same jobs, as their price pages quote them.
    transcribe_minute: float = Field(0.024, description="Amazon Transcribe batch, per audio minute")
    rekognition_video_minute: float = Field(0.10, description="Rekognition Video label detection, per minute")
    textract_page: float = Field(0.0015, description="Textract DetectDocumentText, per page")
    rekognition_image: float = Field(0.001, description="Rekognition Image DetectText or labels, per image")
    polly_neural_million_characters: float = Field(16.0, description="Polly neural voices, per 1M characters")


DEFAULT_PRICES = Prices()
