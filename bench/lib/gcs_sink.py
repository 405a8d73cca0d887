#!/usr/bin/env python3
"""A minimal, linear-time GCS JSON-API upload sink for the upload-throughput scenario.

Why not the emulator stack: gcp-storage-emulator re-reads and re-writes the whole object on every
resumable chunk (quadratic in the object size), so at 1 GiB it measures the emulator, not the
client. This sink streams every request body once (crc32c while reading, bytes discarded), so both
clients, ours (64 MiB resumable chunks by default) and `curl -T` (one PUT), pay the same per-byte cost.
It checks no credentials (the emulator stack in the publish scenario does).

Usage: gcs_sink.py BUCKET
Prints {"port": P} once listening; serves until stdin closes.

  POST /token                                      any assertion -> bearer token
  GET  /storage/v1/b/B/o/NAME                      object resource, 404 when absent
  DELETE /storage/v1/b/B/o/NAME                    204
  POST /upload/storage/v1/b/B/o?uploadType=resumable&name=N  -> 200, Location: session
  PUT  session  [Content-Range: bytes a-b/total | bytes */total | none (whole object)]
  GET  /__stats                                    {"bytes_received": N, "puts": N, "objects": N}
"""

import base64
import json
import secrets
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import google_crc32c

LOCK = threading.Lock()
STATS = {"bytes_received": 0, "puts": 0, "objects": 0}
SESSIONS = {}  # id -> {"name", "received", "crc", "declared_crc", "total"}
OBJECTS = {}  # name -> resource dict
BUCKET = ""
PORT = 0
PIECE = 1 << 20


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _send(self, status, obj=None, headers=()):
        body = json.dumps(obj).encode() if obj is not None else b""
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if obj is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _drain(self, crc=None):
        """Reads the request body in pieces; returns its length."""
        n = int(self.headers.get("Content-Length") or 0)
        left = n
        while left:
            piece = self.rfile.read(min(PIECE, left))
            if not piece:
                raise ConnectionError("client went away")
            if crc is not None:
                crc.update(piece)
            left -= len(piece)
        return n

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _object_name(self, path):
        prefix = "/storage/v1/b/%s/o/" % BUCKET
        return urllib.parse.unquote(path[len(prefix):]) if path.startswith(prefix) else None

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/__stats":
            with LOCK:
                return self._send(200, dict(STATS))
        name = self._object_name(url.path)
        with LOCK:
            obj = OBJECTS.get(name) if name else None
        if obj is None:
            return self._send(404, {"error": {"code": 404, "message": "No such object"}})
        return self._send(200, obj)

    def do_DELETE(self):
        name = self._object_name(urllib.parse.urlsplit(self.path).path)
        with LOCK:
            found = OBJECTS.pop(name, None) if name else None
        self._send(204 if found else 404)

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path == "/token":
            self._body()
            return self._send(200, {"access_token": secrets.token_urlsafe(16), "expires_in": 3600,
                                    "token_type": "Bearer"})
        if url.path == "/upload/storage/v1/b/%s/o" % BUCKET and query.get("uploadType") == ["resumable"]:
            meta = json.loads(self._body() or b"{}")
            name = query.get("name", [meta.get("name", "")])[0]
            if not name:
                return self._send(400, {"error": {"code": 400, "message": "no name"}})
            with LOCK:
                if query.get("ifGenerationMatch") == ["0"] and name in OBJECTS:
                    return self._send(412, {"error": {"code": 412, "message": "conditionNotMet"}})
                sid = secrets.token_hex(16)
                SESSIONS[sid] = {
                    "name": name,
                    "received": 0,
                    "crc": google_crc32c.Checksum(),
                    "declared_crc": meta.get("crc32c"),
                    "metadata": meta.get("metadata") or {},
                }
            loc = "http://127.0.0.1:%d/upload/storage/v1/b/%s/o?uploadType=resumable&upload_id=%s" % (
                PORT, BUCKET, sid)
            return self._send(200, {}, headers=[("Location", loc)])
        self._body()
        return self._send(404, {"error": {"code": 404, "message": "not found"}})

    def do_PUT(self):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        sid = query.get("upload_id", [""])[0]
        with LOCK:
            s = SESSIONS.get(sid)
        if s is None:
            self._drain()
            return self._send(404, {"error": {"code": 404, "message": "no such session"}})
        rng = (self.headers.get("Content-Range") or "").replace("bytes ", "")
        total = None
        if rng:
            span, _, tot = rng.partition("/")
            total = None if tot == "*" else int(tot)
            if span != "*" and int(span.split("-")[0]) != s["received"]:
                self._drain()
                return self._send(400, {"error": {"code": 400, "message": "bad offset"}})
        n = self._drain(s["crc"])
        with LOCK:
            STATS["bytes_received"] += n
            STATS["puts"] += 1
        s["received"] += n
        if total is None and not rng:
            total = s["received"]  # a plain PUT carries the whole object
        if total is None or s["received"] < total:
            hdrs = [("Range", "bytes=0-%d" % (s["received"] - 1))] if s["received"] else []
            return self._send(308, None, headers=hdrs)
        crc = base64.b64encode(s["crc"].digest()).decode()
        if s["declared_crc"] and s["declared_crc"] != crc:
            with LOCK:
                SESSIONS.pop(sid, None)
            return self._send(400, {"error": {"code": 400, "message": "crc32c mismatch"}})
        obj = {"kind": "storage#object", "name": s["name"], "bucket": BUCKET,
               "size": str(s["received"]), "crc32c": crc, "generation": "1",
               "metadata": s["metadata"]}
        with LOCK:
            SESSIONS.pop(sid, None)
            OBJECTS[s["name"]] = obj
            STATS["objects"] += 1
        return self._send(200, obj)


def main():
    global BUCKET, PORT
    BUCKET = sys.argv[1]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    PORT = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps({"port": PORT}), flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
