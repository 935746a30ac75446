#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz harnesses into tests/fuzz/corpus/.

Usage: make_seeds.py CLIPMESH_BINARY

Seeds: every record of tests/corpus/records (rejected, valid and setup,
which include the record vectors of proto/PROTOCOL.md), the wire message
vectors of PROTOCOL.md (valid and invalid), records made by the real
signer (`clipmesh publish` of the sample clips, then `clipmesh export`),
and export files built from both.
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RECORDS = os.path.join(ROOT, "tests", "corpus", "records")
SAMPLES = os.path.join(ROOT, "samples")
MAGIC = b"clipmesh-export\n"


def h(text):
    """Bytes from hex with spaces and <XX*32> runs, as PROTOCOL.md writes."""
    out = b""
    for part in text.split():
        if part.startswith("<"):
            byte, count = part[1:-1].split("*")
            out += bytes.fromhex(byte) * int(count)
        else:
            out += bytes.fromhex(part)
    return out


# The wire vectors of PROTOCOL.md, "Wire messages", "Test vectors".
WIRE = {
    "hello-creator": "98 01 01 01 c2 c4 20 <11*32> 91 c4 20 <22*32> "
                     "cf 00 00 01 a2 41 bc c5 20 cd 1e 15",
    "hello-mirror-reply": "98 01 01 02 c3 c4 20 <11*32> c0 "
                          "cf 00 00 01 a2 41 bc c5 20 00",
    "ping": "92 02 cf 00 00 01 a2 41 bc c5 20",
    "records-3-bytes": "92 03 91 c4 03 01 02 03",
    "have-two": "92 04 c4 40 <01*32> <02*32>",
    "want-one": "92 05 c4 20 <01*32>",
    "manifest-req": "92 06 c4 20 <aa*32>",
    "manifest": "94 07 c4 20 <aa*32> ce 00 04 93 e0 c4 40 <bb*32> <cc*32>",
    "chunk-req": "93 08 c4 20 <aa*32> 01",
    "chunk": "94 09 c4 20 <aa*32> 00 c4 05 68 65 6c 6c 6f",
    "not-found": "94 0a 02 c4 20 <aa*32> cc 80",
    "peers-req": "91 0e",
    "peers": "92 0f 92 93 c4 20 <11*32> c4 04 c0 00 02 01 cd 1e 15 "
             "93 c4 20 <22*32> c4 10 20 01 0d b8 00 00 00 00 00 00 00 00 "
             "00 00 00 01 cd 1e 15",
    "goodbye": "91 10",
    "bad-trailing": "92 02 00 00",
    "bad-truncated": "92 05 c5 01 00 <01*32>",
    "bad-65-records": "92 03 dc 00 41",
    "bad-4097-keys": "98 01 01 01 c2 c4 20 <11*32> dc 10 01",
    "bad-record-too-long": "92 03 91 c5 40 81",
    "bad-chunk-index": "93 08 c4 20 <aa*32> cd 40 00",
    "bad-type-uint8": "91 cc 02",
    "bad-array16": "dc 00 01 91 02",
    "bad-bin16-ids": "92 05 c5 00 20 <01*32>",
    "bad-negative-type": "91 ff",
    "bad-ids-array": "92 04 90",
    "bad-type-11": "91 0b",
    "bad-ping-extra": "93 02 00 c0",
    "bad-ids-33": "92 04 c4 21 <01*32> 01",
    "bad-role-3": "98 01 01 03 c2 c4 20 <11*32> c0 00 00",
    "bad-hello-no-time": "96 01 01 01 c2 c4 20 <11*32> c0",
    "bad-hello-no-port": "97 01 01 01 c2 c4 20 <11*32> c0 00",
    "bad-hello-port-65536":
        "98 01 01 01 c2 c4 20 <11*32> c0 00 ce 00 01 00 00",
    "bad-ping-no-time": "91 02",
    "bad-ping-negative-time": "92 02 ff",
    "bad-peers-req-extra": "92 0e 90",
    "bad-peers-33": "92 0f dc 00 21",
    "bad-peers-no-port": "92 0f 91 92 c4 20 <11*32> c4 04 c0 00 02 01",
    "bad-peers-ip-5": "92 0f 91 93 c4 20 <11*32> c4 05 c0 00 02 01 01 01",
    "bad-peers-port-65536":
        "92 0f 91 93 c4 20 <11*32> c4 04 c0 00 02 01 ce 00 01 00 00",
    "bad-goodbye-extra": "92 10 00",
    "bad-goodbye-extra-nil": "92 10 c0",
}


