#!/usr/bin/env python3
"""Checks of the mirror's HTTP API for tests/e2e/test_http.sh (stdlib and
python3-cryptography only).

Subcommands:
  ambiguous OUT      write an export file of two clips whose ids share
                     their first 8 hex digits; print that prefix
  checks FACTS LOG   run every route check against the mirror that FACTS
                     (JSON written by the test) describes; append each
                     JSON response to LOG for the OpenAPI check
  burst BASE N       send N requests at once; print how many got 429
  slow BASE          send requests a byte every 2 s; check that the
                     server closes them in time and serves others
  stream BASE OUT    read events into OUT ("seq id" lines), resuming after
                     its last complete line; stop after --events N events
                     or once --head SEQ was read, or after --timeout s
"""
import hashlib
import http.client
import json
import os
import pathlib
import socket
import struct
import sys
import time
import urllib.parse

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "tools"))
import check_protocol as proto  # noqa: E402  (packers of PROTOCOL.md)

CSP = ("default-src 'self'; media-src 'self'; img-src 'self'; "
       "object-src 'none'; frame-ancestors 'none'; base-uri 'none'")
EXPORT_MAGIC = b"clipmesh-export\n"
CHECKS = 0


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        return self.headers.get(name.lower())

    def json(self):
        return json.loads(self.body)


class Client:
    """One keep-alive connection; every JSON response goes to the log."""

    def __init__(self, base, log_path=None):
        url = urllib.parse.urlsplit(base)
        self.host, self.port = url.hostname, url.port
        self.log = open(log_path, "a") if log_path else None
        self.conn = None

    def request(self, path, headers=None, method="GET", record=True):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port,
                                                       timeout=30)
            try:
                self.conn.request(method, path, headers=headers or {})
                raw = self.conn.getresponse()
                body = raw.read()
                break
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        resp = Response(raw.status,
                        {k.lower(): v for k, v in raw.getheaders()}, body)
        expect(resp.header("Content-Security-Policy") == CSP,
               "%s %s: Content-Security-Policy is %r" %
               (method, path, resp.header("Content-Security-Policy")))
        expect(resp.header("X-Content-Type-Options") == "nosniff",
               "%s %s: X-Content-Type-Options missing" % (method, path))
        ctype = resp.header("Content-Type") or ""
        if resp.status >= 400:
            expect(ctype.startswith("application/json"),
                   "%s %s: error %d is %r, not JSON" %
                   (method, path, resp.status, ctype))
            error = resp.json().get("error")
            expect(isinstance(error, str) and len(error) > 10,
                   "%s %s: error body has no message: %r" %
                   (method, path, resp.body[:200]))
        if self.log and record and ctype.startswith("application/json") \
                and method != "HEAD":
            self.log.write(json.dumps({
                "method": method.lower(),
                "path": urllib.parse.urlsplit(path).path,
                "status": resp.status, "body": resp.json()}) + "\n")
        return resp

    def json(self, path, status=200, headers=None, record=True):
        resp = self.request(path, headers, record=record)
        expect(resp.status == status, "GET %s: status %d, expected %d: %r"
               % (path, resp.status, status, resp.body[:300]))
        return resp.json()


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def passed(what):
    global CHECKS
    CHECKS += 1
    print("ok - %s" % what, flush=True)


# --- Records: msgpack reading and signature checks ---------------------

def read_msgpack(data, pos=0):
    """Decode the msgpack subset of records; return (value, next pos)."""
    b = data[pos]
    if b <= 0x7f:
        return b, pos + 1
    if 0x80 <= b <= 0x8f or b in (0xde,):
        n, pos = (b & 0x0f, pos + 1) if b <= 0x8f else \
            (struct.unpack(">H", data[pos + 1:pos + 3])[0], pos + 3)
        out = {}
        for _ in range(n):
            key, pos = read_msgpack(data, pos)
            out[key], pos = read_msgpack(data, pos)
        return out, pos
    if 0x90 <= b <= 0x9f:
        out = []
        pos += 1
        for _ in range(b & 0x0f):
            item, pos = read_msgpack(data, pos)
            out.append(item)
        return out, pos
    if 0xa0 <= b <= 0xbf:
        n = b & 0x1f
        return data[pos + 1:pos + 1 + n].decode(), pos + 1 + n
    sizes = {0xc4: (1, bytes), 0xc5: (2, bytes), 0xd9: (1, str),
             0xda: (2, str), 0xcc: (1, int), 0xcd: (2, int),
             0xce: (4, int), 0xcf: (8, int)}
    width, kind = sizes[b]
    value = int.from_bytes(data[pos + 1:pos + 1 + width], "big")
    if kind is int:
        return value, pos + 1 + width
    start = pos + 1 + width
    raw = data[start:start + value]
    return (raw if kind is bytes else raw.decode()), start + value


