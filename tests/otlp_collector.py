"""A minimal OTLP/gRPC trace collector for the tracing tests, keeping what they check.

Serves the OpenTelemetry TraceService (from the official opentelemetry-proto package) on a
free loopback port, prints the port, and appends one JSON line per received span to the
file named on the command line: service, name, ids, the span's attributes, and its events
(name, attributes), attribute values as JSON scalars.
"""

import json
import sys
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


def value(v):
    kind = v.WhichOneof("value")
    if kind in ("string_value", "bool_value", "int_value", "double_value"):
        return getattr(v, kind)
    return str(v)


def attributes(attrs):
    return {a.key: value(a.value) for a in attrs}


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, path):
        self.path = path

    def Export(self, request, context):
        with open(self.path, "a", encoding="utf-8") as out:
            for rs in request.resource_spans:
                service = attributes(rs.resource.attributes).get("service.name", "")
                for scope in rs.scope_spans:
                    for span in scope.spans:
                        record = {
                            "service": service,
                            "name": span.name,
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_span_id": span.parent_span_id.hex(),
                            "attributes": attributes(span.attributes),
                            "events": [
                                {"name": e.name, "attributes": attributes(e.attributes)}
                                for e in span.events
                            ],
                        }
                        out.write(json.dumps(record) + "\n")
        return trace_service_pb2.ExportTraceServiceResponse()


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Collector(sys.argv[1]), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
