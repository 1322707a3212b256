"""Ingot's Python example: `/` says hello (through a vendored module), `/env` shows the
platform's variables. Only the standard library and vendor/ — the python buildpack installs
nothing from the network."""
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from greeting import hello  # vendored in vendor/greeting


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/env":
            body = json.dumps({
                "port": os.environ.get("PORT"),
                "memory_limit": os.environ.get("MEMORY_LIMIT"),
                "vcap_application": json.loads(os.environ.get("VCAP_APPLICATION", "{}")),
            }).encode()
            kind = "application/json"
        else:
            body = (hello("python-hello") + "\n").encode()
            kind = "text/plain"
        self.send_response(200)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print("%s %s" % (self.address_string(), fmt % args))


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    print("python-hello listening on port %d" % port)
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
