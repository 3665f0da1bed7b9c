"""dlib's face-recognition ResNet converted to ONNX: the converter, its verified cache, the check.

The model side of :class:`lethe.embedding.onnx_resnet.OnnxResnetEmbedder` (which runs the result).
The converter reads ``dlib_face_recognition_resnet_model_v1.dat`` with :mod:`lethe.embedding.dlib_format`
and writes an equivalent ONNX graph:

* input ``chips``: uint8 [N, 150, 150, 3] RGB (NHWC, as the pipeline produces them); the graph does
  dlib's input step, ``(pixel - mean[channel]) / 256``, and the transpose to NCHW;
* every ``con`` followed by an ``affine`` becomes one Conv with the affine scale folded into the
  filters and its shift into the bias (exact up to float rounding);
* ``add_prev`` of tensors with different sizes zero-pads the smaller one at the end of each
  dimension first, as dlib's ``tt::add`` does (3x3 block output + 4x4 pooled shortcut in alevel1);
* output ``descriptor``: float32 [N, 128], the raw (unnormalised) descriptor dlib's
  ``compute_face_descriptor`` returns.

:func:`ensure_onnx_model` converts once into a cache folder (the file name holds the sha256 of the
source ``.dat`` and the converter version), records the sha256 of the ONNX file in a sidecar, checks
it on every load and rebuilds the file when it is missing or does not match. A fresh conversion is
used only once it reproduces dlib's own descriptor of a test chip (cosine >= 0.9999).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from lethe.embedding.dlib_format import (
    AddPrev,
    Affine,
    AvgPool,
    Conv,
    DlibNetwork,
    FullyConnected,
    MaxPool,
    Relu,
    Skip,
    Tag,
    output_shapes,
    parse_face_resnet,
)
from lethe.embedding.prepared import cpu_session, load_or_build, sidecar
from lethe.errors import ModelError
from lethe.models import dlib_model_path, sha256_file
from lethe.storage import atomic_write
from lethe.types import RGBImage

log = logging.getLogger(__name__)

#: Bump when the generated graph changes; it is part of the cached file's name.
CONVERTER_VERSION = 1
OPSET = 17
INPUT_NAME = "chips"
OUTPUT_NAME = "descriptor"
#: A fresh conversion must reproduce dlib's descriptor of a test chip at least this closely.
CHECK_MIN_COSINE = 0.9999

Shape = tuple[int, int, int]  # (channels, rows, cols) of one sample


class _GraphBuilder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count}"

    def const(self, prefix: str, value: npt.ArrayLike, dtype: type = np.float32) -> str:
        name = self.name(prefix)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs: list[str], prefix: str, **attrs: Any) -> str:
        out = self.name(prefix)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


def _folded_conv(conv: Conv, affine: Affine | None) -> tuple[np.ndarray, np.ndarray]:
    """Filters and bias of ``affine(conv(x))`` as one convolution, computed in float64."""
    filters = conv.filters.astype(np.float64)
    out_channels = filters.shape[0]
    bias = np.zeros(out_channels) if conv.bias is None else conv.bias.astype(np.float64)
    if affine is not None:
        gamma = affine.gamma.astype(np.float64)
        filters = filters * gamma[:, None, None, None]
        bias = bias * gamma + affine.beta.astype(np.float64)
    return filters.astype(np.float32), bias.astype(np.float32)


def build_model(net: DlibNetwork, *, source_sha256: str = "") -> onnx.ModelProto:
    """The ONNX graph equivalent to ``net`` (uint8 NHWC chips in, raw descriptors out)."""
    g = _GraphBuilder()
    rows, cols = net.input.rows, net.input.cols
    x = g.op("Cast", [INPUT_NAME], "to_float", to=TensorProto.FLOAT)
    x = g.op("Sub", [x, g.const("mean_rgb", net.input.mean)], "centred")
    x = g.op("Mul", [x, g.const("scale", 1.0 / 256.0)], "scaled")  # exact: a power of two
    x = g.op("Transpose", [x], "nchw", perm=[0, 3, 1, 2])
    layers = net.layers
    shapes = output_shapes(net)  # after each layer
    tags: dict[int, tuple[str, Shape]] = {}
    i = 0
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, Conv):
            following = layers[i + 1] if i + 1 < len(layers) else None
            affine = following if isinstance(following, Affine) else None
            filters, bias = _folded_conv(layer, affine)
            (sy, sx), (py, px) = layer.stride, layer.padding
            x = g.op(
                "Conv",
                [x, g.const("W", filters), g.const("B", bias)],
                "conv",
                kernel_shape=list(filters.shape[2:]),
                strides=[sy, sx],
                pads=[py, px, py, px],
            )
            i += 2 if affine is not None else 1
            continue
        if isinstance(layer, Affine):
            channels = layer.gamma.size
            x = g.op("Mul", [x, g.const("gamma", layer.gamma.reshape(channels, 1, 1))], "affine_mul")
            x = g.op("Add", [x, g.const("beta", layer.beta.reshape(channels, 1, 1))], "affine_add")
        elif isinstance(layer, Relu):
            x = g.op("Relu", [x], "relu")
        elif isinstance(layer, MaxPool | AvgPool):
            if isinstance(layer, AvgPool) and layer.size == (0, 0):
                x = g.op("GlobalAveragePool", [x], "global_avg")
            else:
                # dlib pools over the pixels inside the image only; with padding 0 (every pooling
                # layer of this network) that is exactly ONNX's MaxPool / AveragePool.
                if layer.padding != (0, 0):
                    raise ModelError("pooling with padding is not supported by the converter")
                op_type = "MaxPool" if isinstance(layer, MaxPool) else "AveragePool"
                x = g.op(
                    op_type, [x], op_type.lower(), kernel_shape=list(layer.size), strides=list(layer.stride)
                )
        elif isinstance(layer, Tag):
            tags[layer.tag] = (x, shapes[i])
        elif isinstance(layer, Skip):
            x = tags[layer.tag][0]
        elif isinstance(layer, AddPrev):
            other, other_shape = tags[layer.tag]
            x = _zero_pad_to(g, x, shapes[i - 1], shapes[i])
            other = _zero_pad_to(g, other, other_shape, shapes[i])
            x = g.op("Add", [x, other], "add_prev")
        elif isinstance(layer, FullyConnected):
            x = g.op("Flatten", [x], "flatten", axis=1)
            x = g.op("MatMul", [x, g.const("fc_W", layer.weights)], "fc")
            if layer.bias is not None:
                x = g.op("Add", [x, g.const("fc_B", layer.bias)], "fc_bias")
        else:  # pragma: no cover - the parser only produces the types above
            raise ModelError(f"unsupported layer {type(layer).__name__}")
        i += 1
    g.nodes.append(helper.make_node("Identity", [x], [OUTPUT_NAME], name="output"))

    graph = helper.make_graph(
        g.nodes,
        "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["batch", rows, cols, 3])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", shapes[-1][0]])],
        g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="lethe",
        producer_version=str(CONVERTER_VERSION),
        doc_string="dlib_face_recognition_resnet_model_v1 (Davis E. King, public domain), converted by lethe",
    )
    model.ir_version = 8  # readable by every onnxruntime the project allows (>= 1.18)
    helper.set_model_props(
        model,
        {"source": "dlib_face_recognition_resnet_model_v1.dat", "source_sha256": source_sha256},
    )
    return model


def _zero_pad_to(g: _GraphBuilder, x: str, shape: Shape, target: Shape) -> str:
    if shape == target:
        return x
    pads = [0, 0, 0, 0, 0, target[0] - shape[0], target[1] - shape[1], target[2] - shape[2]]
    return g.op("Pad", [x, g.const("pads", pads, np.int64)], "zero_pad", mode="constant")


def convert_bytes(dat_path: Path) -> bytes:
    """Parse the dlib model at ``dat_path`` and return the serialised, checked ONNX model."""
    try:
        raw = dat_path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read {dat_path}: {exc}") from exc
    net = parse_face_resnet(raw, dat_path.name)
    model = build_model(net, source_sha256=hashlib.sha256(raw).hexdigest())
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ModelError(f"the converted ONNX model is invalid: {exc}") from exc
    data: bytes = model.SerializeToString()
    return data


def convert(dat_path: Path, out_path: Path) -> str:
    """Convert ``dat_path`` to ONNX at ``out_path`` (atomically); return the ONNX file's sha256."""
    data = convert_bytes(dat_path)
    try:
        atomic_write(out_path, data)
    except OSError as exc:
        raise ModelError(f"cannot write {out_path}: {exc}") from exc
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------
# The verified cache


