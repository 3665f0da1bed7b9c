"""SFace (OpenCV Zoo, 2021dec, block-quantized int8 release) on ONNX Runtime.

The shipped file needs two graph-only repairs before ONNX Runtime runs it well; they are made once
per user (the prepared file lives in the model cache with its sha256, see
:mod:`lethe.embedding.prepared`) and checked against the original graph's output first:

1. the quantization tool left graph inputs that no node reads (and initializers listed as inputs):
   ONNX Runtime refuses the file ("Required inputs ... are missing"); only the real input stays;
2. every weight is stored block-quantized and dequantized on each call (``DequantizeLinear`` and
   ``Reshape`` on constants): those constant subgraphs are evaluated once, by ONNX Runtime itself,
   and replaced by fp32 initializers (same output within 1e-5; speed in docs/benchmarks.md).

A third, speed-only rewrite replaces each PRelu by the same function in operators that ONNX
Runtime runs in its blocked convolution layout (:func:`split_prelu`). The prepared graph
takes what the pipeline produces: uint8 [N, 112, 112, 3] RGB chips aligned to the ArcFace template
(:mod:`lethe.arcface`), cast and transposed to the model's NCHW float input (the model subtracts
127.5 and scales by 1/128 itself); batch size is free. Output: 128-D, L2-normalised here.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from lethe.embedding.base import check_chips, check_runtime
from lethe.embedding.prepared import cpu_session, fold_constant_weights, load_or_build
from lethe.errors import ModelError
from lethe.models import sha256_file
from lethe.types import EMBEDDING_DIM, Embedding, RGBImage, l2_normalise

log = logging.getLogger(__name__)

#: Bump when the prepared graph changes; it is part of the cached file's name.
PREPARE_VERSION = 3
INPUT_NAME = "chips"
CHIP_SIZE = 112
#: The prepared graph must reproduce the original's unit output this closely on a test chip.
CHECK_MAX_ABS_DIFF = 1e-4


def _load(data: bytes, what: str) -> onnx.ModelProto:
    try:
        return onnx.load_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ModelError(f"{what} is not an ONNX model: {exc}") from exc


def drop_unused_inputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """Repair 1: keep only the graph inputs a node reads that are not initializers."""
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    used = {name for node in graph.node for name in node.input}
    keep = [i for i in graph.input if i.name in used and i.name not in initializers]
    if len(keep) != 1:
        raise ModelError(f"expected one real input in the SFace graph, found {len(keep)}")
    del graph.input[:]
    graph.input.extend(keep)
    return model


def split_prelu(model: onnx.ModelProto) -> onnx.ModelProto:
    """Rewrite each ``PRelu(x, a)`` as ``a * x + (1 - a) * Relu(x)``, the two products as 1x1
    depthwise convolutions: the same function (within 3e-7 on the unit output), but every operator
    now runs in ONNX Runtime's blocked convolution layout. Its PRelu kernel, and the layout
    conversions around it that an elementwise rewrite still needed, took about half of each call
    (profiled with ONNX Runtime's profiler, bench/embed_speed.py)."""
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type != "PRelu":
            nodes.append(node)
            continue
        x, slope_name = node.input
        (y,) = node.output
        if slope_name not in initializers:
            raise ModelError(f"PRelu {node.name!r} has no constant slope")
        slope = numpy_helper.to_array(initializers[slope_name]).astype(np.float32).reshape(-1)
        channels = int(slope.size)
        scale_x = numpy_helper.from_array(slope.reshape(channels, 1, 1, 1), f"{y}_slope")
        scale_relu = numpy_helper.from_array((1 - slope).reshape(channels, 1, 1, 1), f"{y}_rest")
        graph.initializer.extend([scale_x, scale_relu])
        depthwise: dict[str, Any] = {"group": channels, "kernel_shape": [1, 1]}
        nodes += [
            helper.make_node("Conv", [x, scale_x.name], [f"{y}_ax"], name=f"{y}_ax", **depthwise),
            helper.make_node("Relu", [x], [f"{y}_relu"], name=f"{y}_relu"),
            helper.make_node(
                "Conv", [f"{y}_relu", scale_relu.name], [f"{y}_rx"], name=f"{y}_rx", **depthwise
            ),
            helper.make_node("Add", [f"{y}_ax", f"{y}_rx"], [y], name=f"{y}_prelu"),
        ]
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def take_chips(model: onnx.ModelProto) -> onnx.ModelProto:
    """Feed the graph uint8 NHWC chips of any batch size (cast and transposed to its NCHW input)."""
    graph = model.graph
    original = graph.input[0].name
    cast, nchw = "chips_float", original
    graph.node.insert(0, helper.make_node("Transpose", [cast], [nchw], name="chips_nchw", perm=[0, 3, 1, 2]))
    graph.node.insert(
        0, helper.make_node("Cast", [INPUT_NAME], [cast], name="chips_cast", to=TensorProto.FLOAT)
    )
    del graph.input[:]
    graph.input.append(
        helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["batch", CHIP_SIZE, CHIP_SIZE, 3])
    )
    output = graph.output[0]
    del graph.output[:]
    graph.output.append(
        helper.make_tensor_value_info(output.name, TensorProto.FLOAT, ["batch", EMBEDDING_DIM])
    )
    del graph.value_info[:]
    return model


