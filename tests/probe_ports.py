"""Calls a port the way an anonymous attacker would, and says what happened.

    probe_ports.py grpc HOST:PORT /package.Service/Method
        an unauthenticated unary call with an empty message over plain HTTP/2;
        prints the gRPC status code name (OK means the call was served)
    probe_ports.py tls HOST:PORT
        a TLS handshake without a client certificate, then an HTTP/2 preface;
        prints `served` if the server answered, `refused` otherwise
"""

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


def main(argv):
    if len(argv) == 4 and argv[1] == "grpc":
        print(grpc_call(argv[2], argv[3]))
        return 0
    if len(argv) == 3 and argv[1] == "tls":
        print(tls_probe(argv[2]))
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
