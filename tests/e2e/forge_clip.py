#!/usr/bin/env python3
"""Write an export file with one validly signed clip that names any media.

usage: forge_clip.py ROOT_HEX SIZE TYPE OUT

The clip is signed by a new Ed25519 key and created now, and its media
list names ROOT_HEX with SIZE bytes of TYPE, whatever the media really
is: what any key holder can sign about someone else's media. Prints the
clip id in hex. Uses the packers of tools/check_protocol.py, which
follow proto/PROTOCOL.md, and Debian's python3-cryptography.
"""
import pathlib
import struct
import sys
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey)

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "tools"))
import check_protocol as proto  # noqa: E402

EXPORT_MAGIC = b"clipmesh-export\n"


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: forge_clip.py ROOT_HEX SIZE TYPE OUT")
    root, size, media_type, out = (bytes.fromhex(sys.argv[1]),
                                   int(sys.argv[2]), sys.argv[3],
                                   sys.argv[4])
    secret = Ed25519PrivateKey.generate()
    public_key = secret.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    body = proto.pack_map({
        "author": proto.pack_bin(public_key),
        "created": proto.pack_uint(int(time.time() * 1000)),
        "media": proto.pack_array([proto.media_ref(root, size,
                                                   media_type)]),
        "product": proto.pack_str("gtin:2000000001012"),
        "title": proto.pack_str("Forged media size"),
        "type": proto.pack_str("clip"),
        "v": proto.pack_uint(1),
    })
    record_id = proto.blake2b_256(body)
    signature = secret.sign(proto.SIGN_PREFIX + b"clip\x00" + record_id)
    wire = b"\x92" + proto.pack_bin(body) + proto.pack_bin(signature)
    with open(out, "wb") as f:
        f.write(EXPORT_MAGIC + struct.pack(">I", len(wire)) + wire)
    print(record_id.hex())


if __name__ == "__main__":
    main()