def check_chip() -> RGBImage:
    """A deterministic, face-sized test image: smooth colour gradients plus mild noise."""
    ramp = np.linspace(0.0, 1.0, CHIP_SIZE)
    yy, xx = np.meshgrid(ramp, ramp, indexing="ij")
    noise = np.random.default_rng(112).normal(0.0, 12.0, (CHIP_SIZE, CHIP_SIZE, 3))
    rgb = np.stack([200 * xx + 30, 160 * yy + 40, 120 * (1 - xx * yy) + 50], axis=2) + noise
    chip: RGBImage = np.clip(rgb, 0, 255).astype(np.uint8)
    return chip


def prepare(original: bytes) -> bytes:
    """The repaired, folded graph that takes chips, checked against the original graph's output."""
    repaired = drop_unused_inputs(_load(original, "the SFace file"))
    reference_input = repaired.graph.input[0].name
    reference = cpu_session(repaired.SerializeToString(), 1, "the repaired SFace graph")
    prepared = take_chips(split_prelu(fold_constant_weights(repaired, "the SFace weight subgraph")))
    try:
        onnx.checker.check_model(prepared)
    except onnx.checker.ValidationError as exc:
        raise ModelError(f"the prepared SFace graph is invalid: {exc}") from exc
    data: bytes = prepared.SerializeToString()
    chip = check_chip()
    nchw = np.ascontiguousarray(chip.transpose(2, 0, 1)[None], dtype=np.float32)
    (expected,) = reference.run(None, {reference_input: nchw})
    (ours,) = cpu_session(data, 1, "the prepared SFace graph").run(None, {INPUT_NAME: chip[None]})
    diff = float(np.abs(l2_normalise(expected) - l2_normalise(ours)).max())
    if not diff <= CHECK_MAX_ABS_DIFF:
        raise ModelError(f"the prepared SFace graph does not reproduce the original (max diff {diff:.2e})")
    log.info("SFace graph prepared and checked against the original: max abs diff %.1e", diff)
    return data


def prepared_name(model_sha256: str) -> str:
    return f"sface-{model_sha256[:16]}-prepared{PREPARE_VERSION}.onnx"


def ensure_prepared(model_path: Path, cache_dir: Path) -> tuple[Path, bytes, str]:
    """The prepared graph for the (already verified) official file: path, bytes, official sha256."""
    try:
        original = model_path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read {model_path}: {exc}") from exc
    model_sha = sha256_file(model_path)
    target = cache_dir / prepared_name(model_sha)
    return target, load_or_build(target, lambda: prepare(original)), model_sha


class SFaceEmbedder:
    """SFace on 112x112 ArcFace-aligned chips. ``threads``: ONNX Runtime intra-op threads.
    ``batch_size`` 1 by default: one chip per call was the fastest per face (bench/embed_speed.py;
    larger batches spill the activations out of the cache)."""

    name = "sface"
    model_id = "sface-2021dec-int8bq"
    dim = EMBEDDING_DIM
    chip_size = CHIP_SIZE
    chip_padding = 0.0
    alignment = "arcface"

    def __init__(self, model_path: Path, cache_dir: Path, threads: int = 1, batch_size: int = 1) -> None:
        check_runtime(threads, batch_size)
        self.batch_size = batch_size
        self.model_path, data, self.model_sha256 = ensure_prepared(model_path, cache_dir)
        self._session = cpu_session(data, threads, str(self.model_path))
        self._output = self._session.get_outputs()[0].name

    def embed(self, chips: list[RGBImage]) -> Embedding:
        if not chips:
            return np.zeros((0, self.dim), dtype=np.float32)
        check_chips(chips, self.chip_size)
        out: list[npt.NDArray[np.float32]] = []
        for start in range(0, len(chips), self.batch_size):
            batch = np.stack(chips[start : start + self.batch_size])
            try:
                (result,) = self._session.run([self._output], {INPUT_NAME: batch})
            except Exception as exc:  # onnxruntime raises its own pybind exception types
                raise ModelError(f"ONNX Runtime failed on {self.model_path.name}: {exc}") from exc
            out.append(np.asarray(result, dtype=np.float32))
        return l2_normalise(np.concatenate(out, axis=0))
