"""The Open Inference Protocol over gRPC (grpc.aio), apps as its models."""
