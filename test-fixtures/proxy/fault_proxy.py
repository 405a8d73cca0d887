#!/usr/bin/env python3
"""Loopback recording and fault-injecting HTTP proxy in front of an object-store emulator
(moto_server for S3 in the tests).

Usage: fault_proxy.py --upstream PORT

Binds 127.0.0.1 on an ephemeral port, prints one JSON line {"port": P}, serves until stdin closes.

  GET  /__stats     {"requests": [{"method", "path", "query", "length", "headers": {...}}],
                     "counters": {...}}: every forwarded request with the integrity-relevant
                     headers it carried (x-amz-checksum-*, content-md5, if-none-match, ...).
  POST /__control   JSON, one-shot faults on data requests (PUT with a body):
                    {"fail_503": N}  answer the next N with 503 (body read, nothing forwarded);
                    {"cut": N}       read half the body of the next N, then drop the connection;
                    {"corrupt": N}   flip one byte in the body of the next N, then forward it;
                    {"reset": true}  forget requests and counters.
  anything else     forwarded to the upstream as is.
"""

import argparse
import http.client
import json
import socket
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEPT = ("x-amz-checksum-sha256", "x-amz-checksum-algorithm", "x-amz-checksum-mode",
        "x-amz-checksum-crc32c", "content-md5", "x-ms-blob-content-md5", "if-none-match",
        "if-match", "x-amz-content-sha256")
STATE = {"lock": threading.Lock(), "requests": [], "counters": {}, "fail_503": 0, "cut": 0,
         "corrupt": 0}
UPSTREAM = {}


def bump(name):
    with STATE["lock"]:
        STATE["counters"][name] = STATE["counters"].get(name, 0) + 1


def take(fault):
    with STATE["lock"]:
        if STATE[fault] > 0:
            STATE[fault] -= 1
            return True
    return False


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _reply(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self):
        split = urllib.parse.urlsplit(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        if split.path == "/__stats":
            self.rfile.read(n)
            with STATE["lock"]:
                out = {"requests": list(STATE["requests"]), "counters": dict(STATE["counters"])}
            return self._reply(200, json.dumps(out).encode(), [("Content-Type", "application/json")])
        if split.path == "/__control":
            ctl = json.loads(self.rfile.read(n) or b"{}")
            with STATE["lock"]:
                if ctl.get("reset"):
                    STATE["requests"].clear()
                    STATE["counters"].clear()
                for k in ("fail_503", "cut", "corrupt"):
                    if k in ctl:
                        STATE[k] = int(ctl[k])
            return self._reply(200, b"{}")
        data_request = self.command == "PUT" and n > 0
        if data_request and take("cut"):
            self.rfile.read(n // 2)
            bump("cuts")
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return None
        body = self.rfile.read(n) if n else b""
        with STATE["lock"]:
            STATE["requests"].append({
                "method": self.command, "path": split.path, "query": split.query, "length": n,
                "headers": {k: v for k, v in ((k.lower(), v) for k, v in self.headers.items())
                            if k in KEPT},
            })
        if data_request and take("fail_503"):
            bump("injected_503")
            return self._reply(503, b"<Error><Code>SlowDown</Code><Message>injected</Message></Error>",
                               [("Content-Type", "application/xml")])
        if data_request and take("corrupt"):
            bump("corrupted")
            body = body[:-1] + bytes([body[-1] ^ 0xFF])
        conn = http.client.HTTPConnection("127.0.0.1", UPSTREAM["port"], timeout=120)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("content-length", "connection", "transfer-encoding")}
        headers["Content-Length"] = str(len(body))
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        out = [(k, v) for k, v in resp.getheaders()
               if k.lower() not in ("content-length", "connection", "transfer-encoding", "date", "server")]
        conn.close()
        self.send_response(resp.status)
        for k, v in out:
            self.send_header(k, v)
        length = resp.getheader("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", length or str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        return None

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", type=int, required=True)
    UPSTREAM["port"] = ap.parse_args().upstream
    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
