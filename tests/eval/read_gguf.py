#!/usr/bin/python3
"""
tests/eval/read_gguf.py - an independent GGUF reader for the export tests:
parses a file per the GGUF v3 specification (ggml docs/gguf.md) with the
standard library alone and prints it as JSON:

  {"version", "tensor_count", "kv_count", "alignment", "data_start",
   "data_end", "file_size",
   "metadata": {key: {"type": TYPE, "value": V}},
   "tensors": [{"name", "dims" (ne order, ne[0] fastest), "type", "offset",
                "nbytes", "data": [values, row-major in ne order]}]}

It shares no code with the writer. Anything it does not understand, or
that breaks the specification, is rejected: exit status 1 and one line on
stderr naming the byte offset and the rule. Usage: read_gguf.py FILE [--no-data]
"""
import json
import struct
import sys

VALUE_TYPES = {
    0: ("UINT8", "<B", 1), 1: ("INT8", "<b", 1), 2: ("UINT16", "<H", 2),
    3: ("INT16", "<h", 2), 4: ("UINT32", "<I", 4), 5: ("INT32", "<i", 4),
    6: ("FLOAT32", "<f", 4), 7: ("BOOL", None, 1), 8: ("STRING", None, None),
    9: ("ARRAY", None, None), 10: ("UINT64", "<Q", 8), 11: ("INT64", "<q", 8),
    12: ("FLOAT64", "<d", 8),
}
# ggml types this reader decodes: name, struct code, bytes per element
GGML_TYPES = {0: ("F32", "<f", 4), 1: ("F16", "<e", 2)}
MAX_DIMS = 4
MAX_NAME = 63  # GGML_MAX_NAME (64) with its NUL


class Reject(Exception):
    pass


