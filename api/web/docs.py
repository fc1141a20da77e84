"""The interactive API documentation (Swagger UI) served from this server: its script and styles come
from the ``swagger-ui-bundle-v2`` package, not from a CDN, so ``/docs`` works offline and under the same
Content-Security-Policy as every page (no inline script: ``static/docs.js`` starts it)."""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from api.web.render import SecureStatic
from api.web.security import secure

ASSETS = Path(swagger_ui_bundle.swagger_ui_path)

router = APIRouter(include_in_schema=False)
router.mount("/docs/assets", SecureStatic(directory=ASSETS), name="docs-assets")

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Workproof API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  <link rel="icon" href="/static/favicon.svg">
</head>
<body>
  <main id="swagger-ui" data-spec="/openapi.json"></main>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/static/docs.js"></script>
</body>
</html>
"""


@router.get("/docs")
async def docs() -> Response:
    return secure(HTMLResponse(PAGE))
