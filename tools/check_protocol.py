#!/usr/bin/env python3
"""Re-derive the test vectors of proto/PROTOCOL.md without clipmesh's code.

The script encodes the records of the "## Test vectors" section with its
own msgpack writer, hashes them with hashlib's BLAKE2b and signs them with
the cryptography package's Ed25519, then compares every hex value with the
document. It encodes the wire messages of the "### Test vectors" part of
"## Wire messages" the same way and compares them with that table. It
needs only Debian's python3 and python3-cryptography.

Usage: tools/check_protocol.py [PROTOCOL.md]
(default: proto/PROTOCOL.md next to this folder). Exits 1 on the first
vector that differs.
"""
import hashlib
import pathlib
import re
import struct
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

CHUNK_SIZE = 256 * 1024
PATTERN_MOD = 251
MEDIA_DOMAIN = b"clipmesh/1/media\x00"
SIGN_PREFIX = b"clipmesh/1/"
WIRE_TIME_MS = 1796399220000  # the time of the HELLO and PING vectors


def fail(message):
    print("check_protocol: " + message, file=sys.stderr)
    sys.exit(1)


def expect(condition, message):
    if not condition:
        fail(message)


def hex_blocks(vectors, heading):
    """Return the hex code blocks of one "### heading" part, lines joined."""
    start = vectors.find("\n### " + heading + "\n")
    expect(start >= 0, "no '### %s' part under '## Test vectors'" % heading)
    part = vectors[start + 1:]
    end = part.find("\n### ", 1)
    if end >= 0:
        part = part[:end]
    blocks = re.findall(r"```\n([0-9a-f\n]+)```", part)
    return [block.replace("\n", "") for block in blocks]


def blake2b_256(data):
    return hashlib.blake2b(data, digest_size=32).digest()


def pack_uint(value):
    if value < 0x80:
        return bytes([value])
    if value < 0x100:
        return b"\xcc" + bytes([value])
    if value < 0x10000:
        return b"\xcd" + struct.pack(">H", value)
    if value < 0x100000000:
        return b"\xce" + struct.pack(">I", value)
    return b"\xcf" + struct.pack(">Q", value)


def pack_str(text):
    data = text.encode()
    if len(data) < 32:
        return bytes([0xa0 | len(data)]) + data
    if len(data) < 0x100:
        return b"\xd9" + bytes([len(data)]) + data
    return b"\xda" + struct.pack(">H", len(data)) + data


def pack_bin(data):
    if len(data) < 0x100:
        return b"\xc4" + bytes([len(data)]) + data
    return b"\xc5" + struct.pack(">H", len(data)) + data


def pack_array(items):
    expect(len(items) < 16, "array of %d items needs array 16" % len(items))
    return bytes([0x90 | len(items)]) + b"".join(items)


def pack_map(entries):
    """Pack a map of already packed values, keys sorted bytewise."""
    keys = sorted(entries, key=lambda key: key.encode())
    expect(len(keys) < 16, "map of %d keys needs map 16" % len(keys))
    packed = b"".join(pack_str(key) + entries[key] for key in keys)
    return bytes([0x80 | len(keys)]) + packed


def media_root(data):
    chunks = [blake2b_256(data[at:at + CHUNK_SIZE])
              for at in range(0, len(data), CHUNK_SIZE)]
    size = struct.pack(">Q", len(data))
    return blake2b_256(MEDIA_DOMAIN + size + b"".join(chunks))


def media_ref(root, size, media_type):
    return pack_map({"hash": pack_bin(root), "size": pack_uint(size),
                     "type": pack_str(media_type)})


def check_record(vectors, heading, kind, fields, secret, public_key):
    """Check body, id, signature and wire of one record, and return its id."""
    common = {"author": pack_bin(public_key), "type": pack_str(kind),
              "v": pack_uint(1)}
    body = pack_map(dict(fields, **common))
    blocks = hex_blocks(vectors, heading)
    expect(len(blocks) == 4,
           "%s has %d hex blocks, expected 4 (body, id, signature, wire)"
           % (heading, len(blocks)))
    body_hex, id_hex, signature_hex, wire_hex = blocks

    expect(body.hex() == body_hex, heading + " body differs")
    record_id = blake2b_256(body)
    expect(record_id.hex() == id_hex, heading + " id differs")

    message = SIGN_PREFIX + kind.encode() + b"\x00" + record_id
    signature = secret.sign(message)
    expect(signature.hex() == signature_hex, heading + " signature differs")
    Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)

    wire = b"\x92" + pack_bin(body) + pack_bin(signature)
    expect(wire.hex() == wire_hex, heading + " wire form differs")
    return record_id


def wire_table(document):
    """Return {message: bytes} of the wire message vector table."""
    start = document.find("\n## Wire messages\n")
    expect(start >= 0, "no '## Wire messages' section")
    start = document.find("\n### Test vectors\n", start)
    expect(start >= 0, "no '### Test vectors' part under '## Wire messages'")
    start = document.find("\n| message | hex |\n", start)
    expect(start >= 0, "no '| message | hex |' table of wire vectors")
    end = document.find("\n\n", start)
    rows = {}
    for line in document[start:end].split("\n")[3:]:
        match = re.fullmatch(r"\| (.+) \| `([^`]+)` \|", line)
        expect(match is not None, "unreadable wire vector row: " + line)
        data = b""
        for part in match.group(2).split():
            run = re.fullmatch(r"<([0-9a-f]{2})\u00d7(\d+)>", part)
            if run:
                data += bytes.fromhex(run.group(1)) * int(run.group(2))
            else:
                data += bytes.fromhex(part)
        rows[match.group(1)] = data
    return rows


