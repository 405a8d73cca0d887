#!/usr/bin/env python3
"""Loopback GCS test stack: a token endpoint that really verifies RS256 JWTs, and an
auth-checking, fault-injecting reverse proxy in front of gcp-storage-emulator.

Usage: gcs_stack.py --public-key PEM --bucket NAME [--client-email EMAIL] [--sink]

Everything binds to 127.0.0.1 on ephemeral ports. Prints one JSON line
{"port": P, "emulator_port": E} once ready, then serves until stdin closes.

Routes on the front port:
  POST /token            jwt-bearer exchange; the JWT's signature is checked with the public
                         key, plus iss/aud/scope/iat/exp; issues a random bearer token.
  GET  /__stats          counters as JSON (token_ok, upload_initiations, chunk_puts, media_reads
                         — object data downloads —, requests_<METHOD>, unauthorized, ...).
  POST /__control        JSON: {"token_ttl": N} makes new tokens live N seconds;
                         {"fail_503": N} answers the next N upload requests (initiations
                         included) with 503 before reading them; {"upload_fault": {...}} arms
                         one fault of the resumable endpoint (see resumable.py);
                         {"token_500": N} answers the next N token requests with 500;
                         {"reset": true} zeroes the counters.
  GET  /BUCKET/OBJECT    public read (no token), like a public bucket.
  /upload/...?uploadType=resumable  (token required) the stack's own resumable endpoint
                         (resumable.py): faithful status queries, md5/crc32c and precondition
                         checks at finalize, fault injection; the finished object is stored in
                         the emulator.
  anything else          needs "Authorization: Bearer <issued token>", then is forwarded to the
                         emulator. Tokens expire after their expires_in ({"token_ttl": N}).

With --sink (benchmarks) there is no emulator: resumable uploads are read and discarded, the
finished object reports the checksums declared at initiation, and PUT /sink discards a body
(the `curl -T` baseline). Memory stays flat whatever the upload size.
"""

import argparse
import base64
import http.client
import json
import logging
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

import resumable

SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"

STATE = {
    "lock": threading.Lock(),
    "tokens": {},
    "token_ttl": 3600,
    "fail_503": 0,
    "token_500": 0,
    "stats": {},
}
RESUMABLE = {"endpoint": None}
CONFIG = {}
SINK = {"sessions": {}, "objects": {}}


def bump(name, n=1):
    with STATE["lock"]:
        STATE["stats"][name] = STATE["stats"].get(name, 0) + n


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def verify_jwt(assertion):
    """Returns None when valid, else a reason."""
    parts = assertion.split(".")
    if len(parts) != 3:
        return "not a JWT"
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        sig = b64url_decode(parts[2])
    except Exception:  # noqa: BLE001 - any decoding problem is a bad token
        return "undecodable JWT"
    if header.get("alg") != "RS256":
        return "alg is not RS256"
    try:
        CONFIG["public_key"].verify(
            sig,
            (parts[0] + "." + parts[1]).encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except InvalidSignature:
        return "Invalid JWT Signature."
    now = time.time()
    if CONFIG["client_email"] and claims.get("iss") != CONFIG["client_email"]:
        return "wrong iss"
    if claims.get("aud") != CONFIG["token_url"]:
        return "wrong aud"
    if SCOPE not in str(claims.get("scope", "")).split():
        return "scope lacks devstorage.read_write"
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int) or not isinstance(exp, int):
        return "iat/exp missing"
    if iat > now + 60 or exp <= now or exp - iat > 3600:
        return "iat/exp out of range"
    return None