class Cursor:
    def __init__(self, buf):
        self.buf = buf
        self.pos = 0

    def take(self, n, what):
        if n < 0 or self.pos + n > len(self.buf):
            raise Reject("at byte %d: %s needs %d bytes, %d remain"
                         % (self.pos, what, n, len(self.buf) - self.pos))
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt, what):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]

    def string(self, what):
        n = self.unpack("<Q", what + " length")
        at = self.pos
        raw = self.take(n, what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Reject("at byte %d: %s is not UTF-8" % (at, what))


def read_value(c, vtype, what, depth=0):
    if vtype not in VALUE_TYPES:
        raise Reject("at byte %d: %s has unknown value type %d" % (c.pos, what, vtype))
    name, fmt, _ = VALUE_TYPES[vtype]
    if name == "STRING":
        return c.string(what)
    if name == "BOOL":
        at = c.pos
        b = c.unpack("<B", what)
        if b not in (0, 1):
            raise Reject("at byte %d: %s is a bool of value %d" % (at, what, b))
        return bool(b)
    if name == "ARRAY":
        if depth > 8:
            raise Reject("at byte %d: %s nests arrays too deeply" % (c.pos, what))
        etype = c.unpack("<I", what + " element type")
        n = c.unpack("<Q", what + " length")
        if n > len(c.buf) - c.pos:
            raise Reject("at byte %d: %s claims %d elements, more than the bytes left"
                         % (c.pos, what, n))
        return {"type": VALUE_TYPES.get(etype, ("?",))[0],
                "values": [read_value(c, etype, what + "[]", depth + 1) for _ in range(n)]}
    return c.unpack(fmt, what)


def parse(buf, with_data=True):
    c = Cursor(buf)
    magic = c.take(4, "magic")
    if magic != b"GGUF":
        raise Reject("at byte 0: magic is %r, not b'GGUF'" % magic)
    version = c.unpack("<I", "version")
    if version != 3:
        raise Reject("at byte 4: version %d (this reader knows 3)" % version)
    n_tensors = c.unpack("<Q", "tensor count")
    n_kv = c.unpack("<Q", "metadata count")
    # Each kv takes at least 8 + 4 bytes and each tensor info 8 + 4 + 4 + 8.
    if n_kv * 12 > len(buf) or n_tensors * 24 > len(buf):
        raise Reject("at byte 8: %d tensors / %d metadata entries cannot fit in %d bytes"
                     % (n_tensors, n_kv, len(buf)))
    meta = {}
    for _ in range(n_kv):
        at = c.pos
        key = c.string("metadata key")
        if not key or not key.isascii() or key in meta:
            raise Reject("at byte %d: metadata key %r is empty, not ASCII or repeated"
                         % (at, key))
        vtype = c.unpack("<I", "type of " + key)
        value = read_value(c, vtype, key)
        meta[key] = {"type": VALUE_TYPES[vtype][0], "value": value}
    alignment = 32
    if "general.alignment" in meta:
        a = meta["general.alignment"]
        if a["type"] != "UINT32" or a["value"] == 0 or a["value"] % 8:
            raise Reject("general.alignment must be a UINT32 multiple of 8, not %r" % (a,))
        alignment = a["value"]
    tensors = []
    names = set()
    for i in range(n_tensors):
        at = c.pos
        name = c.string("tensor %d name" % i)
        if not name or len(name.encode()) > MAX_NAME or name in names:
            raise Reject("at byte %d: tensor name %r is empty, longer than %d bytes or "
                         "repeated" % (at, name, MAX_NAME))
        names.add(name)
        nd = c.unpack("<I", name + " n_dims")
        if nd == 0 or nd > MAX_DIMS:
            raise Reject("at byte %d: tensor %s has %d dimensions (1 to %d)"
                         % (c.pos - 4, name, nd, MAX_DIMS))
        dims = [c.unpack("<Q", name + " dimension") for _ in range(nd)]
        ttype = c.unpack("<I", name + " type")
        if ttype not in GGML_TYPES:
            raise Reject("at byte %d: tensor %s has ggml type %d, which this reader does "
                         "not decode" % (c.pos - 4, name, ttype))
        offset = c.unpack("<Q", name + " offset")
        if offset % alignment:
            raise Reject("at byte %d: tensor %s offset %d is not a multiple of %d"
                         % (c.pos - 8, name, offset, alignment))
        count = 1
        for d in dims:
            count *= d
        tensors.append({"name": name, "dims": dims, "type": GGML_TYPES[ttype][0],
                        "offset": offset, "nbytes": count * GGML_TYPES[ttype][2],
                        "_code": ttype, "_count": count})
    data_start = c.pos + (alignment - c.pos % alignment) % alignment
    pad = c.take(data_start - c.pos, "padding before the tensor data")
    if pad.strip(b"\0"):
        raise Reject("at byte %d: padding before the tensor data is not zero"
                     % (data_start - len(pad)))
    end = data_start
    for t in sorted(tensors, key=lambda t: t["offset"]):
        lo = data_start + t["offset"]
        if lo < end:
            raise Reject("tensor %s at data offset %d overlaps the previous tensor"
                         % (t["name"], t["offset"]))
        if lo + t["nbytes"] > len(buf):
            raise Reject("tensor %s needs bytes %d..%d, the file has %d"
                         % (t["name"], lo, lo + t["nbytes"], len(buf)))
        if buf[end:lo].strip(b"\0"):
            raise Reject("at byte %d: padding before tensor %s is not zero" % (end, t["name"]))
        end = lo + t["nbytes"]
        if with_data:
            _, code, size = GGML_TYPES[t["_code"]]
            t["data"] = [v[0] for v in struct.iter_unpack(code, buf[lo:end])]
    for t in tensors:
        del t["_code"], t["_count"]
    return {"version": version, "tensor_count": n_tensors, "kv_count": n_kv,
            "alignment": alignment, "data_start": data_start, "data_end": end,
            "file_size": len(buf), "metadata": meta, "tensors": tensors}


def main(argv):
    if len(argv) < 2 or len(argv) > 3 or (len(argv) == 3 and argv[2] != "--no-data"):
        sys.stderr.write("usage: read_gguf.py FILE [--no-data]\n")
        return 2
    with open(argv[1], "rb") as f:
        buf = f.read()
    try:
        out = parse(buf, len(argv) == 2)
    except Reject as e:
        sys.stderr.write("read_gguf: %s: %s\n" % (argv[1], e))
        return 1
    try:
        json.dump(out, sys.stdout, allow_nan=False)
    except ValueError:
        sys.stderr.write("read_gguf: %s: a value is not finite\n" % argv[1])
        return 1
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
