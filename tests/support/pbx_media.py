"""A PBX's web server that keeps call recordings as files, behind HTTP basic auth.

What a ``[recordings.<portal>] url_template`` points at: Asterisk's
MixMonitor or FreeSWITCH's record_session files served by a web server
(nginx, Apache) with basic auth and byte ranges, as static files are.
"""

from __future__ import annotations

import base64

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.standin import StandIn, media_response

USERNAME = "hubspot"
PASSWORD = "pbx-recordings-password"


class PbxMedia(StandIn):
    def routes(self) -> list[Route]:
        return [Route("/rec/{name}", self.recording, methods=["GET"])]

    async def recording(self, request: Request) -> Response:
        self.media_requests.append(dict(request.headers))
        expected = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return Response(b"", 401, {"www-authenticate": 'Basic realm="recordings"'})
        data = self.media.get(request.url.path)
        if data is None:
            return Response(b"", 404)
        return media_response(request, data, "audio/wav", self.honour_ranges)
