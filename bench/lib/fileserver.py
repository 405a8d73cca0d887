#!/usr/bin/env python3
"""Loopback file server for the benchmarks: serves one directory on 127.0.0.1 and counts what it
sends, so a scenario can show how many bytes (and how many full downloads) a client caused.

Usage: fileserver.py DIR
Prints one JSON line {"port": P} once listening, then serves until stdin closes.

  GET/HEAD /NAME       the file (sendfile; single byte range supported)
  GET /__stats         {"bytes_sent": N, "gets": N, "full_gets": N, "ranged_gets": N}
  POST /__reset        zeroes the counters
"""

import json
import os
import re
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATS = {"bytes_sent": 0, "gets": 0, "full_gets": 0, "ranged_gets": 0}
ROOT = ""


def bump(key, n=1):
    with LOCK:
        STATS[key] += n


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _json(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        if self.path == "/__reset":
            with LOCK:
                for k in STATS:
                    STATS[k] = 0
            return self._json(200, {"ok": True})
        return self._json(404, {"error": "not found"})

    def do_HEAD(self):
        self._serve(head=True)

    def do_GET(self):
        if self.path == "/__stats":
            with LOCK:
                return self._json(200, dict(STATS))
        self._serve(head=False)

    def _serve(self, head):
        name = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
        if not name or "/" in name or name.startswith("."):
            return self._json(404, {"error": "not found"})
        path = os.path.join(ROOT, name)
        try:
            f = open(path, "rb")
        except OSError:
            return self._json(404, {"error": "not found"})
        with f:
            size = os.fstat(f.fileno()).st_size
            start, end = 0, size - 1
            status = 200
            rng = self.headers.get("Range")
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng or "")
            if m:
                start = int(m.group(1))
                if m.group(2):
                    end = min(int(m.group(2)), size - 1)
                if start >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", "bytes */%d" % size)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            length = end - start + 1
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "bytes")
            if status == 206:
                self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
            self.end_headers()
            if head:
                return
            bump("gets")
            bump("ranged_gets" if status == 206 else "full_gets")
            sent = 0
            try:
                sent = self.connection.sendfile(f, offset=start, count=length) or 0
            finally:
                bump("bytes_sent", sent)


def main():
    global ROOT
    ROOT = sys.argv[1]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
