"""A faithful GCS resumable-upload endpoint for the loopback test stack (used by gcs_stack.py).

gcp-storage-emulator's own resumable sessions answer a status query on an empty session with
`Range: bytes=0-0` (real GCS sends no Range then) and keep the whole session in memory, so the
stack owns the protocol here and only hands the finished object to the emulator:

  POST  /upload/storage/v1/b/B/o?uploadType=resumable&name=O[&ifGenerationMatch=G]
        JSON metadata (name, contentType, crc32c, md5Hash, metadata); X-Upload-Content-Length.
        Answers 200 + Location (the session URI). 412 when the precondition already fails.
  PUT   SESSION  Content-Range: bytes */TOTAL            status query: 308 with `Range:
        bytes=0-N` of what is committed, no Range when nothing is; 200 + object when finished.
  PUT   SESSION  Content-Range: bytes A-B/TOTAL          data. A may be below the committed offset
        (the overlap is skipped), never above it. Bytes are committed in 256 KiB units except the
        last. The final byte finalizes: declared md5/crc32c are checked (400 on mismatch), then the
        preconditions (412), then the object is stored in the emulator and its resource returned.
  DELETE SESSION                                        cancels the session (499).

Received data is spooled to a temp file, and its crc32c and md5 are computed on a side thread as
it arrives (as GCS does), so finalizing costs no extra pass over the object; a byte range sent
again after a fault drops the running digests and finalize recomputes them from the file. The
finished object is handed to the emulator by the `store` callable gcs_stack.py passes in
(in-process, no re-encoding). Counters (bumped through the stack's `bump`): upload_initiations, data_requests
(also chunk_puts), status_queries, data_bytes (body bytes read from data requests), injected_503,
cuts, stalls, no_progress_308, finalize_412, checksum_rejects.

Faults are armed with `arm(dict)` from the stack's /__control {"upload_fault": {...}}; each fires
once on the first data request that reaches byte `at` of the object:
  {"kind": "503", "at": N}        commit what arrived (in 256 KiB units), answer 503, close.
  {"kind": "cut", "at": N}        commit, then drop the connection without an answer.
  {"kind": "stall", "at": N, "secs": S}  commit, stop reading for S seconds, then drop.
  {"kind": "no_progress", "at": N, "count": C}  commit up to N, read the rest without keeping it,
                                  answer 308; the next C data requests are read whole and answered
                                  308 with the same Range (nothing kept).
  {"kind": "412", "same": bool}   at finalize, first store someone else's object at the name
                                  (the same bytes, or the bytes with the last one flipped).
Any fault may add "then_token_500": K: when it fires, every issued token is revoked and the next K
token requests are answered 500 (a token-endpoint burst the resume has to ride out).
"""

import base64
import hashlib
import json
import os
import queue
import re
import secrets
import socket
import tempfile
import threading
import time
import urllib.parse

import google_crc32c

UNIT = 256 * 1024
MAX_META = 64 * 1024
READ = 1024 * 1024


class Session:
    def __init__(self, bucket, name, total, meta, preconditions):
        self.bucket = bucket
        self.name = name
        self.total = total
        self.meta = meta
        self.preconditions = preconditions
        fd, self.path = tempfile.mkstemp(prefix="gcs-session-")
        os.close(fd)
        self.committed = 0
        self.final = None  # the object resource once finalized
        self.lock = threading.Lock()
        self._reset_digests()

    def _reset_digests(self):
        old = getattr(self, "running", None)
        if old is not None:
            old.stop()
        self.running = None  # started with the first byte
        self.hashed = 0  # the running digests cover bytes [0, hashed) of the object

    def feed(self, offset, data):
        """Bytes `data` were written at `offset`: extend the running digests when they continue
        them; bytes written again below `hashed` (a resume after a fault) invalidate them."""
        if offset == self.hashed:
            if self.running is None:
                self.running = RunningDigests()
            self.running.put(data)
            self.hashed += len(data)
        elif offset < self.hashed:
            self._reset_digests()

    def digests(self):
        """(crc32c, md5) of the object's `total` bytes as GCS writes them (base64), from the
        running digests, recomputed from the spool file when they do not cover it exactly."""
        if self.hashed != self.total:
            self._reset_digests()
            with open(self.path, "rb") as f:
                left = self.total
                while left > 0:
                    block = f.read(min(left, 4 * 1024 * 1024))
                    if not block:
                        break
                    self.feed(self.hashed, block)
                    left -= len(block)
        if self.running is None:
            self.running = RunningDigests()
        crc, md5 = self.running.finish()
        self.running = None
        self.hashed = 0
        return encode_digests(crc, md5)

    def drop(self):
        self._reset_digests()
        try:
            os.unlink(self.path)
        except OSError:
            pass


