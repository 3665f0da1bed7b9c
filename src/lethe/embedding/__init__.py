"""Face embedders behind one protocol. The default is dlib's ResNet (128-D) on 150x150 chips."""

from lethe.embedding.base import Embedder
from lethe.embedding.dlib_resnet import DlibResnetEmbedder

__all__ = ["DlibResnetEmbedder", "Embedder"]