class Front(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status, body=b"", headers=None, ctype="application/json"):
        self.send_response(status)
        for k, v in (headers or []):
            self.send_header(k, v)
        if ctype and not any(k.lower() == "content-type" for k, _ in (headers or [])):
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status, obj):
        self._send(status, json.dumps(obj).encode())

    def _discard(self):
        n = int(self.headers.get("Content-Length") or 0)
        left = n
        while left > 0:
            got = self.rfile.read(min(left, 1 << 20))
            if not got:
                break
            left -= len(got)
        return n - left

    def _sink(self, path, query):
        """Bench mode: resumable sessions that keep only byte counts."""
        if path == "/sink" and self.command == "PUT":
            self._discard()
            return self._json(200, {"ok": True})
        sessions, objects = SINK["sessions"], SINK["objects"]
        if path.startswith("/upload/") and self.command == "POST":
            meta = json.loads(self._body() or b"{}")
            name = query.get("name", [meta.get("name", "")])[0]
            if name in objects and query.get("ifGenerationMatch") == ["0"]:
                return self._json(412, {"error": {"code": 412, "message": "conditionNotMet"}})
            sid = secrets.token_hex(8)
            sessions[sid] = {"meta": meta, "name": name, "got": 0,
                             "total": int(self.headers.get("X-Upload-Content-Length") or 0)}
            loc = "http://127.0.0.1:%d%s?uploadType=resumable&upload_id=%s" % (self.server.server_address[1], path, sid)
            return self._send(200, b"", [("Location", loc)])
        if path.startswith("/upload/") and self.command == "PUT":
            sess = sessions.get(query.get("upload_id", [""])[0])
            if sess is None:
                self._discard()
                return self._json(404, {"error": {"code": 404, "message": "no such session"}})
            sess["got"] += self._discard()
            bump("chunk_puts")
            if sess["got"] >= sess["total"]:
                m = sess["meta"]
                obj = {"name": sess["name"], "size": str(sess["total"]), "crc32c": m.get("crc32c"),
                       "md5Hash": m.get("md5Hash"), "generation": str(time.time_ns()),
                       "metadata": m.get("metadata", {})}
                objects[sess["name"]] = obj
                return self._json(200, obj)
            return self._send(308, b"", [("Range", "bytes=0-%d" % (sess["got"] - 1))])
        if path.startswith("/storage/v1/b/") and self.command == "GET":
            self._body()
            name = urllib.parse.unquote(path.split("/o/", 1)[1]) if "/o/" in path else ""
            if name in objects:
                return self._json(200, objects[name])
            return self._json(404, {"error": {"code": 404, "message": "not found"}})
        self._body()
        return self._json(404, {"error": {"code": 404, "message": "sink: unsupported"}})

    def _route(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/token" and self.command == "POST":
            return self._token()
        if path == "/__stats":
            self._body()
            with STATE["lock"]:
                return self._json(200, dict(STATE["stats"]))
        if path == "/__control" and self.command == "POST":
            ctl = json.loads(self._body() or b"{}")
            with STATE["lock"]:
                if ctl.get("reset"):
                    STATE["stats"] = {}
                if "token_500" in ctl:
                    STATE["token_500"] = int(ctl["token_500"])
                if "fail_503" in ctl:
                    STATE["fail_503"] = int(ctl["fail_503"])
                if "token_ttl" in ctl:
                    STATE["token_ttl"] = int(ctl["token_ttl"])
            if "upload_fault" in ctl and RESUMABLE["endpoint"] is not None:
                RESUMABLE["endpoint"].arm(ctl["upload_fault"])
            return self._json(200, {"ok": True})
        public = (
            self.command in ("GET", "HEAD")
            and not path.startswith(("/storage/", "/upload/", "/download/", "/b/"))
            and path.count("/") >= 2
        )
        if CONFIG.get("sink") and path != "/token":
            if path != "/sink":
                auth = self.headers.get("Authorization", "")
                with STATE["lock"]:
                    ok = auth.startswith("Bearer ") and STATE["tokens"].get(auth[7:], 0) > time.time()
                if not ok:
                    self._discard()
                    return self._json(401, {"error": {"code": 401, "message": "missing or unknown bearer token"}})
            return self._sink(path, urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query))
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        if path.startswith("/upload/") and (query.get("uploadType") == ["resumable"] or "upload_id" in query):
            return self._resumable(path, query)
        body = self._body()
        if self.command == "GET" and (public or path.startswith("/download/") or query.get("alt") == ["media"]):
            bump("media_reads")
        bump("requests_" + self.command)
        if not public:
            auth = self.headers.get("Authorization", "")
            token = auth[7:] if auth.startswith("Bearer ") else None
            with STATE["lock"]:
                ok = STATE["tokens"].get(token, 0) > time.time()
            if not ok:
                bump("unauthorized")
                return self._json(401, {"error": {"code": 401, "message": "missing or unknown bearer token"}})
        return self._forward(path, body)

    def _resumable(self, path, query):
        """Upload requests: the body is read by the endpoint (streamed), never here."""
        bump("requests_" + self.command)
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        with STATE["lock"]:
            ok = STATE["tokens"].get(token, 0) > time.time()
            fail = STATE["fail_503"] > 0
            if fail and ok:
                STATE["fail_503"] -= 1
        if not ok:
            bump("unauthorized")
            self.close_connection = True
            return self._json(401, {"error": {"code": 401, "message": "missing or unknown bearer token"}})
        if fail:
            bump("injected_503")
            self.close_connection = True
            return self._json(503, {"error": {"code": 503, "message": "injected"}})
        return RESUMABLE["endpoint"].handle(self, path, query)

    def _token(self):
        with STATE["lock"]:
            burst = STATE["token_500"] > 0
            if burst:
                STATE["token_500"] -= 1
        if burst:
            self._body()
            bump("token_500")
            return self._json(500, {"error": "backend_error", "error_description": "injected"})
        form = urllib.parse.parse_qs(self._body().decode())
        if form.get("grant_type", [""])[0] != GRANT:
            bump("token_denied")
            return self._json(400, {"error": "unsupported_grant_type", "error_description": "grant_type"})
        reason = verify_jwt(form.get("assertion", [""])[0])
        if reason:
            bump("token_denied")
            return self._json(400, {"error": "invalid_grant", "error_description": reason})
        token = secrets.token_urlsafe(32)
        with STATE["lock"]:
            ttl = STATE["token_ttl"]
            STATE["tokens"][token] = time.time() + ttl
        bump("token_ok")
        return self._json(200, {"access_token": token, "expires_in": ttl, "token_type": "Bearer"})

    def _forward(self, path, body):
        method = "GET" if self.command == "HEAD" else self.command  # the emulator has no HEAD
        status, headers, data = self._emulator(method, self.path, body)
        self._send(status, data, headers, ctype=None)

    def _emulator(self, method, path, body, extra=None):
        conn = http.client.HTTPConnection("127.0.0.1", CONFIG["emulator_port"], timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("content-length", "connection", "transfer-encoding")}
        headers.update(extra or {})
        headers["Content-Length"] = str(len(body))
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        out = [(k, v) for k, v in resp.getheaders() if k.lower() not in ("content-length", "connection", "transfer-encoding", "date", "server")]
        conn.close()
        return resp.status, out, data

    def do_GET(self):
        self._route()

    def do_HEAD(self):
        self._route()

    def do_POST(self):
        self._route()

    def do_PUT(self):
        self._route()

    def do_DELETE(self):
        if self._stale_generation():
            return self._json(412, {"error": {"code": 412, "message": "conditionNotMet"}})
        self._route()

    def _stale_generation(self):
        """An authorized DELETE with ifGenerationMatch that the object no longer has (GCS answers
        412; the emulator ignores preconditions on delete, so the front checks)."""
        split = urllib.parse.urlsplit(self.path)
        want = urllib.parse.parse_qs(split.query).get("ifGenerationMatch")
        auth = self.headers.get("Authorization", "")
        with STATE["lock"]:
            authorized = STATE["tokens"].get(auth[7:] if auth.startswith("Bearer ") else None, 0) > time.time()
        if not want or not authorized or not split.path.startswith("/storage/"):
            return False
        bump("conditional_deletes")
        status, _, data = self._emulator("GET", split.path, b"")
        return status == 200 and json.loads(data).get("generation") != want[0]


