"""YuNet (OpenCV Zoo, 2023mar) ONNX face detector on ONNX Runtime: the default.

It gives each face's box and five landmarks (eye centres, nose tip, mouth corners), which the
ArcFace alignment of SFace uses directly. The model file comes from a path, the model cache or a
sha256-pinned download (see ``lethe.models.registry``).

The graph runs on ONNX Runtime (measured 1.75x faster than OpenCV's FaceDetectorYN on the same
file here, docs/benchmarks.md), with its input size freed in memory (the official file fixes it at
640x640; the file on disk is left as it is). The outputs are decoded as FaceDetectorYN decodes them
(tests/test_detector_contract.py checks the two agree): per stride 8, 16 and 32, a score
``sqrt(cls * obj)``, a box centred at ``(col + dx, row + dy) * stride`` of size
``exp(dw, dh) * stride``, landmarks at ``(col + kx, row + ky) * stride``; then non-maximum
suppression at IoU 0.3.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lethe.detection.scan import Found, TiledDetector
from lethe.embedding.prepared import cpu_session, fold_constant_weights
from lethe.errors import ModelError
from lethe.types import RGBImage

if TYPE_CHECKING:
    import onnx

STRIDES = (8, 16, 32)
#: Two boxes overlapping more than this (IoU) are one face: the lower score goes (OpenCV's 0.3).
NMS_IOU = 0.3
#: At most this many faces per pass (OpenCV's top_k).
TOP_K = 5000


def _prepared_graph(data: bytes) -> bytes:
    """The graph ONNX Runtime runs: its input's height and width, and its outputs' lengths, left
    free; in the block-quantized release, its weights dequantized once to fp32."""
    import onnx

    try:
        model = onnx.load_from_string(data)
        dims = model.graph.input[0].type.tensor_type.shape.dim
        dims[2].dim_param, dims[3].dim_param = "height", "width"
        for output in model.graph.output:
            output.type.tensor_type.shape.dim[1].dim_param = "anchors"
    except Exception as exc:  # onnx raises DecodeError and others for a file that is not a graph
        raise ModelError(f"not a YuNet ONNX graph: {exc}") from exc
    del model.graph.value_info[:]  # shapes inferred for 640x640; ONNX Runtime infers them again
    _per_tensor_scales_unblocked(model)
    result: bytes = fold_constant_weights(model, "the YuNet weight subgraph").SerializeToString()
    return result


def _per_tensor_scales_unblocked(model: onnx.ModelProto) -> None:
    """The int8bq release dequantizes some tensors with a single scale but a ``block_size``
    attribute (one block covering the whole tensor: per tensor in effect, and valid ONNX); ONNX
    Runtime refuses a block size, or a scale that is not a scalar, there. Those nodes get their
    scale and zero point as scalars and no block size or axis: the same values, per tensor."""
    from onnx import numpy_helper

    initializers = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        scale = initializers.get(node.input[1]) if node.op_type == "DequantizeLinear" else None
        if scale is None or int(np.prod(scale.dims)) != 1:
            continue
        for position in range(1, len(node.input)):
            original = initializers[node.input[position]]
            scalar = numpy_helper.from_array(
                numpy_helper.to_array(original).reshape(()), f"{original.name}_scalar"
            )
            if scalar.name not in initializers:
                model.graph.initializer.append(scalar)
                initializers[scalar.name] = scalar
            node.input[position] = scalar.name
        keep = [a for a in node.attribute if a.name not in ("block_size", "axis")]
        del node.attribute[:]
        node.attribute.extend(keep)


class YuNetDetector(TiledDetector):
    """YuNet on ONNX Runtime, on the whole photo and, in large photos, in tiles
    (``lethe.detection.scan``)."""

    name = "yunet"
    #: Faces at least this wide (px at the scale YuNet runs at) are found: measured on 150 LFW faces
    #: scaled down, 98% at 24 px, 93% at 20, 70% at 16 (docs/benchmarks.md).
    smallest_face_px = 24

    def __init__(
        self,
        model_path: Path,
        *,
        max_side_px: int = 1024,
        min_score: float = 0.8,
        min_face_px: int = 20,
        small_face_px: int = 40,
    ) -> None:
        try:
            data = _prepared_graph(Path(model_path).read_bytes())
        except (OSError, ModelError) as exc:
            raise ModelError(f"cannot load YuNet model {model_path}: {exc}") from exc
        # One thread: ingest runs one worker per core already, and the same photo must give the same
        # boxes and landmarks whatever the machine's load (SFace's template follows the landmarks).
        self._session = cpu_session(data, 1, f"YuNet model {model_path}")
        self._outputs = [f"{kind}_{s}" for kind in ("cls", "obj", "bbox", "kps") for s in STRIDES]
        self.max_side_px = max_side_px
        self.min_score = min_score
        self.min_face_px = min_face_px
        self.small_face_px = small_face_px

    def _pass(self, image: RGBImage) -> list[Found]:
        height, width = image.shape[:2]
        # The network sees BGR values 0-255, the image padded with black to a multiple of 32.
        padded_h, padded_w = -(-height // 32) * 32, -(-width // 32) * 32
        blob = np.zeros((1, 3, padded_h, padded_w), np.float32)
        blob[0, :, :height, :width] = image[:, :, ::-1].transpose(2, 0, 1)
        outputs = self._session.run(self._outputs, {"input": blob})
        n = len(STRIDES)  # outputs: cls, obj, bbox, kps, each per stride
        rows = [
            _decode(
                stride,
                padded_w // stride,
                outputs[i],
                outputs[i + n],
                outputs[i + 2 * n],
                outputs[i + 3 * n],
                self.min_score,
            )
            for i, stride in enumerate(STRIDES)
        ]
        faces = np.concatenate(rows)
        faces = faces[np.isfinite(faces).all(axis=1)]  # a degenerate input can give inf or NaN
        return [
            Found(
                float(f[0]),
                float(f[1]),
                float(f[0] + f[2]),
                float(f[1] + f[3]),
                float(f[14]),
                tuple((float(f[i]), float(f[i + 1])) for i in range(4, 14, 2)),
            )
            for f in faces[_suppressed(faces)]
        ]


def _decode(
    stride: int,
    cols: int,
    cls: np.ndarray,
    obj: np.ndarray,
    bbox: np.ndarray,
    kps: np.ndarray,
    min_score: float,
) -> np.ndarray:
    """One stride's faces at or above ``min_score`` as rows of FaceDetectorYN's layout: x, y, w, h,
    five (x, y) landmarks, score."""
    score = np.sqrt(np.clip(cls[0, :, 0], 0, 1) * np.clip(obj[0, :, 0], 0, 1))
    (keep,) = np.nonzero(score >= min_score)
    col = (keep % cols).astype(np.float32)[:, None]
    row = (keep // cols).astype(np.float32)[:, None]
    box, points = bbox[0, keep], kps[0, keep]
    with np.errstate(over="ignore", invalid="ignore"):
        size = np.exp(box[:, 2:4]) * stride
        centre = np.hstack([col + box[:, :1], row + box[:, 1:2]]) * stride
        marks = (points + np.tile(np.hstack([col, row]), 5)) * stride
        return np.hstack([centre - size / 2, size, marks, score[keep, None]]).astype(np.float32)


def _suppressed(faces: np.ndarray) -> list[int]:
    """Indices of the faces non-maximum suppression keeps, best score first."""
    order = np.argsort(-faces[:, 14], kind="stable")[:TOP_K]
    left, top = faces[:, 0], faces[:, 1]
    right, bottom = left + faces[:, 2], top + faces[:, 3]
    area = faces[:, 2] * faces[:, 3]
    kept: list[int] = []
    while order.size:
        best, rest = order[0], order[1:]
        kept.append(int(best))
        w = np.clip(np.minimum(right[best], right[rest]) - np.maximum(left[best], left[rest]), 0, None)
        h = np.clip(np.minimum(bottom[best], bottom[rest]) - np.maximum(top[best], top[rest]), 0, None)
        inter = w * h
        order = rest[inter / (area[best] + area[rest] - inter) <= NMS_IOU]
    return kept
