"""The Open Inference Protocol v2 (KServe v2 / NVIDIA Triton REST): every loss as a model.

- :mod:`~service.api.v2.models`: model metadata derived from the registry.
- :mod:`~service.api.v2.transport`: the raw body: Content-Encoding and the split of
  Triton's binary tensor extension into a JSON header and binary chunks.
- :mod:`~service.api.v2.tensors`: tensors from JSON data or little-endian bytes, and back.
- :mod:`~service.api.v2.protocol`: the adapter: an inference request to the pipeline's
  :class:`~service.compute.pipeline.Call`, and its result to an inference response.
- :mod:`~service.api.v2.routes`: the ``/v2`` handlers; errors carry an ``error`` member.

References: https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/ and
https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_binary_data.md
"""