def verify_raw(raw, record_id):
    """Check that raw wire bytes hash to record_id and carry a valid
    signature of their author; return the decoded body."""
    envelope, end = read_msgpack(raw)
    expect(end == len(raw) and isinstance(envelope, list) and
           len(envelope) == 2, "raw record is not [body, signature]")
    body, signature = envelope
    expect(hashlib.blake2b(body, digest_size=32).hexdigest() == record_id,
           "BLAKE2b-256 of the raw body is not the record id")
    fields, _ = read_msgpack(body)
    message = b"clipmesh/1/" + fields["type"].encode() + b"\x00" + \
        bytes.fromhex(record_id)
    Ed25519PublicKey.from_public_bytes(fields["author"]).verify(signature,
                                                                message)
    return fields


def make_ambiguous(out_path):
    """Grind clip titles until two ids share 8 hex digits, then sign both
    with one fresh key and write them as an export file."""
    secret = Ed25519PrivateKey.generate()
    public = secret.public_key().public_bytes(
        proto.serialization.Encoding.Raw, proto.serialization.PublicFormat.Raw)
    created = int(time.time() * 1000) - 3600 * 1000
    seen = {}
    for i in range(10 ** 7):
        body = proto.pack_map({
            "author": proto.pack_bin(public), "type": proto.pack_str("clip"),
            "v": proto.pack_uint(1), "created": proto.pack_uint(created),
            "media": proto.pack_array([proto.media_ref(
                proto.blake2b_256(b"ambiguous"), 9, "image/jpeg")]),
            "product": proto.pack_str("gtin:2000000001012"),
            "title": proto.pack_str("Prefix twin %d" % i)})
        record_id = proto.blake2b_256(body)
        if record_id[:4] in seen:
            break
        seen[record_id[:4]] = body
    bodies = [seen[record_id[:4]], body]
    with open(out_path, "wb") as f:
        f.write(EXPORT_MAGIC)
        for b in bodies:
            rid = proto.blake2b_256(b)
            sig = secret.sign(b"clipmesh/1/clip\x00" + rid)
            wire = b"\x92" + proto.pack_bin(b) + proto.pack_bin(sig)
            f.write(struct.pack(">I", len(wire)) + wire)
    print(record_id[:4].hex())


# --- Route checks ------------------------------------------------------

def all_clips(c, query=""):
    page = c.json("/api/v1/clips?limit=1000" + query)
    expect(page["next_cursor"] is None, "more than 1000 clips in the test")
    return page["clips"]