def cached_model_name(source_sha256: str) -> str:
    return f"dlib_face_recognition_resnet_model_v1-{source_sha256[:16]}-onnx{CONVERTER_VERSION}.onnx"


def ensure_onnx_model(
    cache_dir: Path, dat_path: Path | None = None, *, check_against_dlib: bool = True
) -> tuple[Path, bytes]:
    """The verified ONNX conversion of ``dat_path`` in ``cache_dir``, converting it if needed.

    A fresh conversion is first compared with dlib's own runtime on a test chip
    (``check_against_dlib``) and only then written. Returns the path and the bytes that were checked
    against the recorded sha256 (load those, not the path, so that what runs is what was checked)."""
    source = dat_path if dat_path is not None else dlib_model_path("resnet")
    try:
        source_sha = sha256_file(source)
    except OSError as exc:
        raise ModelError(f"cannot read {source}: {exc}") from exc
    target = cache_dir / cached_model_name(source_sha)

    def build() -> bytes:
        log.info("converting %s to ONNX in %s", source.name, cache_dir)
        data = convert_bytes(source)
        if check_against_dlib:
            _check_against_dlib(data, source)
        return data

    return target, load_or_build(target, build)


def cached_model_files(cache_dir: Path, dat_path: Path | None = None) -> list[Path]:
    """The verified conversion in ``cache_dir`` and its sha256 sidecar (converted first if needed):
    what another machine's cache folder needs to load the same model without converting it."""
    target, _ = ensure_onnx_model(cache_dir, dat_path)
    return [target, sidecar(target)]


