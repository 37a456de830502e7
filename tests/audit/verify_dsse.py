#!/usr/bin/python3
"""A second implementation of DSSE v1 verification, written from the DSSE
specification (secure-systems-lab/dsse, protocol.md and envelope.md) and
the OpenSSH public key format (RFC 8709 / PROTOCOL.key), not from sluice.

usage: verify_dsse.py --pubkey "ssh-ed25519 AAAA... name" [--checkout DIR]
                      [--sums OUT] ENVELOPE...

For each envelope: the payloadType is in-toto's, a signature whose keyid
is the key's SHA256 fingerprint verifies over PAE(payloadType, payload)
with Ed25519, the payload is an in-toto Statement v1, and the same
envelope with one payload byte flipped does not verify. With --checkout,
each subject of an SLSA provenance statement has the sha256 and
BLAKE2b-256 of DIR/<name>, and every file of DIR but B2SUMS is a subject;
--sums writes the subjects as sha256sum lines for `sha256sum -c`.
Exit 0 when everything holds; 1 with a message otherwise.
"""
import argparse
import base64
import hashlib
import json
import os
import struct
import sys

import nacl.exceptions
import nacl.signing

INTOTO = "application/vnd.in-toto+json"


def pae(payload_type: bytes, payload: bytes) -> bytes:
    """PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body,
    LEN as ASCII decimal, no leading zeros."""
    return b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type, len(payload), payload)


def fail(msg):
    print("verify_dsse: " + msg, file=sys.stderr)
    sys.exit(1)


def ssh_ed25519(line):
    """The 32-byte key and the blob of an OpenSSH "ssh-ed25519 BASE64" line."""
    parts = line.split()
    if len(parts) < 2 or parts[0] != "ssh-ed25519":
        fail("not an ssh-ed25519 public key line")
    blob = base64.b64decode(parts[1], validate=True)
    fields, off = [], 0
    while off < len(blob):
        if off + 4 > len(blob):
            fail("truncated key blob")
        (n,) = struct.unpack(">I", blob[off:off + 4])
        off += 4
        if off + n > len(blob):
            fail("truncated key blob")
        fields.append(blob[off:off + n])
        off += n
    if len(fields) != 2 or fields[0] != b"ssh-ed25519" or len(fields[1]) != 32:
        fail("key blob is not string 'ssh-ed25519', string key[32]")
    return fields[1], blob


def b64(s):
    # DSSE allows standard or URL-safe base64.
    s = s.replace("-", "+").replace("_", "/")
    return base64.b64decode(s + "=" * (-len(s) % 4), validate=True)


def verifies(vk, ptype, payload, sig):
    try:
        vk.verify(pae(ptype, payload), sig)
        return True
    except nacl.exceptions.BadSignatureError:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pubkey", required=True)
    ap.add_argument("--checkout")
    ap.add_argument("--sums")
    ap.add_argument("envelopes", nargs="+")
    a = ap.parse_args()

    # The specification's test vector.
    want = b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    if pae(b"http://example.com/HelloWorld", b"hello world") != want:
        fail("PAE test vector mismatch")

    pk, blob = ssh_ed25519(a.pubkey)
    fp = "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    vk = nacl.signing.VerifyKey(pk)
    sums = []
    for path in a.envelopes:
        with open(path, "rb") as f:
            env = json.loads(f.read())
        if set(env) != {"payload", "payloadType", "signatures"}:
            fail("%s: envelope fields are %s" % (path, sorted(env)))
        if env["payloadType"] != INTOTO:
            fail("%s: payloadType %r" % (path, env["payloadType"]))
        payload = b64(env["payload"])
        ptype = env["payloadType"].encode("utf-8")
        mine = [s for s in env["signatures"] if s.get("keyid") == fp]
        if not mine:
            fail("%s: no signature with keyid %s" % (path, fp))
        sig = b64(mine[0]["sig"])
        if not verifies(vk, ptype, payload, sig):
            fail("%s: signature does not verify" % path)
        flipped = bytearray(payload)
        flipped[len(flipped) // 2] ^= 1
        if verifies(vk, ptype, bytes(flipped), sig):
            fail("%s: a flipped payload byte still verifies" % path)
        st = json.loads(payload)
        if st.get("_type") != "https://in-toto.io/Statement/v1" or not st.get("subject"):
            fail("%s: not an in-toto Statement v1" % path)
        if st.get("predicateType") == "https://slsa.dev/provenance/v1" and a.checkout:
            names = set()
            for s in st["subject"]:
                name, d = s["name"], s["digest"]
                full = os.path.join(a.checkout, name)
                with open(full, "rb") as f:
                    data = f.read()
                if hashlib.sha256(data).hexdigest() != d["sha256"]:
                    fail("%s: sha256 of %s differs" % (path, name))
                if hashlib.blake2b(data, digest_size=32).hexdigest() != d["blake2b256"]:
                    fail("%s: blake2b256 of %s differs" % (path, name))
                names.add(name)
                sums.append("%s  %s\n" % (d["sha256"], name))
            on_disk = set()
            for root, _, files in os.walk(a.checkout):
                for fn in files:
                    rel = os.path.relpath(os.path.join(root, fn), a.checkout)
                    if rel != "B2SUMS":
                        on_disk.add(rel)
            if on_disk != names:
                fail("%s: subjects %s, files %s" % (path, sorted(names), sorted(on_disk)))
        print("ok %s %s %d subjects" % (os.path.basename(path), st["predicateType"],
                                         len(st["subject"])))
    if a.sums:
        with open(a.sums, "w") as f:
            f.writelines(sums)
    return 0


if __name__ == "__main__":
    sys.exit(main())
