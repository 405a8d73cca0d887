#!/usr/bin/env python3
"""Loopback GCS test stack: a token endpoint that really verifies RS256 JWTs, and an
auth-checking, fault-injecting reverse proxy in front of gcp-storage-emulator.

Usage: gcs_stack.py --public-key PEM --bucket NAME [--client-email EMAIL] [--sink]

Everything binds to 127.0.0.1 on ephemeral ports. Prints one JSON line
{"port": P, "emulator_port": E} once ready, then serves until stdin closes.

Routes on the front port:
  POST /token            jwt-bearer exchange; the JWT's signature is checked with the public
                         key, plus iss/aud/scope/iat/exp; issues a random bearer token.
                         grant_type=refresh_token (authorized_user): checks client id and
                         secret (form or HTTP Basic) and the refresh token against the "user"
                         fake.
  POST /sts/v1/token     RFC 8693 token exchange (Workload Identity Federation): checks the
                         subject token, its type and the audience against the "sts" fake.
  POST /v1/projects/-/serviceAccounts/EMAIL:generateAccessToken
                         IAM Credentials: the bearer must be an issued token with scope
                         cloud-platform, EMAIL the "iam" fake's target, the body's scope list
                         must hold devstorage.read_write.
  GET  /computeMetadata/v1/instance/service-accounts/default/token
                         metadata server (reached through GCE_METADATA_HOST): refuses a request
                         without "Metadata-Flavor: Google" (403); answers with that header.
  GET  /oidc/token       an OIDC token URL like GitHub Actions': needs "Authorization: Bearer
                         <request_token>" of the "oidc" fake, answers {"value": <token>}.
  Fakes are configured with POST /__control {"fakes": {"user": {...}, "sts": {...}, "iam":
  {...}, "oidc": {...}}}. Every issued token records its kind (key, user, sts, impersonated,
  metadata); storage requests count authorized_<kind>.
  GET  /__tokens         every token issued so far (tests check none leaked).
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
    "tokens": {},  # token -> (expiry, kind, scope)
    "fakes": {},
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
    scopes = str(claims.get("scope", "")).split()
    if SCOPE not in scopes and "https://www.googleapis.com/auth/cloud-platform" not in scopes:
        return "scope lacks devstorage.read_write (or cloud-platform)"
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int) or not isinstance(exp, int):
        return "iat/exp missing"
    if iat > now + 60 or exp <= now or exp - iat > 3600:
        return "iat/exp out of range"
    return None


def issue(kind, scope):
    token = secrets.token_urlsafe(32)
    with STATE["lock"]:
        ttl = STATE["token_ttl"]
        STATE["tokens"][token] = (time.time() + ttl, kind, scope)
    bump(kind + "_token_ok")
    return token, ttl


def token_info(auth):
    """(kind, scope) of a valid bearer token in an Authorization header, else None."""
    if not auth.startswith("Bearer "):
        return None
    with STATE["lock"]:
        info = STATE["tokens"].get(auth[7:])
    if info is None or info[0] <= time.time():
        return None
    return info[1], info[2]


def fake(name):
    with STATE["lock"]:
        return dict(STATE["fakes"].get(name) or {})


class Front(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # A reply's headers and body leave in two writes; with Nagle on, the body waits for the
    # client's delayed ACK of the headers (~40 ms per small request), which GCS does not add.
    disable_nagle_algorithm = True

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
        if path == "/sts/v1/token" and self.command == "POST":
            return self._sts()
        if path.startswith("/v1/projects/-/serviceAccounts/") and self.command == "POST":
            return self._iam(path)
        if path == "/computeMetadata/v1/instance/service-accounts/default/token":
            return self._metadata()
        if path == "/oidc/token" and self.command == "GET":
            return self._oidc()
        if path == "/__tokens":
            self._body()
            with STATE["lock"]:
                return self._json(200, sorted(STATE["tokens"]))
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
                if "fakes" in ctl:
                    STATE["fakes"].update(ctl["fakes"])
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
                if token_info(self.headers.get("Authorization", "")) is None:
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
            info = token_info(self.headers.get("Authorization", ""))
            if info is None:
                bump("unauthorized")
                return self._json(401, {"error": {"code": 401, "message": "missing or unknown bearer token"}})
            bump("authorized_" + info[0])
        return self._forward(path, body)

    def _resumable(self, path, query):
        """Upload requests: the body is read by the endpoint (streamed), never here."""
        bump("requests_" + self.command)
        info = token_info(self.headers.get("Authorization", ""))
        ok = info is not None
        if ok:
            bump("authorized_" + info[0])
        with STATE["lock"]:
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
        grant = form.get("grant_type", [""])[0]
        if grant == "refresh_token":
            return self._refresh(form)
        if grant != GRANT:
            bump("token_denied")
            return self._json(400, {"error": "unsupported_grant_type", "error_description": "grant_type"})
        reason = verify_jwt(form.get("assertion", [""])[0])
        if reason:
            bump("token_denied")
            return self._json(400, {"error": "invalid_grant", "error_description": reason})
        scope = form.get("scope", [""])[0]
        claims = json.loads(b64url_decode(form["assertion"][0].split(".")[1]))
        token, ttl = issue("key", claims.get("scope", scope))
        bump("token_ok")
        return self._json(200, {"access_token": token, "expires_in": ttl, "token_type": "Bearer"})

    def _refresh(self, form):
        """authorized_user: refresh token + OAuth client id and secret."""
        want = fake("user")
        cid, secret = form.get("client_id", [""])[0], form.get("client_secret", [""])[0]
        basic = self.headers.get("Authorization", "")
        if basic.startswith("Basic "):
            cid, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
        if not want or cid != want.get("client_id") or secret != want.get("client_secret"):
            bump("user_denied")
            return self._json(401, {"error": "invalid_client", "error_description": "client id or secret"})
        if form.get("refresh_token", [""])[0] != want.get("refresh_token"):
            bump("user_denied")
            return self._json(400, {"error": "invalid_grant", "error_description": "refresh token"})
        token, ttl = issue("user", SCOPE + " https://www.googleapis.com/auth/cloud-platform")
        return self._json(200, {"access_token": token, "expires_in": ttl, "token_type": "Bearer",
                                "scope": "https://www.googleapis.com/auth/cloud-platform"})

    def _sts(self):
        """STS token exchange: subject token, its type and the audience must match the fake."""
        form = urllib.parse.parse_qs(self._body().decode())
        want = fake("sts")
        got = {k: form.get(k, [""])[0] for k in ("grant_type", "audience", "subject_token",
                                                  "subject_token_type", "requested_token_type", "scope")}
        problems = []
        if got["grant_type"] != "urn:ietf:params:oauth:grant-type:token-exchange":
            problems.append("grant_type")
        if got["requested_token_type"] != "urn:ietf:params:oauth:token-type:access_token":
            problems.append("requested_token_type")
        if not want or got["audience"] != want.get("audience"):
            problems.append("audience")
        if got["subject_token"] != want.get("subject_token"):
            problems.append("subject_token")
        if got["subject_token_type"] != want.get("subject_token_type"):
            problems.append("subject_token_type")
        if not got["scope"]:
            problems.append("scope")
        if problems:
            bump("sts_denied")
            return self._json(400, {"error": "invalid_request", "error_description": "bad " + ", ".join(problems)})
        token, ttl = issue("sts", got["scope"])
        return self._json(200, {"access_token": token, "expires_in": ttl, "token_type": "Bearer",
                                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"})

    def _iam(self, path):
        """IAM Credentials generateAccessToken: checks the source token and the target."""
        body = json.loads(self._body() or b"{}")
        want = fake("iam")
        target = urllib.parse.unquote(path.split("/serviceAccounts/", 1)[1])
        if not target.endswith(":generateAccessToken"):
            return self._json(404, {"error": {"code": 404, "message": "unknown IAM method"}})
        target = target[: -len(":generateAccessToken")]
        info = token_info(self.headers.get("Authorization", ""))
        if info is None:
            bump("iam_denied")
            return self._json(401, {"error": {"code": 401, "message": "source token missing or unknown"}})
        kinds = want.get("source_kinds")
        if "https://www.googleapis.com/auth/cloud-platform" not in info[1].split() or (kinds and info[0] not in kinds):
            bump("iam_denied")
            return self._json(403, {"error": {"code": 403, "message": "source token lacks cloud-platform scope or is of kind " + info[0]}})
        if not want or target != want.get("target"):
            bump("iam_denied")
            return self._json(403, {"error": {"code": 403, "message": "permission denied on target " + target}})
        if SCOPE not in body.get("scope", []):
            bump("iam_denied")
            return self._json(400, {"error": {"code": 400, "message": "scope lacks devstorage.read_write"}})
        bump("iam_source_" + info[0])
        token, ttl = issue("impersonated", " ".join(body["scope"]))
        expire = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + ttl))
        return self._json(200, {"accessToken": token, "expireTime": expire})

    def _metadata(self):
        self._body()
        if self.headers.get("Metadata-Flavor") != "Google":
            bump("metadata_denied")
            return self._send(403, b"Missing Metadata-Flavor:Google header.", [("Metadata-Flavor", "Google")], ctype="text/plain")
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        scope = query.get("scopes", ["https://www.googleapis.com/auth/cloud-platform"])[0].replace(",", " ")
        token, ttl = issue("metadata", scope)
        return self._send(200, json.dumps({"access_token": token, "expires_in": ttl, "token_type": "Bearer"}).encode(),
                          [("Metadata-Flavor", "Google")])

    def _oidc(self):
        self._body()
        want = fake("oidc")
        if not want or self.headers.get("Authorization") != "Bearer " + want.get("request_token", ""):
            bump("oidc_denied")
            return self._json(401, {"message": "bad request token"})
        bump("oidc_ok")
        return self._json(200, {"count": 1, "value": want["token"]})

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
        authorized = token_info(self.headers.get("Authorization", "")) is not None
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


def direct_store(emulator):
    """The resumable endpoint's hand-over of a finished object straight into the emulator's
    storage, in this process: the object resource is built by the emulator's own code, with the
    digests the endpoint computed while the bytes arrived. The emulator's multipart route would
    base64 the object into a MIME body that its line-based parser takes over ten seconds per
    100 MiB to read back, a cost no real GCS has and that would swamp what the benchmarks compare. Every
    request the emulator serves and every hand-over hold one lock, as the emulator's storage is
    not thread-safe. Stops the stack when this emulator version lacks the internals used
    (scripts/install-tools.sh pins the version that has them)."""
    try:
        from gcp_storage_emulator import server as emu_server
        from gcp_storage_emulator.handlers import objects as emu_objects

        storage = emulator._storage
        make_resource = emu_objects._make_object_resource
        handle = emu_server.Router.handle
        storage.buckets  # noqa: B018 (probed here, read at each hand-over)
    except (ImportError, AttributeError) as e:
        raise SystemExit("gcs_stack: this gcp-storage-emulator lacks the internals the stack "
                         "stores objects through (%s); install the version "
                         "scripts/install-tools.sh pins" % e)
    lock = threading.Lock()

    def locked_handle(router, method):
        with lock:
            return handle(router, method)

    emu_server.Router.handle = locked_handle
    base_url = "http://127.0.0.1:%d" % CONFIG["emulator_port"]

    def store(bucket, name, data, meta, digests):
        with lock:
            if bucket not in storage.buckets:
                return 404, {"error": {"code": 404, "message": "No such bucket"}}
            content_type = meta.pop("contentType", None) or "application/octet-stream"
            obj = make_resource(base_url, bucket, name, content_type, str(len(data)), meta)
            obj["metageneration"] = "1"  # a new object (the helper counts `meta` as a patch)
            obj["crc32c"], obj["md5Hash"] = digests
            obj["etag"] = digests[1]
            storage.create_file(bucket, name, data, obj)
            return 200, obj

    return store


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
        RESUMABLE["endpoint"] = resumable.Resumable(bump, emulator_call, revoke_tokens,
                                                     direct_store(emulator))
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
