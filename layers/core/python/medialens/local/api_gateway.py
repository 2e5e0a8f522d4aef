"""What API Gateway does in front of the API Lambda, for ``medialens serve``: a request becomes a
REST (v1) proxy event (stage ``api``, resource ``/{proxy+}``) for the deployed handler itself, and
its proxy response becomes status, headers and body again."""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from medialens.handlers.api import handler as api_handler
from medialens.local.lambda_context import LocalLambdaContext

API_STAGE = "api"
API_FUNCTION_NAME = "medialens-api-local"
API_TIMEOUT_S = 29  # API Gateway's integration timeout


def api_gateway_event(
    method: str,
    path: str,
    query_string: str,
    headers: dict[str, list[str]],
    body: bytes,
    *,
    source_ip: str,
    request_id: str,
    stage: str = API_STAGE,
) -> dict[str, Any]:
    """An API Gateway REST (v1) proxy event, as a ``{proxy+}`` resource delivers it."""
    multi_query = parse_qs(query_string, keep_blank_values=True)
    text: str | None = None
    encoded = False
    if body:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode("ascii"), True
    single_headers = {name: values[-1] for name, values in headers.items()}
    now = time.time()
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": single_headers or None,
        "multiValueHeaders": headers or None,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourceId": "local",
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "requestTimeEpoch": int(now * 1000),
            "protocol": "HTTP/1.1",
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": single_headers.get("Host", "localhost"),
            "identity": {"sourceIp": source_ip, "userAgent": single_headers.get("User-Agent")},
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


@dataclass(frozen=True, slots=True)
class ProxyResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class LocalApiGateway:
    """Invokes the API handler for each request, concurrently: every server thread resolves with
    its own resolver (``api.app.current_app``), as separate Lambda environments would."""

    def __init__(self, region: str) -> None:
        self.region = region

    def request(
        self,
        method: str,
        path: str,
        query_string: str,
        headers: dict[str, list[str]],
        body: bytes,
        *,
        source_ip: str,
    ) -> ProxyResponse:
        request_id = str(uuid.uuid4())
        event = api_gateway_event(method, path, query_string, headers, body, source_ip=source_ip, request_id=request_id)
        context = LocalLambdaContext(API_FUNCTION_NAME, API_TIMEOUT_S, region=self.region, aws_request_id=request_id)
        response: dict[str, Any] = api_handler(event, context)
        payload = response.get("body") or ""
        data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode("utf-8")
        sent: set[str] = set()
        pairs: list[tuple[str, str]] = []
        for name, values in (response.get("multiValueHeaders") or {}).items():
            pairs += [(name, value) for value in values]
            sent.add(name.lower())
        pairs += [(name, value) for name, value in (response.get("headers") or {}).items() if name.lower() not in sent]
        return ProxyResponse(status=int(response["statusCode"]), headers=pairs, body=data)