def write(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def bin_header(n):
    if n <= 0xFF:
        return bytes([0xC4, n])
    return bytes([0xC5, n >> 8, n & 0xFF])


def body_of(wire):
    """Returns the body of a record with a readable envelope, or None."""
    if len(wire) < 3 or wire[0] != 0x92:
        return None
    if wire[1] == 0xC4:
        start, n = 3, wire[2]
    elif wire[1] == 0xC5 and len(wire) >= 4:
        start, n = 4, wire[2] << 8 | wire[3]
    else:
        return None
    body = wire[start:start + n]
    return body if len(body) == n else None


def export_file(records):
    data = MAGIC
    for r in records:
        data += len(r).to_bytes(4, "big") + r
    return data


def read_export(path):
    data = open(path, "rb").read()
    assert data[:16] == MAGIC
    pos, out = 16, []
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        out.append(data[pos + 4:pos + 4 + n])
        pos += 4 + n
    return out, data


def real_export(clipmesh):
    """Publishes the sample clips, a profile and a retraction with the
    real CLI and returns the export file's bytes."""
    home = tempfile.mkdtemp(prefix="clipmesh-seeds.")
    try:
        cm = [clipmesh, "--home", home]
        run = lambda *a: subprocess.run(cm + list(a), check=True,
                                        capture_output=True, text=True)
        run("init")
        run("key", "new", "seeder")
        ids = []
        for line in open(os.path.join(SAMPLES, "clips.tsv")):
            f, product, title, rating, lang = line.rstrip("\n").split("\t")
            if f == "file":
                continue
            ids.append(run("publish", os.path.join(SAMPLES, f), "--as",
                           "seeder", "--product", product, "--title", title,
                           "--rating", rating, "--lang", lang, "--tag",
                           "review").stdout.strip())
        run("profile", "set", "--as", "seeder", "--name", "Seeder",
            "--bio", "Seeds for the fuzz harnesses.")
        run("retract", ids[0], "--as", "seeder")
        out = os.path.join(home, "all.export")
        run("export", "-o", out)
        return read_export(out)
    finally:
        shutil.rmtree(home)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_seeds.py CLIPMESH_BINARY")
    corpus = os.path.join(HERE, "corpus")
    files = sorted(glob.glob(os.path.join(RECORDS, "*.rec")) +
                   glob.glob(os.path.join(RECORDS, "valid", "*.rec")) +
                   glob.glob(os.path.join(RECORDS, "setup", "*.rec")))
    corpus_records = {os.path.basename(f)[:-4]: open(f, "rb").read()
                      for f in files}
    real, real_file = real_export(sys.argv[1])

    records = dict(corpus_records)
    for i, r in enumerate(real):
        records["signer-%d" % i] = r
    for name, wire in records.items():
        if len(wire) <= 20000:
            write(os.path.join(corpus, "record"), name, wire)
        body = body_of(wire)
        if body is not None and len(body) <= 17000:
            write(os.path.join(corpus, "body"), name, body)

    for name, hexa in WIRE.items():
        write(os.path.join(corpus, "wire"), name, h(hexa))
    valid = [corpus_records[n] for n in ("vector-clip", "vector-profile")]
    valid.append(corpus_records["retract-vector-clip"])
    batch = b"\x92\x03" + bytes([0x90 | len(real)])
    for r in real:
        batch += bin_header(len(r)) + r
    write(os.path.join(corpus, "wire"), "records-signer", batch)
    batch = b"\x92\x03\x93" + b"".join(bin_header(len(r)) + r for r in valid)
    write(os.path.join(corpus, "wire"), "records-vectors", batch)

    imp = os.path.join(corpus, "import")
    write(imp, "signer-export", real_file)
    write(imp, "vectors", export_file(valid))
    write(imp, "empty", MAGIC)
    bad = [corpus_records[n] for n in ("env-trailing-byte",
                                       "int-rating-uint8", "key-unsorted",
                                       "sig-s-plus-order")]
    write(imp, "mixed", export_file(valid[:1] + bad + valid[1:]))
    write(imp, "cut-inside-record", export_file(valid)[:-10])
    write(imp, "zero-length", MAGIC + b"\0\0\0\0" + valid[0])
    text_seeds(corpus)



def text_seeds(corpus):
    """Seeds of fuzz_text: a selector byte ('0' time, '1' product
    reference, '2' config file), then the text."""
    text = os.path.join(corpus, "text")
    for name, value in (("time-epoch-ms", "1764945000000"),
                        ("time-date", "2026-12-05"),
                        ("time-seconds", "2026-12-05T14:48:00Z"),
                        ("time-millis", "2026-12-05T14:48:00.123Z"),
                        ("time-leap-day", "2028-02-29T23:59:59Z")):
        write(text, name, b"0" + value.encode())
    for name, value in (("product-gtin", "gtin:2000000001012"),
                        ("product-isbn", "isbn:9780306406157"),
                        ("product-asin", "asin:B000000006"),
                        ("product-url", "url:https://example.com/p?id=7")):
        write(text, name, b"1" + value.encode())
    example = os.path.join(ROOT, "dist", "clipmesh.conf.example")
    write(text, "config-example", b"2" + open(example, "rb").read())
    write(text, "config-small",
          b"2listen = tcp://127.0.0.1:7700\npeer = clipmesh://" +
          b"ab" * 32 + b"@127.0.0.1:7701\nmedia_max = 64M\n[mirror]\n" +
          b"http_rate = 10\n[limits]\nsync_interval = 10s\n")

if __name__ == "__main__":
    main()
