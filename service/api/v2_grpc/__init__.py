"""The Open Inference Protocol v2 over gRPC (``inference.GRPCInferenceService``): the proto and
the modules grpcio-tools generates from it (``python -m service.api.v2_grpc.generate``)."""
