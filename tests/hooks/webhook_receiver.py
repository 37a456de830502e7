#!/usr/bin/python3
"""A webhook receiver for sluice's hook tests: what a careful receiver does.

It verifies Standard Webhooks' asymmetric signature (webhook-signature
"v1a,<base64 Ed25519 signature>" over "{webhook-id}.{webhook-timestamp}.{body}")
with the public key of the hook's sluice key (`sluice key export NAME --openssh`),
refuses a timestamp outside its tolerance (replays), answers a webhook-id it has
already accepted without processing it again, and records every request as one
JSON line in --log: {"event": "accepted"|"duplicate"|"rejected"|"stalled"|"failed",
"id", "timestamp", "signature", "reason", "body"}.

  webhook_receiver.py --pubkey FILE --port-file FILE --log FILE
                      [--tolerance SECONDS] [--stall-first N] [--fail-first N]

--stall-first N: the first N valid requests are recorded as "stalled" and never
answered (the test kills the sender meanwhile). --fail-first N: the first N
valid requests are answered 503. Prints "listening on 127.0.0.1:PORT" and
writes PORT to --port-file (atomically) once it accepts connections.
"""
import argparse
import base64
import json
import os
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey


def openssh_ed25519(line):
    """The 32-byte key of an "ssh-ed25519 AAAA... comment" line."""
    parts = line.split()
    if len(parts) < 2 or parts[0] != "ssh-ed25519":
        raise ValueError("not an ssh-ed25519 public key line")
    blob = base64.b64decode(parts[1])
    fields, i = [], 0
    while i < len(blob):
        (n,) = struct.unpack(">I", blob[i:i + 4])
        fields.append(blob[i + 4:i + 4 + n])
        i += 4 + n
    if len(fields) != 2 or fields[0] != b"ssh-ed25519" or len(fields[1]) != 32:
        raise ValueError("malformed ssh-ed25519 key blob")
    return fields[1]


class State:
    def __init__(self, args, key):
        self.args = args
        self.key = VerifyKey(key)
        self.lock = threading.Lock()
        self.seen = set()
        self.valid = 0

    def log(self, **event):
        with self.lock:
            with open(self.args.log, "a", encoding="utf-8") as f:
                f.write(json.dumps(event, sort_keys=True) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def answer(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        st = self.server.state
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n)
        wid = self.headers.get("webhook-id")
        wts = self.headers.get("webhook-timestamp")
        wsig = self.headers.get("webhook-signature")
        body = raw.decode("utf-8", "replace")

        def reject(code, reason):
            st.log(event="rejected", id=wid, timestamp=wts, signature=wsig, reason=reason, body=body)
            self.answer(code, {"error": reason})

        if not wid or not wts or not wsig:
            return reject(400, "missing webhook-id, webhook-timestamp or webhook-signature")
        try:
            ts = int(wts)
        except ValueError:
            return reject(400, "webhook-timestamp is not an integer")
        if abs(time.time() - ts) > st.args.tolerance:
            return reject(400, "timestamp outside tolerance (a replay?)")
        signed = wid.encode() + b"." + wts.encode() + b"." + raw
        good = False
        for s in wsig.split(" "):
            ver, _, sig = s.partition(",")
            if ver != "v1a":
                continue
            try:
                st.key.verify(signed, base64.b64decode(sig))
                good = True
                break
            except (BadSignatureError, ValueError):
                continue
        if not good:
            return reject(401, "no valid v1a signature")
        try:
            event = json.loads(raw)
        except ValueError:
            return reject(400, "body is not JSON")
        if event.get("id") != wid:
            return reject(400, "body id differs from webhook-id")
        with st.lock:
            st.valid += 1
            k = st.valid
        if k <= st.args.stall_first:
            st.log(event="stalled", id=wid, timestamp=wts, signature=wsig, body=body)
            time.sleep(3600)
            return
        if k <= st.args.stall_first + st.args.fail_first:
            st.log(event="failed", id=wid, timestamp=wts, signature=wsig, body=body)
            return self.answer(503, {"error": "try later"})
        with st.lock:
            dup = wid in st.seen
            st.seen.add(wid)
        if dup:
            st.log(event="duplicate", id=wid, timestamp=wts, signature=wsig, body=body)
            return self.answer(200, {"duplicate": True})
        st.log(event="accepted", id=wid, timestamp=wts, signature=wsig, body=body)
        self.answer(200, {"accepted": wid})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pubkey", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--tolerance", type=float, default=300)
    ap.add_argument("--stall-first", type=int, default=0)
    ap.add_argument("--fail-first", type=int, default=0)
    args = ap.parse_args()
    with open(args.pubkey, encoding="utf-8") as f:
        key = openssh_ed25519(f.read().strip())
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.state = State(args, key)
    port = srv.server_address[1]
    tmp = args.port_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("%d\n" % port)
    os.rename(tmp, args.port_file)
    print("listening on 127.0.0.1:%d" % port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