class RunningDigests:
    """crc32c and md5 of a byte stream, computed on a thread of their own (hashlib releases the
    GIL on large buffers), so the thread receiving an upload only reads and writes, as a real
    server's hashing does not hold up its receiver. A short queue bounds the memory."""

    def __init__(self):
        self.crc = google_crc32c.Checksum()
        self.md5 = hashlib.md5()
        self.queue = queue.Queue(maxsize=8)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            data = self.queue.get()
            if data is None:
                return
            self.crc.update(data)
            self.md5.update(data)

    def put(self, data):
        self.queue.put(data)

    def stop(self):
        self.queue.put(None)

    def finish(self):
        """Both digests (raw bytes) once every queued byte is hashed."""
        self.queue.put(None)
        self.thread.join()
        return self.crc.digest(), self.md5.digest()


class Resumable:
    """State shared by the stack's handler threads."""

    def __init__(self, bump, emulator, tokens, store):
        self.bump = bump
        self.emulator = emulator  # (method, path, body, headers) -> (status, headers, data)
        # (bucket, name, data, meta, (crc32c, md5)) -> (status, object resource)
        self.store = store
        self.tokens = tokens  # callable: revoke all tokens and arm a token-500 burst
        self.lock = threading.Lock()
        self.sessions = {}
        self.fault = None
        self.no_progress_left = 0

    def arm(self, fault):
        with self.lock:
            self.fault = dict(fault) if fault else None
            self.no_progress_left = 0

    def _take_fault(self, kind, reached):
        with self.lock:
            f = self.fault
            if f and f.get("kind") == kind and reached >= int(f.get("at", 0)):
                self.fault = None
                return f
        return None

    def _fired(self, f):
        burst = int(f.get("then_token_500", 0))
        if burst:
            self.tokens(burst)

    # -- routing -----------------------------------------------------------------------------

    def handle(self, h, path, query):
        """Serves one /upload/ request on handler `h` (a BaseHTTPRequestHandler)."""
        if h.command == "POST" and "upload_id" not in query:
            return self._initiate(h, path, query)
        sid = query.get("upload_id", [""])[0]
        with self.lock:
            sess = self.sessions.get(sid)
        if sess is None:
            h.close_connection = True
            return reply(h, 404, {"error": {"code": 404, "message": "No such upload session"}})
        if h.command == "DELETE":
            with self.lock:
                self.sessions.pop(sid, None)
            sess.drop()
            return reply(h, 499, {"error": {"code": 499, "message": "Upload cancelled"}})
        if h.command != "PUT":
            h.close_connection = True
            return reply(h, 405, {"error": {"code": 405, "message": "method not allowed"}})
        with sess.lock:
            stall = self._put(h, sess)
        if stall:
            # The session stays usable meanwhile (status queries answer at once), as on GCS.
            time.sleep(stall)
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return None

    def _initiate(self, h, path, query):
        self.bump("upload_initiations")
        n = int(h.headers.get("Content-Length") or 0)
        if n > MAX_META:
            h.close_connection = True
            return reply(h, 413, {"error": {"code": 413, "message": "metadata too large"}})
        raw = h.rfile.read(n) if n else b""
        try:
            meta = json.loads(raw or b"{}")
        except ValueError:
            return reply(h, 400, {"error": {"code": 400, "message": "metadata is not JSON"}})
        bucket = path.split("/")[5]
        name = query.get("name", [meta.get("name", "")])[0]
        total = h.headers.get("X-Upload-Content-Length")
        pre = {k: query[k][0] for k in ("ifGenerationMatch",) if k in query}
        if self._precondition_fails(bucket, name, pre):
            return reply(h, 412, {"error": {"code": 412, "message": "conditionNotMet"}})
        sess = Session(bucket, name, int(total) if total is not None else None, meta, pre)
        sid = secrets.token_urlsafe(24)
        with self.lock:
            self.sessions[sid] = sess
            override = (self.fault or {}).get("location") if (self.fault or {}).get("kind") == "location" else None
            if override:
                self.fault = None
        base = override or "http://127.0.0.1:%d" % h.server.server_address[1]
        loc = "%s/upload/storage/v1/b/%s/o?uploadType=resumable&upload_id=%s" % (
            base, urllib.parse.quote(bucket, safe=""), sid)
        return reply(h, 200, b"", [("Location", loc)])

    # -- data and status ------------------------------------------------------------------------

    def _put(self, h, sess):
        rng = h.headers.get("Content-Range", "")
        length = int(h.headers.get("Content-Length") or 0)
        m = re.fullmatch(r"bytes \*/(\d+|\*)", rng.strip())
        if m:
            self.bump("status_queries")
            drain(h, length)
            if sess.final is not None:
                return reply(h, 200, sess.final)
            if m.group(1) != "*":
                sess.total = int(m.group(1))
                if sess.committed == sess.total:
                    return self._finalize(h, sess)
            return self._incomplete(h, sess)
        m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", rng.strip())
        if not m:
            h.close_connection = True
            return reply(h, 400, {"error": {"code": 400, "message": "bad Content-Range %r" % rng}})
        self.bump("data_requests")
        self.bump("chunk_puts")
        if sess.final is not None:
            drain(h, length)
            return reply(h, 200, sess.final)
        first, last = int(m.group(1)), int(m.group(2))
        if m.group(3) != "*":
            sess.total = int(m.group(3))
        if last - first + 1 != length:
            h.close_connection = True
            return reply(h, 400, {"error": {"code": 400, "message": "Content-Range and Content-Length disagree"}})
        if first > sess.committed:
            h.close_connection = True
            return reply(h, 400, {"error": {"code": 400, "message": "Invalid request. According to the Content-Range header, the upload offset is %d byte(s), which exceeds already uploaded size of %d byte(s)." % (first, sess.committed)}})
        with self.lock:
            if self.no_progress_left > 0:
                self.no_progress_left -= 1
                stuck = True
            else:
                stuck = False
        if stuck:
            # Read and drop the body (counted: the client did send it), keep nothing new.
            self.bump("no_progress_308")
            got = drain(h, length)
            self.bump("data_bytes", got)
            return self._incomplete(h, sess)
        pos = first  # absolute offset of the next body byte
        written = sess.committed  # bytes of the object on disk (contiguous)
        with open(sess.path, "r+b") as out:
            out.seek(written)

            def keep(got, pos, written):
                if pos + len(got) > written:
                    new = got[max(0, written - pos):]
                    out.write(new)
                    sess.feed(written, new)
                    written = pos + len(got)
                return written

            left = length
            while left > 0:
                want = min(left, READ)
                # Faults fire at their offset, whatever the request's chunking.
                for kind in ("503", "cut", "stall", "no_progress"):
                    f = self._take_fault(kind, pos + want)
                    if f is None:
                        continue
                    take = max(0, int(f.get("at", 0)) - pos)
                    got = h.rfile.read(take) if take else b""
                    self.bump("data_bytes", len(got))
                    written = keep(got, pos, written)
                    out.flush()
                    sess.committed = max(sess.committed, written // UNIT * UNIT)
                    self._fired(f)
                    return self._fault(h, sess, f, left - len(got))
                got = h.rfile.read(want)
                if not got:
                    break
                self.bump("data_bytes", len(got))
                left -= len(got)
                written = keep(got, pos, written)
                pos += len(got)
                # Whole units count as persisted as they arrive (as GCS persists them).
                sess.committed = written if written == sess.total else written // UNIT * UNIT
            out.flush()
        if left > 0:  # the client went away mid-body
            h.close_connection = True
            return None
        sess.committed = written if (written == sess.total or written % UNIT == 0) else written // UNIT * UNIT
        if sess.total is not None and sess.committed == sess.total:
            return self._finalize(h, sess)
        return self._incomplete(h, sess)

    def _fault(self, h, sess, f, unread):
        kind = f["kind"]
        if kind == "no_progress":
            # A well-formed partial accept: the rest of the body is read (and counted) but not
            # kept, so the client reliably sees the 308 rather than a reset connection.
            self.bump("data_bytes", drain(h, unread))
            with self.lock:
                self.no_progress_left = int(f.get("count", 3))
            return self._incomplete(h, sess)
        h.close_connection = True
        if kind == "503":
            self.bump("injected_503")
            return reply(h, 503, {"error": {"code": 503, "message": "injected: backend error"}})
        if kind == "stall":
            self.bump("stalls")
            return float(f.get("secs", 5))  # handle() sleeps without the session lock
        self.bump("cuts")
        try:
            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return None

    def _incomplete(self, h, sess):
        headers = [("Range", "bytes=0-%d" % (sess.committed - 1))] if sess.committed else []
        return reply(h, 308, b"", headers)

    # -- finalize -------------------------------------------------------------------------------

    def _finalize(self, h, sess):
        crc, md5 = sess.digests()
        want_crc, want_md5 = sess.meta.get("crc32c"), sess.meta.get("md5Hash")
        if (want_crc and want_crc != crc) or (want_md5 and want_md5 != md5):
            self.bump("checksum_rejects")
            self._forget(sess)
            which = "CRC32C" if want_crc and want_crc != crc else "MD5"
            theirs = want_crc if which == "CRC32C" else want_md5
            ours = crc if which == "CRC32C" else md5
            return reply(h, 400, {"error": {"code": 400, "message": "Provided %s \"%s\" doesn't match calculated %s \"%s\"." % (which, theirs, which, ours)}})
        data = read_file(sess.path, sess.total)
        f = self._take_fault("412", 0)
        if f is not None:
            other = data if f.get("same") else data[:-1] + bytes([data[-1] ^ 0xFF])
            self._store(sess.bucket, sess.name, other, {"contentType": sess.meta.get("contentType", "application/octet-stream"), "metadata": sess.meta.get("metadata", {})})
            self._fired(f)
        if self._precondition_fails(sess.bucket, sess.name, sess.preconditions):
            self.bump("finalize_412")
            self._forget(sess)
            return reply(h, 412, {"error": {"code": 412, "message": "At least one of the pre-conditions you specified did not hold."}})
        meta = {k: sess.meta[k] for k in ("contentType", "metadata", "crc32c", "md5Hash") if k in sess.meta}
        status, obj = self._store(sess.bucket, sess.name, data, meta, (crc, md5))
        if status != 200:
            self._forget(sess)
            return reply(h, 500, {"error": {"code": 500, "message": "emulator refused the object: %r" % obj}})
        sess.final = obj
        sess.drop()
        return reply(h, 200, obj)

    def _forget(self, sess):
        with self.lock:
            for k, v in list(self.sessions.items()):
                if v is sess:
                    del self.sessions[k]
        sess.drop()

    def _precondition_fails(self, bucket, name, pre):
        if "ifGenerationMatch" not in pre:
            return False
        status, _, data = self.emulator(
            "GET", "/storage/v1/b/%s/o/%s" % (bucket, urllib.parse.quote(name, safe="")), b"", {})
        if status != 200:
            return pre["ifGenerationMatch"] != "0"
        gen = json.loads(data).get("generation")
        return pre["ifGenerationMatch"] != str(gen)

    def _store(self, bucket, name, data, meta, digests=None):
        """Hands `data` to the emulator through the stack's `store`; `digests` = (crc32c, md5)
        when already known (computed here otherwise)."""
        if digests is None:
            digests = encode_digests(google_crc32c.Checksum(data).digest(), hashlib.md5(data).digest())
        return self.store(bucket, name, data, dict(meta), digests)


def encode_digests(crc, md5):
    """Raw crc32c and md5 digests as GCS writes them (base64)."""
    return base64.b64encode(crc).decode(), base64.b64encode(md5).decode()


def read_file(path, n):
    with open(path, "rb") as f:
        return f.read(n)


def drain(h, n):
    """Reads and drops up to `n` body bytes; returns how many arrived."""
    total = 0
    while n > 0:
        got = h.rfile.read(min(n, READ))
        if not got:
            break
        n -= len(got)
        total += len(got)
    return total


def reply(h, status, body, headers=None):
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        headers = (headers or []) + [("Content-Type", "application/json")]
    h.send_response(status)
    for k, v in headers or []:
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(body)))
    if h.close_connection:
        h.send_header("Connection", "close")
    h.end_headers()
    h.wfile.write(body)
    return None
