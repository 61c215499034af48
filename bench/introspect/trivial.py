# SPDX-License-Identifier: AGPL-3.0-only
"""Baseline for bench/introspect: the cheapest twisted.web resource answering a POST with JSON.

Its ``Site`` leaves the body to the resource, as the service's listeners do, and the
resource parses the form itself as the introspection endpoint does: the ceiling of the
stack as the service uses it.

Usage: python trivial.py PORT
"""

import json
import sys
from urllib.parse import parse_qsl

from twisted.internet import reactor
from twisted.web.resource import Resource
from twisted.web.server import Site

BODY = json.dumps(
    {"active": True, "scope": "openid", "client_id": "bench", "token_type": "access_token"}
).encode()


class Introspect(Resource):
    isLeaf = True

    def render_POST(self, request):
        request.content.seek(0)
        parse_qsl(request.content.read().decode("utf-8", "replace"))  # as the endpoint reads its form
        request.setHeader(b"content-type", b"application/json")
        return BODY


if __name__ == "__main__":
    port = int(sys.argv[1])
    site = Site(Introspect(), parsePOSTFormSubmission=False)
    site.noisy = False
    reactor.listenTCP(port, site, interface="127.0.0.1")
    print(f"ready {port}", flush=True)
    reactor.run()
