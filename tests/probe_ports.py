"""Calls a port the way an anonymous attacker would, and says what happened.

    probe_ports.py grpc HOST:PORT /package.Service/Method
        an unauthenticated unary call with an empty message over plain HTTP/2;
        prints the gRPC status code name (OK means the call was served)
    probe_ports.py tls HOST:PORT
        a TLS handshake without a client certificate, then an HTTP/2 preface;
        prints `served` if the server answered, `refused` otherwise
    probe_ports.py http URL [METHOD]
        an HTTP request without cookies or credentials (GET unless METHOD says POST), not
        following redirects; prints the status code, for a redirect ` -> LOCATION`, and
        ` grpc-status N` if a gRPC router answered (tonic answers unknown paths that way)
"""

import http.client
import urllib.parse

import socket
import ssl
import sys

import grpc

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def grpc_call(target, method):
    channel = grpc.insecure_channel(target)
    call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    try:
        call(b"", timeout=10)
        return "OK"
    except grpc.RpcError as e:
        return e.code().name


def tls_probe(target):
    host, port = target.rsplit(":", 1)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    try:
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="sluice-cluster") as tls:
                tls.sendall(PREFACE)
                data = tls.recv(9)
                return "served" if data else "refused"
    except (ssl.SSLError, OSError):
        return "refused"


def http_probe(url, method="GET"):
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    body = "{}" if method == "POST" else None
    headers = {"Content-Type": "application/json"} if method == "POST" else {}
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        body = response.read()
    except OSError as e:
        return f"error {e}"
    finally:
        conn.close()
    answer = str(response.status)
    location = response.getheader("Location")
    if location:
        answer += f" -> {location}"
    grpc_status = response.getheader("grpc-status")
    if grpc_status is not None:
        answer += f" grpc-status {grpc_status}"
        if body:
            answer += f" with a {len(body)}-byte body"
    return answer


def main(argv):
    if len(argv) == 4 and argv[1] == "grpc":
        print(grpc_call(argv[2], argv[3]))
        return 0
    if len(argv) == 3 and argv[1] == "tls":
        print(tls_probe(argv[2]))
        return 0
    if len(argv) in (3, 4) and argv[1] == "http":
        print(http_probe(argv[2], argv[3] if len(argv) == 4 else "GET"))
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
