#!/usr/bin/env python3
"""An HTTP server on loopback that checks AWS Signature Version 4 the way AWS documents it.

s3rver, the S3 server of the upload tests, does not check V4 signatures; this one does, with
the Python standard library only, so the tests see whether S3Client's requests would pass
AWS's check: the canonical request, the string to sign, the signing key and the signature,
and that x-amz-content-sha256 and Content-MD5 match the body.

  sigv4_server.py ACCESS_KEY SECRET_KEY REGION

Prints "listening on 127.0.0.1:PORT" once it listens. Answers 200 (with an ETag, the body's
MD5) to a request whose signature matches, else 403 with an S3 error document saying why.
"""
import base64
import hashlib
import hmac
import http.server
import sys

ACCESS_KEY, SECRET_KEY, REGION = sys.argv[1], sys.argv[2], sys.argv[3]


def hmac_sha256(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def refuse(code, message):
    return 403, f"<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"


def check(method, raw_path, headers, body):
    auth = headers.get("authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return refuse("AccessDenied", "no AWS4-HMAC-SHA256 authorization")
    fields = dict(part.strip().split("=", 1) for part in auth[len("AWS4-HMAC-SHA256 "):].split(","))
    key, date, region, service, terminal = fields["Credential"].split("/")
    if key != ACCESS_KEY:
        return refuse("InvalidAccessKeyId", "unknown key")
    if region != REGION or service != "s3" or terminal != "aws4_request":
        return refuse("AuthorizationHeaderMalformed", f"scope {region}/{service}/{terminal}")
    signed = fields["SignedHeaders"].split(";")
    for required in ("host", "x-amz-date", "x-amz-content-sha256"):
        if required not in signed:
            return refuse("AccessDenied", f"{required} is not signed")
    payload_hash = headers.get("x-amz-content-sha256", "")
    if payload_hash != hashlib.sha256(body).hexdigest():
        return refuse("XAmzContentSHA256Mismatch", "x-amz-content-sha256 is not the body's")
    if method == "PUT" and headers.get("content-md5") != base64.b64encode(hashlib.md5(body).digest()).decode():
        return refuse("BadDigest", "Content-MD5 is not the body's")
    if "x-amz-security-token" in headers and "x-amz-security-token" not in signed:
        return refuse("AccessDenied", "x-amz-security-token is not signed")
    path, _, query = raw_path.partition("?")
    canonical_query = "&".join(sorted(query.split("&"))) if query else ""
    canonical_headers = "".join(f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed)
    canonical_request = "\n".join([method, path, canonical_query, canonical_headers, ";".join(signed), payload_hash])
    amz_date = headers.get("x-amz-date", "")
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
    signing_key = hmac_sha256(
        hmac_sha256(hmac_sha256(hmac_sha256(("AWS4" + SECRET_KEY).encode(), date), region), service), "aws4_request")
    expected = hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, fields["Signature"]):
        return refuse("SignatureDoesNotMatch", "the signature does not match")
    return 200, ""


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, method):
        length = int(self.headers.get("content-length", "0") or "0")
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        status, text = check(method, self.path, headers, body)
        payload = text.encode()
        self.send_response(status)
        if status == 200:
            self.send_header("ETag", '"' + hashlib.md5(body).hexdigest() + '"')
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(0 if method == "HEAD" else len(payload)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(payload)

    def do_PUT(self):
        self.answer("PUT")

    def do_HEAD(self):
        self.answer("HEAD")

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