def wire_vectors():
    """Return {message: bytes} of the wire vectors as this script encodes
    them from the values PROTOCOL.md lists."""
    node_key, author, root = b"\x11" * 32, b"\x22" * 32, b"\xaa" * 32
    id1, id2 = b"\x01" * 32, b"\x02" * 32
    chunks = b"\xbb" * 32 + b"\xcc" * 32
    false, true, nil = b"\xc2", b"\xc3", b"\xc0"
    time = pack_uint(WIRE_TIME_MS)
    return {
        "HELLO, creator, not a reply, interest [author], "
        "listening on port 7701": pack_array([
            pack_uint(1), pack_uint(1), pack_uint(1), false,
            pack_bin(node_key), pack_array([pack_bin(author)]), time,
            pack_uint(7701)]),
        "HELLO, mirror, reply, interest nil, not listening": pack_array([
            pack_uint(1), pack_uint(1), pack_uint(2), true,
            pack_bin(node_key), nil, time, pack_uint(0)]),
        "PING": pack_array([pack_uint(2), time]),
        "RECORDS with one 3-byte record `01 02 03`": pack_array([
            pack_uint(3), pack_array([pack_bin(b"\x01\x02\x03")])]),
        "HAVE of two ids": pack_array([pack_uint(4), pack_bin(id1 + id2)]),
        "WANT of one id": pack_array([pack_uint(5), pack_bin(id1)]),
        "MANIFEST_REQ": pack_array([pack_uint(6), pack_bin(root)]),
        "MANIFEST, size 300000, two chunks": pack_array([
            pack_uint(7), pack_bin(root), pack_uint(300000),
            pack_bin(chunks)]),
        "CHUNK_REQ, index 1": pack_array([
            pack_uint(8), pack_bin(root), pack_uint(1)]),
        'CHUNK, index 0, data "hello"': pack_array([
            pack_uint(9), pack_bin(root), pack_uint(0), pack_bin(b"hello")]),
        "NOT_FOUND, chunk 128": pack_array([
            pack_uint(10), pack_uint(2), pack_bin(root), pack_uint(128)]),
        "PEERS_REQ": pack_array([pack_uint(14)]),
        "PEERS, 192.0.2.1 and 2001:db8::1, port 7701": pack_array([
            pack_uint(15), pack_array([
                pack_array([pack_bin(node_key),
                            pack_bin(bytes([192, 0, 2, 1])),
                            pack_uint(7701)]),
                pack_array([pack_bin(author),
                            pack_bin(bytes.fromhex("20010db8" + "00" * 11
                                                   + "01")),
                            pack_uint(7701)])])]),
        "GOODBYE": pack_array([pack_uint(16)]),
    }


def check_wire(document):
    rows = wire_table(document)
    for message, data in wire_vectors().items():
        expect(message in rows, "wire vector '%s' not found" % message)
        found = rows.pop(message)
        expect(found == data,
               "wire vector '%s' differs: the document has %s, expected %s"
               % (message, found.hex(), data.hex()))
    expect(not rows, "wire vectors this script does not know: %s"
           % ", ".join(rows))


def main():
    default = pathlib.Path(__file__).resolve().parent.parent / "proto"
    path = sys.argv[1] if len(sys.argv) > 1 else default / "PROTOCOL.md"
    document = pathlib.Path(path).read_text(encoding="utf-8")
    start = document.find("\n## Test vectors\n")
    expect(start >= 0, "%s has no '## Test vectors' section" % path)
    vectors = document[start:]

    secret = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
    public_key = secret.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    expect(public_key.hex() in vectors, "public key not found")

    pattern = bytes(i % PATTERN_MOD for i in range(2 * CHUNK_SIZE + 1))
    two_chunks = pattern[:2 * CHUNK_SIZE]
    for name, data in (("empty file", b""), ("abc", b"abc"),
                       ("2-chunk file", two_chunks),
                       ("2-chunk + 1 byte file", pattern)):
        expect(media_root(data).hex() in vectors,
               "media root of the %s not found" % name)
    for index in range(3):
        chunk = pattern[index * CHUNK_SIZE:(index + 1) * CHUNK_SIZE]
        expect(blake2b_256(chunk).hex() in vectors,
               "hash of chunk %d not found" % index)

    text = ("Crushed ice in ten seconds \u2014 quieter than my old one.\n"
            "The lid is a bit stiff.")
    clip_id = check_record(vectors, "Clip", "clip", {
        "created": pack_uint(1796399220000),
        "lang": pack_str("en"),
        "media": pack_array([
            media_ref(media_root(two_chunks), len(two_chunks), "video/mp4"),
            media_ref(media_root(b"abc"), 3, "image/jpeg"),
        ]),
        "product": pack_str("gtin:2000000001012"),
        "rating": pack_uint(4),
        "tags": pack_array([pack_str("blender"), pack_str("kitchen")]),
        "text": pack_str(text),
        "title": pack_str("Countertop blender, first week"),
    }, secret, public_key)
    check_record(vectors, "Retraction", "retract", {
        "created": pack_uint(1796400300000),
        "target": pack_bin(clip_id),
    }, secret, public_key)
    check_record(vectors, "Profile", "profile", {
        "bio": pack_str("Kitchen gadgets, unboxed.\n"
                        "Honest takes, no sponsors."),
        "created": pack_uint(1796398200000),
        "name": pack_str("Ada Reviews"),
    }, secret, public_key)
    check_wire(document)
    print("check_protocol: every vector of %s re-derived" % path)


if __name__ == "__main__":
    main()