def emulator_call(method, path, body, headers):
    """A request straight to the emulator (no auth, no counters)."""
    conn = http.client.HTTPConnection("127.0.0.1", CONFIG["emulator_port"], timeout=120)
    headers = dict(headers, **{"Content-Length": str(len(body))})
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, resp.getheaders(), data


def revoke_tokens(burst):
    """Every issued token stops working and the next `burst` token requests fail with 500."""
    with STATE["lock"]:
        STATE["tokens"].clear()
        STATE["token_500"] = burst


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--public-key", required=True)
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--client-email", default="")
    ap.add_argument("--sink", action="store_true")
    args = ap.parse_args()
    logging.disable(logging.CRITICAL)

    emulator = None
    CONFIG["sink"] = args.sink
    CONFIG["emulator_port"] = 0
    if not args.sink:
        from gcp_storage_emulator.server import create_server

        emulator = create_server("127.0.0.1", 0, in_memory=True, default_bucket=args.bucket)
        emulator.start()
        CONFIG["emulator_port"] = emulator._api._httpd.server_address[1]
        RESUMABLE["endpoint"] = resumable.Resumable(bump, emulator_call, revoke_tokens)
    with open(args.public_key, "rb") as f:
        CONFIG["public_key"] = serialization.load_pem_public_key(f.read())
    CONFIG["client_email"] = args.client_email
    front = ThreadingHTTPServer(("127.0.0.1", 0), Front)
    front.daemon_threads = True
    port = front.server_address[1]
    CONFIG["token_url"] = "http://127.0.0.1:%d/token" % port
    threading.Thread(target=front.serve_forever, daemon=True).start()
    print(json.dumps({"port": port, "emulator_port": CONFIG["emulator_port"]}), flush=True)
    sys.stdin.read()  # until the test closes our stdin (or dies)
    front.shutdown()
    if emulator is not None:
        emulator.stop()


if __name__ == "__main__":
    main()