def _test_chip() -> RGBImage:
    """A deterministic, face-sized test image: smooth colour gradients plus mild noise."""
    ramp = np.linspace(0.0, 1.0, 150)
    yy, xx = np.meshgrid(ramp, ramp, indexing="ij")
    noise = np.random.default_rng(150).normal(0.0, 12.0, (150, 150, 3))
    rgb = np.stack([200 * xx + 30, 160 * yy + 40, 120 * (1 - xx * yy) + 50], axis=2) + noise
    chip: RGBImage = np.clip(rgb, 0, 255).astype(np.uint8)
    return chip


def _check_against_dlib(data: bytes, dat_path: Path) -> None:
    """Refuse a conversion whose descriptor of a test chip differs from dlib's (cosine < 0.9999)."""
    import dlib

    chip = _test_chip()
    try:
        reference = np.asarray(dlib.face_recognition_model_v1(str(dat_path)).compute_face_descriptor(chip))
    except RuntimeError as exc:
        raise ModelError(f"dlib cannot load {dat_path.name} to check the conversion: {exc}") from exc
    (ours,) = cpu_session(data, 1, str(dat_path)).run([OUTPUT_NAME], {INPUT_NAME: chip[None]})
    a, b = np.asarray(ours[0], dtype=np.float64), reference.astype(np.float64)
    cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) or 1.0))
    if not cosine >= CHECK_MIN_COSINE:
        raise ModelError(
            f"the ONNX conversion of {dat_path.name} does not reproduce dlib (cosine {cosine:.6f}); "
            "not using it"
        )
    log.info("ONNX conversion checked against dlib: cosine %.7f", cosine)
