"""Face embedders behind one protocol (:class:`Embedder`): aligned chips in, 128-D unit vectors out.

The default (``LETHE_EMBEDDER=sface``, :mod:`lethe.config`) is SFace on ONNX Runtime
(:mod:`lethe.embedding.sface`, 112x112 ArcFace-aligned chips). The alternatives are dlib's ResNet on
150x150 dlib chips: converted to ONNX (``onnx``: :mod:`lethe.embedding.onnx_resnet`, the converter
in :mod:`lethe.embedding.dlib_onnx`) or on dlib's own runtime (``dlib``: :class:`DlibResnetEmbedder`,
the reference). :func:`lethe.pipeline.build_embedder` builds the configured one; the ONNX Runtime
embedders are imported there, only when chosen.
"""

from lethe.embedding.base import Embedder
from lethe.embedding.dlib_resnet import DlibResnetEmbedder

__all__ = ["DlibResnetEmbedder", "Embedder"]