def check_feed(c, f):
    clips = all_clips(c)
    expect(len(clips) == f["clips"], "feed has %d clips, expected %d" %
           (len(clips), f["clips"]))
    times = [x["created_ms"] for x in clips]
    expect(times == sorted(times, reverse=True), "feed is not newest first")
    first = c.json("/api/v1/clips")
    expect(len(first["clips"]) == 20, "default page is not 20 clips")
    expect(isinstance(first["next_cursor"], str), "no next_cursor")
    for key in ("id", "kind", "author", "created_at", "created_ms",
                "product", "title", "text", "rating", "lang", "tags",
                "media", "author_name"):
        expect(key in first["clips"][0], "clip lacks %s" % key)
    passed("feed lists every clip newest first, 20 by default")

    ids, cursor, pages = [], None, 0
    while True:
        page = c.json("/api/v1/clips?limit=7" +
                      ("&cursor=" + cursor if cursor else ""))
        ids += [x["id"] for x in page["clips"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    expect(pages >= 3, "only %d pages" % pages)
    expect(len(ids) == len(set(ids)), "pages overlap")
    expect(ids == [x["id"] for x in clips], "pages differ from one walk")
    passed("cursor paging over %d pages without overlap or gap" % pages)

    mine = all_clips(c, "&author=" + f["alice"])
    expect(len(mine) == f["alice_clips"] and
           all(x["author"] == f["alice"] for x in mine),
           "author filter returned %d clips" % len(mine))
    expect(all(x["author_name"] == "Alice Reviews" for x in mine),
           "author_name is not the profile name")
    expect(all_clips(c, "&author=" + f["alice"].upper()) == mine,
           "upper-case author filter returned other clips")
    product = all_clips(c, "&product=gtin:2000000003030")
    expect(product and all(x["product"] == "gtin:2000000003030"
                           for x in product), "product filter")
    tagged = all_clips(c, "&tag=review")
    expect(len(tagged) == 4 and all("review" in x["tags"] for x in tagged),
           "tag filter returned %d clips" % len(tagged))
    mid = times[len(times) // 2]
    since = all_clips(c, "&since=%d" % mid)
    until = all_clips(c, "&until=%d" % mid)
    expect(since and all(x["created_ms"] >= mid for x in since), "since")
    expect(until and all(x["created_ms"] < mid for x in until), "until")
    expect(len(since) + len(until) == len(clips), "since+until split")
    both = all_clips(c, "&tag=review&author=%s&product=gtin:2000000001012"
                     % f["alice"])
    expect(len(both) == 1, "combined filters returned %d" % len(both))
    passed("author, product, tag, since and until filters")

    for query, why in (("author=zz", "bad author"),
                       ("author=" + "g" * 64, "non-hex author"),
                       ("limit=0", "limit 0"), ("limit=1001", "limit 1001"),
                       ("limit=x", "limit not a number"),
                       ("cursor=xyz", "bad cursor"),
                       ("cursor=" + "0" * 78, "short cursor"),
                       ("since=10&until=5", "since after until"),
                       ("since=yesterday", "bad since"),
                       ("since=2026-02-30T00:00:00Z", "February 30"),
                       ("until=2026-12-05T14:48:60Z", "second 60"),
                       ("product=gtin:123", "bad product"),
                       ("colour=red", "unknown parameter"),
                       ("tag=a&tag=b", "repeated parameter"),
                       ("tag=", "empty parameter"),
                       ("limit=5%00", "NUL after a valid limit"),
                       ("tag=review%00x", "NUL inside a tag"),
                       ("lim%00it=5", "NUL inside a name"),
                       ("&limit=5", "parameter without a name")):
        c.json("/api/v1/clips?" + query, 400)
    passed("malformed feed queries are 400 with a JSON error")

    # Tags match byte for byte, as PROTOCOL.md compares them, so case
    # matters. A tag that no valid clip can carry is the client's error.
    expect(all_clips(c, "&tag=Review") == [], "tag=Review matched 'review'")
    for query, tag in (("tag=two%20words", "two words"),
                       ("tag=" + "t" * 33, "t" * 33)):
        bad = c.json("/api/v1/clips?" + query, 400)
        expect(tag in bad["error"], "%s: error does not name the tag: %r"
               % (query, bad))
    passed("tags match by case; an invalid tag is 400 naming it")


def check_clip(c, f):
    blender = f["published"]["review-blender.mp4"]
    clip = c.json("/api/v1/clips/" + blender)
    expect(clip["id"] == blender and clip["verified"] is True and
           clip["retracted"] is False, "clip fields: %r" % clip)
    expect(clip["author_name"] == "Alice Reviews", "author_name")
    media = clip["media"][0]
    expect(media["url"] == "/api/v1/media/" + media["hash"] and
           media["complete"] is True, "media entry: %r" % media)
    expect(c.json("/api/v1/clips/" + blender[:8])["id"] == blender,
           "8-digit prefix does not resolve")
    for hex_id in (blender.upper(), blender[:8].upper()):
        expect(c.json("/api/v1/clips/" + hex_id)["id"] == blender,
               "upper-case id %s does not resolve" % hex_id)
    passed("one clip by id and by prefix in either case, verified")

    xss = c.json("/api/v1/clips/" + f["xss"])
    expect(xss["title"] == "<img src=x onerror=alert(1)>",
           "markup title changed: %r" % xss["title"])
    passed("a markup title comes back as the same JSON string")

    gone = c.json("/api/v1/clips/" + f["retracted"], 410)
    expect(gone["retracted"] is True and
           gone["retraction"] == f["retraction"], "410 body: %r" % gone)
    c.json("/api/v1/records/%s/raw" % f["retracted"], 410)
    c.json("/api/v1/clips/" + "f" * 64, 404)
    c.json("/api/v1/clips/" + "f" * 12, 404)
    c.json("/api/v1/clips/abc", 400)
    c.json("/api/v1/clips/" + "x" * 12, 400)
    c.json("/api/v1/clips/" + f["profile"], 404)
    amb = c.json("/api/v1/clips/" + f["ambiguous"], 400)
    expect("several" in amb["error"], "ambiguous error: %r" % amb)
    c.json("/api/v1/records/%s/raw" % f["ambiguous"], 400)
    passed("retracted 410, unknown 404, malformed and ambiguous 400")


def check_raw(c, f):
    for name, record_id, kind in (
            ("clip", f["published"]["review-kettle.webm"], "clip"),
            ("profile", f["profile"], "profile"),
            ("retraction", f["retraction"], "retract")):
        resp = c.request("/api/v1/records/%s/raw" % record_id)
        expect(resp.status == 200, "raw %s: %d" % (name, resp.status))
        expect(resp.header("Content-Type") == "application/octet-stream",
               "raw type %r" % resp.header("Content-Type"))
        fields = verify_raw(resp.body, record_id)
        expect(fields["type"] == kind, "raw %s is a %s" %
               (name, fields["type"]))
    short = c.request("/api/v1/records/%s/raw" % f["profile"][:10])
    verify_raw(short.body, f["profile"])
    passed("raw records re-hash to their id and their signatures verify")

    etag = short.header("ETag")
    expect(etag == '"%s"' % f["profile"], "raw ETag %r" % etag)
    for path in ("/api/v1/records/%s/raw" % f["profile"],
                 "/api/v1/records/%s/raw" % f["profile"][:10]):
        resp = c.request(path, {"If-None-Match": etag})
        expect(resp.status == 304, "raw If-None-Match %s: %d" %
               (path, resp.status))
        expect(resp.body == b"", "raw 304 has a body: %r" % resp.body[:50])
        expect(resp.header("ETag") == etag, "raw 304 ETag %r" %
               resp.header("ETag"))
    resp = c.request("/api/v1/records/%s/raw" % f["profile"],
                     {"If-None-Match": '"%s"' % f["retraction"]})
    expect(resp.status == 200, "raw with another ETag: %d" % resp.status)
    verify_raw(resp.body, f["profile"])
    passed("raw records answer If-None-Match with 304")


def check_creator(c, f):
    alice = c.json("/api/v1/creators/" + f["alice"])
    expect(alice["name"] == "Alice Reviews" and
           alice["bio"] == "Kitchen gear, honestly" and
           alice["clips"] == f["alice_clips"] and
           alice["profile_created_at"].endswith("Z"), "creator: %r" % alice)
    # Bob's only clip was retracted and he has no profile.
    c.json("/api/v1/creators/" + f["bob"], 404)
    c.json("/api/v1/creators/" + "ab" * 32, 404)
    c.json("/api/v1/creators/" + "ab" * 16, 400)
    passed("creator with profile and clip count; unknown 404, bad 400")


def check_media(c, f, samples):
    for name, clip_id in f["published"].items():
        data = (samples / name).read_bytes()
        clip = c.json("/api/v1/clips/" + clip_id)
        media = clip["media"][0]
        resp = c.request(media["url"])
        expect(resp.status == 200 and resp.body == data,
               "%s: status %d, %d bytes" % (name, resp.status,
                                            len(resp.body)))
        expect(resp.header("Content-Type") == media["type"],
               "%s served as %r" % (name, resp.header("Content-Type")))
        expect(resp.header("ETag") == '"%s"' % media["hash"], "ETag")
        expect(resp.header("Cache-Control") ==
               "public, max-age=31536000, immutable", "Cache-Control")
        expect(resp.header("Accept-Ranges") == "bytes", "Accept-Ranges")
    upper = c.request(media["url"].upper().replace("/API/V1/MEDIA/",
                                                   "/api/v1/media/"))
    expect(upper.status == 200 and upper.body == data,
           "upper-case media hash: status %d" % upper.status)
    passed("every sample's media byte for byte with type and ETag")

    name = "review-kettle.webm"  # two chunks: 262144 + 51235 bytes
    data = (samples / name).read_bytes()
    size = len(data)
    url = c.json("/api/v1/clips/" + f["published"][name])["media"][0]["url"]
    for spec, first, last in (("0-99", 0, 99), ("1000-1999", 1000, 1999),
                              ("262000-262300", 262000, 262300),
                              ("-500", size - 500, size - 1),
                              ("300000-", 300000, size - 1),
                              ("5-%d" % (size * 2), 5, size - 1),
                              ("-%d" % (size + 10), 0, size - 1)):
        resp = c.request(url, {"Range": "bytes=" + spec})
        expect(resp.status == 206, "range %s: %d" % (spec, resp.status))
        expect(resp.body == data[first:last + 1],
               "range %s: bytes differ" % spec)
        expect(resp.header("Content-Range") ==
               "bytes %d-%d/%d" % (first, last, size),
               "range %s: Content-Range %r" % (spec,
                                               resp.header("Content-Range")))
    passed("ranges: first bytes, middle, across chunks, suffix, open-ended")

    for spec in ("%d-" % size, "%d-%d" % (size + 5, size + 9), "-0"):
        resp = c.request(url, {"Range": "bytes=" + spec})
        expect(resp.status == 416, "range %s: %d" % (spec, resp.status))
        expect(resp.header("Content-Range") == "bytes */%d" % size,
               "416 Content-Range %r" % resp.header("Content-Range"))
    for spec in ("items=0-5", "bytes=5-1", "bytes=0-1,5-6",
                 "bytes=0-x", "bytes=" + "9" * 30 + "-1"):
        resp = c.request(url, {"Range": spec})
        expect(resp.status == 200 and resp.body == data,
               "ignored range %s: %d" % (spec, resp.status))
    passed("unsatisfiable ranges 416, other forms ignored")

    # A number's length does not decide validity: a start of 19 or more
    # digits lies past the media, a last position that long is cut to
    # the end of the media, and so is a suffix that long.
    for digits in (19, 20, 25, 40):
        big = "9" * digits
        for spec in (big + "-", "%s-%s" % (big, big)):
            resp = c.request(url, {"Range": "bytes=" + spec})
            expect(resp.status == 416, "range of %d digits %s: %d" %
                   (digits, spec, resp.status))
            expect(resp.header("Content-Range") == "bytes */%d" % size,
                   "416 of %d digits: Content-Range %r" %
                   (digits, resp.header("Content-Range")))
        for spec in ("0-" + big, "-" + big):
            resp = c.request(url, {"Range": "bytes=" + spec})
            expect(resp.status == 206 and resp.body == data,
                   "range %s: %d" % (spec, resp.status))
            expect(resp.header("Content-Range") ==
                   "bytes 0-%d/%d" % (size - 1, size),
                   "range %s: Content-Range %r" %
                   (spec, resp.header("Content-Range")))
    resp = c.request(url, {"Range": "Bytes=0-99"})
    expect(resp.status == 206 and resp.body == data[:100],
           "unit in another case: %d" % resp.status)
    passed("ranges with numbers of 19 to 40 digits; unit in any case")

    etag = '"%s"' % url.rsplit("/", 1)[1]
    resp = c.request(url, {"If-None-Match": etag})
    expect(resp.status == 304 and resp.body == b"", "If-None-Match: %d" %
           resp.status)
    resp = c.request(url, {"If-None-Match": '"other", W/' + etag})
    expect(resp.status == 304, "If-None-Match list: %d" % resp.status)
    resp = c.request(url, {"If-None-Match": '"other"'})
    expect(resp.status == 200, "other ETag: %d" % resp.status)
    resp = c.request(url, method="HEAD")
    expect(resp.status == 200 and resp.body == b"" and
           resp.header("Content-Length") == str(size), "HEAD")
    passed("If-None-Match 304 and HEAD")

    missing = c.json(f["incomplete_url"], 404)
    expect("not fetched yet" in missing["error"], "incomplete: %r" % missing)
    c.json("/api/v1/media/" + "ab" * 32, 404)
    c.json("/api/v1/media/xyz", 400)
    passed("incomplete media 404 'not fetched yet'; bad hash 400")


def check_misc(c):
    health = c.json("/healthz")
    expect(health["status"] == "ok" and health["node"] is True, "health")
    for path, ctype in (("/", "text/html"), ("/index.html", "text/html"),
                        ("/app.js", "text/javascript"),
                        ("/style.css", "text/css")):
        resp = c.request(path)
        expect(resp.status == 200 and
               resp.header("Content-Type").startswith(ctype),
               "%s: %d %r" % (path, resp.status,
                              resp.header("Content-Type")))
    # Routes outside docs/openapi.json are not recorded for its check.
    c.json("/nothing.html", 404)
    c.json("/api/v1/nothing", 404, record=False)
    c.json("/api/v1/nothing%0Ainjected%20line", 404, record=False)
    resp = c.request("/api/v1/clips", method="POST", record=False)
    expect(resp.status == 405 and "GET" in resp.header("Allow"), "POST")
    passed("health, web files, unknown paths 404, POST 405")

    # libmicrohttpd unescapes %00 to a NUL byte, which would cut the path
    # short and serve the route before it.
    for path in ("/healthz%00x", "/app.js%00.html",
                 "/api/v1/clips/00000000%00x"):
        bad = c.json(path, 400, record=False)
        expect("NUL" in bad["error"], "%s: error %r" % (path, bad))
    # Invalid UTF-8 in a value is replaced in the error, which stays a
    # JSON string.
    for path, status in (("/api/v1/clips?tag=%ff%fe", 400),
                         ("/api/v1/clips?cursor=%ff", 400),
                         ("/api/v1/clips/%ff%ff%ff%ff%ff%ff%ff%ff", 400),
                         ("/%ff", 404)):
        bad = c.json(path, status, record=path.startswith("/api/v1/clips"))
        expect(isinstance(bad.get("error"), str) and "?" in bad["error"],
               "%s: error %r" % (path, bad))
    # A method with an escape and a byte that is not UTF-8 reaches the
    # access log cleaned (test_http.sh checks the log for raw 0xff).
    import socket
    with socket.create_connection((c.host, c.port), timeout=10) as sock:
        sock.sendall(b"G\x1bE\xffT /x HTTP/1.1\r\nHost: x\r\n\r\n")
        status = sock.recv(64).split(b" ")[1]
        expect(status in (b"400", b"405"), "odd method answered %r" % status)
    passed("a NUL in the path is 400; invalid UTF-8 gets a JSON error")

    text = c.request("/metrics").body.decode()
    for needle in ('clipmesh_records{kind="clip"}',
                   'clipmesh_http_requests_total{route="clips",status="200"}',
                   'clipmesh_http_requests_total{route="media",status="206"}',
                   "clipmesh_peers_connected 0",
                   "clipmesh_peer_bytes_total{direction=\"in\"}",
                   "clipmesh_sync_rounds_total",
                   "clipmesh_http_stream_clients",
                   "clipmesh_http_request_timeouts_total",
                   "clipmesh_log_head"):
        expect(needle in text, "metrics lack %s" % needle)
    passed("metrics in Prometheus text format")


def check_stream(c, f):
    head = c.json("/healthz")["log_head"]
    events = read_events(c, "/api/v1/stream?after=0", head)
    seqs = [e[0] for e in events]
    expect(seqs == list(range(1, head + 1)) or
           (seqs == sorted(set(seqs)) and seqs[-1] == head),
           "stream seqs %r" % seqs[:10])
    kinds = {e[1]["record"]["kind"] for e in events}
    expect(kinds == {"clip", "profile", "retract"}, "kinds %r" % kinds)
    later = read_events(c, "/api/v1/stream?after=0", head,
                        {"Last-Event-ID": str(seqs[-3])})
    expect([e[0] for e in later] == seqs[-2:], "Last-Event-ID resume")
    c.json("/api/v1/stream?after=-1", 400)
    c.json("/api/v1/stream?after=%d" % (head + 1000), 400)
    c.json("/api/v1/stream", 400, {"Last-Event-ID": "x"})
    passed("stream from 0 and resumed by Last-Event-ID; bad positions 400")


def read_events(c, path, head, headers=None):
    """Read events until seq `head`; return [(seq, data)]."""
    sock = socket.create_connection((c.host, c.port), timeout=20)
    request = "GET %s HTTP/1.1\r\nHost: x\r\n" % path
    for k, v in (headers or {}).items():
        request += "%s: %s\r\n" % (k, v)
    sock.sendall((request + "\r\n").encode())
    events, seq = [], 0
    with sock.makefile("rb") as stream:
        status = stream.readline()
        expect(b" 200 " in status, "stream status %r" % status)
        for event in sse_events(stream):
            if "data" not in event:
                continue
            seq = int(event["id"])
            events.append((seq, json.loads(event["data"])))
            expect(event["event"] == "record", "event type")
            if seq >= head:
                break
    sock.close()
    return events


def sse_events(stream):
    """Yield the events of a chunked SSE response as dicts."""
    while stream.readline() not in (b"\r\n", b""):
        pass  # headers
    buf = b""
    while True:
        size_line = stream.readline()
        if not size_line:
            return
        size = int(size_line.strip() or b"0", 16)
        if size == 0:
            return
        buf += stream.read(size)
        stream.readline()
        while b"\n\n" in buf:
            block, buf = buf.split(b"\n\n", 1)
            fields = {}
            for line in block.decode().split("\n"):
                if line.startswith(":"):
                    fields["comment"] = line[1:].strip()
                elif ": " in line:
                    key, value = line.split(": ", 1)
                    fields[key] = value
            yield fields


# --- Stream client of the kill and resume test -------------------------

def stream_client(base, out_path, events_max, head, timeout):
    """Append 'seq id' lines to out_path, resuming after its last complete
    line, as a client killed at any moment would."""
    out = pathlib.Path(out_path)
    text = out.read_text() if out.exists() else ""
    if text and not text.endswith("\n"):
        text = text[:text.rfind("\n") + 1]  # drop a half-written line
        out.write_text(text)
    last = int(text.splitlines()[-1].split()[0]) if text else 0
    if head and last >= head:
        print(0)
        return
    url = urllib.parse.urlsplit(base)
    sock = socket.create_connection((url.hostname, url.port),
                                    timeout=timeout)
    sock.sendall(("GET /api/v1/stream?after=0 HTTP/1.1\r\nHost: x\r\n"
                  "Last-Event-ID: %d\r\n\r\n" % last).encode())
    count = 0
    deadline = time.monotonic() + timeout
    with sock.makefile("rb") as stream, open(out, "a") as f:
        status = stream.readline()
        expect(b" 200 " in status, "stream status %r" % status)
        for event in sse_events(stream):
            if time.monotonic() > deadline:
                break
            if "data" not in event:
                continue  # a heartbeat or the retry field
            data = json.loads(event["data"])
            f.write("%s %s\n" % (event["id"], data["record"]["id"]))
            f.flush()
            count += 1
            if (events_max and count >= events_max) or \
                    (head and int(event["id"]) >= head):
                break
    print(count)


def burst(base, n, rate=50, size=100):
    """Send n requests from 8 threads; the default bucket (size 100,
    refilled at 50/s) must serve at most size + elapsed * rate of them
    and reject the rest with 429 and Retry-After."""
    import threading
    url = urllib.parse.urlsplit(base)
    counts = {"ok": 0, "limited": 0, "other": 0}
    errors = []
    lock = threading.Lock()

    def worker(count):
        try:
            send(count)
        except Exception as error:  # reported by the main thread
            errors.append(error)

    def send(count):
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        for _ in range(count):
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            body = resp.read()
            kind = "ok" if resp.status == 200 else "other"
            if resp.status == 429:
                retry = resp.getheader("Retry-After")
                expect(retry and int(retry) >= 1, "429 without Retry-After")
                expect("too many requests" in json.loads(body)["error"],
                       "429 body %r" % body)
                kind = "limited"
            with lock:
                counts[kind] += 1
        conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(n // 8,))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    expect(not errors, "request thread failed: %s" % (errors[:1],))
    allowed = size + int(elapsed * rate) + 1
    expect(counts["other"] == 0, "statuses other than 200/429: %r" % counts)
    expect(counts["ok"] >= size, "only %d served, burst is %d" %
           (counts["ok"], size))
    expect(counts["ok"] <= allowed, "%d served in %.2f s, at most %d "
           "allowed" % (counts["ok"], elapsed, allowed))
    print("%d of %d limited in %.2f s" % (counts["limited"], n, elapsed))


def slots(base, n_addrs, per_addr):
    """Open per_addr slow requests from each of n_addrs loopback
    addresses. The server must keep all of them, close one more from an
    address that is at its limit, and still serve a request from another
    address."""
    import select
    import socket
    url = urllib.parse.urlsplit(base)
    slow = []

    def connect(addr):
        sock = socket.create_connection((url.hostname, url.port), timeout=10,
                                        source_address=(addr, 0))
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        return sock

    def closed_within(sock, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ready, _, _ = select.select([sock], [], [], 0.1)
            if ready:
                try:
                    return sock.recv(1) == b""
                except ConnectionResetError:
                    return True
        return False

    try:
        for a in range(n_addrs):
            for _ in range(per_addr):
                slow.append(connect("127.0.0.%d" % (10 + a)))
        ready, _, _ = select.select(slow, [], [], 1.0)
        expect(not ready, "%d of %d slow connections closed early" %
               (len(ready), len(slow)))
        extra = connect("127.0.0.10")
        expect(closed_within(extra, 10), "connection %d from 127.0.0.10 "
               "was kept, the limit per address is %d" %
               (per_addr + 1, per_addr))
        extra.close()
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10,
                                          source_address=("127.0.0.250", 0))
        conn.request("GET", "/healthz")
        status = conn.getresponse().status
        expect(status == 200, "new address answered %d with %d slow "
               "connections open" % (status, len(slow)))
        conn.close()
    finally:
        for sock in slow:
            sock.close()
    print("%d slow connections slow, a new address served" % len(slow))


def request_timeout_s():
    """Return CM_HTTP_REQUEST_TIMEOUT_S from core/cm_limits.h."""
    limits = pathlib.Path(__file__).resolve().parents[2] / "core/cm_limits.h"
    for line in limits.read_text().splitlines():
        words = line.split()
        if words[:2] == ["#define", "CM_HTTP_REQUEST_TIMEOUT_S"]:
            return int(words[2])
    raise AssertionError("no CM_HTTP_REQUEST_TIMEOUT_S in %s" % limits)


def slow_requests(base, interval=2.0, margin=5.0):
    """Send two requests one byte every `interval` seconds: one on a new
    connection from 127.0.0.30, one on a connection from 127.0.0.31 after
    a first request and its response. The server must close both
    within CM_HTTP_REQUEST_TIMEOUT_S plus `margin`, counted from the
    connect and from the end of the first response. Meanwhile an event
    stream from 127.0.0.32 stays open past that time, and a new client
    from 127.0.0.33 is served at every step."""
    import select
    url = urllib.parse.urlsplit(base)
    limit = request_timeout_s()
    partial = b"GET /api/v1/clips HTTP/1.1\r\nHost: x\r\nX: "

    def connect(addr, data):
        sock = socket.create_connection((url.hostname, url.port), timeout=10,
                                        source_address=(addr, 0))
        sock.sendall(data)
        return sock

    def read_answer(sock):
        """Read one response with a Content-Length; return its status."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            expect(chunk, "connection closed before the first response")
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        length = [int(l.split(":", 1)[1]) for l in lines[1:]
                  if l.lower().startswith("content-length:")]
        expect(length, "first response has no Content-Length: %r" % head)
        while len(body) < length[0]:
            chunk = sock.recv(4096)
            expect(chunk, "connection closed inside the first response")
            body += chunk
        return int(lines[0].split()[1])

    def is_closed(sock):
        """Drain what the server sent; True once it closed or reset."""
        while select.select([sock], [], [], 0)[0]:
            try:
                if sock.recv(4096) == b"":
                    return True
            except ConnectionError:
                return True
        return False

    def served():
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10,
                                          source_address=("127.0.0.33", 0))
        conn.request("GET", "/healthz")
        status = conn.getresponse().status
        conn.close()
        return status

    stream = connect("127.0.0.32", b"GET /api/v1/stream?after=0 HTTP/1.1"
                     b"\r\nHost: x\r\n\r\n")
    expect(stream.recv(12).startswith(b"HTTP/1.1 200"),
           "the event stream did not start")
    fresh = connect("127.0.0.30", partial)
    fresh_start = time.monotonic()
    kept = connect("127.0.0.31", b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    expect(read_answer(kept) == 200, "first request on the kept connection")
    kept.sendall(partial)
    kept_start = time.monotonic()
    open_socks = {"new": (fresh, fresh_start),
                  "kept-alive": (kept, kept_start)}
    closed_after = {}
    n_served = 0
    next_send = time.monotonic() + interval
    try:
        while open_socks and time.monotonic() - fresh_start < limit + margin:
            # Wait for a close until the next byte is due, so that the
            # time of the close is measured to within the select call.
            socks = [sock for sock, _ in open_socks.values()]
            wait = max(0.0, next_send - time.monotonic())
            select.select(socks, [], [], wait)
            sending = time.monotonic() >= next_send
            for name, (sock, start) in list(open_socks.items()):
                closed = is_closed(sock)
                if not closed and sending:
                    try:
                        sock.sendall(b"a")
                    except ConnectionError:
                        closed = True
                if closed:
                    closed_after[name] = time.monotonic() - start
                    del open_socks[name]
            if not sending:
                continue
            next_send += interval
            status = served()
            expect(status == 200, "a new client got %d while slow requests "
                   "were open" % status)
            n_served += 1
        for name, (sock, start) in open_socks.items():
            expect(False, "the %s connection sending a byte every %g s is "
                   "still open after %.1f s; the limit is %d s" %
                   (name, interval, time.monotonic() - start, limit))
        for name, elapsed in closed_after.items():
            expect(elapsed >= limit - 1, "the %s connection was closed "
                   "after %.1f s, before the %d s limit" %
                   (name, elapsed, limit))
        expect(not is_closed(stream), "the event stream was closed while "
               "it was answered")
    finally:
        for sock in (fresh, kept, stream):
            sock.close()
    print("slow requests closed after %.1f s (new connection) and %.1f s "
          "(kept alive), stream kept, %d other requests served" %
          (closed_after["new"], closed_after["kept-alive"], n_served))


def main():
    command = sys.argv[1]
    if command == "ambiguous":
        make_ambiguous(sys.argv[2])
    elif command == "checks":
        facts = json.loads(pathlib.Path(sys.argv[2]).read_text())
        c = Client(facts["base"], sys.argv[3])
        samples = pathlib.Path(os.environ["SAMPLES"])
        check_feed(c, facts)
        check_clip(c, facts)
        check_raw(c, facts)
        check_creator(c, facts)
        check_media(c, facts, samples)
        check_stream(c, facts)
        check_misc(c)
        print("%d checks passed" % CHECKS)
    elif command == "burst":
        burst(sys.argv[2], int(sys.argv[3]))
    elif command == "slots":
        slots(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif command == "slow":
        slow_requests(sys.argv[2])
    elif command == "stream":
        args = dict(zip(sys.argv[4::2], sys.argv[5::2]))
        stream_client(sys.argv[2], sys.argv[3],
                      int(args.get("--events", 0)),
                      int(args.get("--head", 0)),
                      float(args.get("--timeout", 60)))
    else:
        sys.exit("usage: see the docstring of " + sys.argv[0])


if __name__ == "__main__":
    try:
        main()
    except AssertionError as error:
        print("FAIL: %s" % error, file=sys.stderr)
        sys.exit(1)
