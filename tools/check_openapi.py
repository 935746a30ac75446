#!/usr/bin/env python3
"""Validate recorded HTTP API responses against docs/openapi.json.

Usage: tools/check_openapi.py OPENAPI.json RESPONSES.jsonl
Each line of RESPONSES is {"method", "path", "status", "body"} for one
JSON response (tests/e2e/http_api.py writes them). Every response must
match a documented path, method and status, and its body must validate
against the documented schema. OpenAPI 3.0 schemas are turned into JSON
Schema first (`nullable: true` becomes a union with null), then checked
with python3-jsonschema. Exits 1 listing the first failures.
"""
import json
import re
import sys
import warnings

import jsonschema


def to_json_schema(node):
    """Rewrite OpenAPI 3.0 `nullable` into JSON Schema, recursively."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: to_json_schema(value) for key, value in node.items()
           if key != "nullable"}
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def path_matchers(doc):
    """Return (regex, template) for each documented path."""
    matchers = []
    for template in doc["paths"]:
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        matchers.append((re.compile("^" + pattern + "$"), template))
    return matchers


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    doc = json.load(open(sys.argv[1]))
    expect_version = doc.get("openapi", "")
    if not expect_version.startswith("3.0"):
        sys.exit("%s is not OpenAPI 3.0" % sys.argv[1])
    schema_doc = to_json_schema(doc)
    # RefResolver is what Debian 12's jsonschema 4.10 offers; newer
    # releases still accept it but warn.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        resolver = jsonschema.RefResolver.from_schema(schema_doc)
    matchers = path_matchers(doc)
    failures, seen = [], set()
    lines = [line for line in open(sys.argv[2]) if line.strip()]

    for number, line in enumerate(lines, 1):
        r = json.loads(line)
        where = "line %d: %s %s %d" % (number, r["method"].upper(),
                                       r["path"], r["status"])
        templates = [t for regex, t in matchers if regex.match(r["path"])]
        if not templates:
            failures.append(where + ": path not documented")
            continue
        # The most specific template: the one with fewest parameters.
        template = min(templates, key=lambda t: t.count("{"))
        operation = schema_doc["paths"][template].get(r["method"])
        if operation is None:
            failures.append(where + ": method not documented")
            continue
        response = operation["responses"].get(str(r["status"]))
        if response is None:
            failures.append(where + ": status not documented for " +
                            template)
            continue
        if "$ref" in response:
            name = response["$ref"].rsplit("/", 1)[1]
            response = schema_doc["components"]["responses"][name]
        content = response.get("content", {}).get("application/json")
        if content is None:
            failures.append(where + ": no JSON body documented")
            continue
        try:
            jsonschema.Draft7Validator(content["schema"],
                                       resolver=resolver).validate(r["body"])
        except jsonschema.ValidationError as error:
            failures.append("%s: %s at %s" % (
                where, error.message,
                "/".join(str(p) for p in error.absolute_path) or "body"))
        seen.add((template, r["status"]))

    for failure in failures[:20]:
        print("FAIL: " + failure, file=sys.stderr)
    if failures:
        print("%d of %d responses do not match" % (len(failures),
                                                   len(lines)),
              file=sys.stderr)
        sys.exit(1)
    print("%d responses match %d documented (path, status) pairs" %
          (len(lines), len(seen)))


if __name__ == "__main__":
    main()
