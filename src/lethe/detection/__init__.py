"""Face detectors behind one protocol: dlib HOG (default, no download) and YuNet ONNX (optional)."""

from lethe.detection.base import Detector
from lethe.detection.dlib_hog import DlibHogDetector

__all__ = ["Detector", "DlibHogDetector"]
