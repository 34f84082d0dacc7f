"""The Open Inference Protocol v2 (KServe v2 / NVIDIA Triton REST): every loss as a model.

- :mod:`~service.inference.models`: model metadata derived from the registry.
- :mod:`~service.inference.transport`: the raw body: Content-Encoding and the split of
  Triton's binary tensor extension into a JSON header and binary chunks.
- :mod:`~service.inference.tensors`: tensors from JSON data or little-endian bytes, and back.
- :mod:`~service.inference.protocol`: an inference request to :func:`service.engine.compute`
  and its result to an inference response.
- :mod:`~service.inference.routes`: the ``/v2`` router; errors carry an ``error`` member.

References: https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/ and
https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_binary_data.md
"""
