"""Set-up graph rewrites that let ONNX Runtime run the default models faster on one core.

ONNX Runtime's fastest CPU path for these networks is its NCHWc layout
(channels in blocks of 8 on AVX2, activations and residual adds fused into the
convolutions). Any operator it cannot run in that layout costs its own pass
over the tensor plus a reorder on each side. Both rewrites below replace such
operators by convolutions; the arithmetic is the same up to float rounding,
and the result is verified by output against the source model
(:func:`edge_agent.assets.verify.verify_same_outputs`), never by hash.

- MobileFaceNet (converted from TFLite) computes each PReLU as
  ``Relu(x) + c·(x − |x|)`` with ``c = a/2``: five operators and two reorders
  per activation, 33 times. Rewritten as ``x + (1 − a)·Relu(−x)``: a depthwise
  1×1 convolution by −1 with Relu fused, then a depthwise 1×1 convolution by
  ``1 − a`` with the add fused. (ONNX Runtime's own PRelu kernel, broadcasting
  a per-channel slope, measured slower than the decomposed form.)
- BlazeFace zero-pads channels with ``Concat(x, ConstantOfShape(0))``, which
  drops everything after it out of NCHWc. Rewritten as a 1×1 convolution whose
  weight is an identity block above zeros.
- BlazeFace's input height and width become symbolic (and its output
  reshapes ``[1, -1, K]``), so the detector can skip the letterbox padding
  beyond the next multiple of the coarsest stride (see
  :mod:`edge_agent.vision.blazeface`); at S×S it computes exactly what it did.

The names of the rewrites applied are recorded in the model's metadata
(``facegate.rewrites``), so that a cache optimised by an older set-up is
optimised again.

Needs the ``[models]`` extra (onnx); only ``facegate edge models fetch`` runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge_agent.errors import AssetError

if TYPE_CHECKING:
    import onnx

Rewrite = Callable[["onnx.ModelProto"], int]

#: Model metadata key listing the rewrites applied, comma-separated.
REWRITES_KEY = "facegate.rewrites"


def applied_rewrites(path: Path) -> list[str]:
    """The rewrites recorded in an optimised model (read with ONNX Runtime, no onnx needed)."""
    from edge_agent.vision.onnx_session import open_session

    meta = open_session(path).get_modelmeta().custom_metadata_map
    return [name for name in meta.get(REWRITES_KEY, "").split(",") if name]


def rewrite_prelu(model: onnx.ModelProto) -> int:
    """Replace each decomposed PReLU by two depthwise 1×1 convolutions; returns the count."""
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    replaced: dict[int, list[onnx.NodeProto]] = {}
    dropped: set[int] = set()
    for add in graph.node:
        if add.op_type != "Add" or len(add.input) != 2:
            continue
        ins = [producer.get(name) for name in add.input]
        relu = next((n for n in ins if n is not None and n.op_type == "Relu"), None)
        mul = next((n for n in ins if n is not None and n.op_type == "Mul"), None)
        if relu is None or mul is None:
            continue
        x = relu.input[0]
        operands = [producer.get(name) for name in mul.input]
        sub = next((n for n in operands if n is not None and n.op_type == "Sub"), None)
        scale = next((n for n in operands if n is not None and n.op_type == "Reshape"), None)
        if sub is None or scale is None or scale.input[0] not in inits or sub.input[0] != x:
            continue
        absolute = producer.get(sub.input[1])
        if absolute is None or absolute.op_type != "Abs" or absolute.input[0] != x:
            continue
        half_slope = numpy_helper.to_array(inits[scale.input[0]]).astype(np.float64).ravel()
        channels = half_slope.size
        out, name = add.output[0], add.name or add.output[0]
        neg_w, keep_w = f"{out}/prelu_neg_w", f"{out}/prelu_keep_w"
        graph.initializer.extend([
            numpy_helper.from_array(-np.ones((channels, 1, 1, 1), np.float32), neg_w),
            numpy_helper.from_array(
                (1.0 - 2.0 * half_slope).astype(np.float32).reshape(channels, 1, 1, 1), keep_w
            ),
        ])
        replaced[id(add)] = [
            helper.make_node(
                "Conv", [x, neg_w], [f"{out}/neg"], f"{name}/prelu_neg",
                group=channels, kernel_shape=[1, 1],
            ),
            helper.make_node("Relu", [f"{out}/neg"], [f"{out}/neg_relu"], f"{name}/prelu_relu"),
            helper.make_node(
                "Conv", [f"{out}/neg_relu", keep_w], [f"{out}/keep"], f"{name}/prelu_keep",
                group=channels, kernel_shape=[1, 1],
            ),
            helper.make_node("Add", [x, f"{out}/keep"], [out], f"{name}/prelu_add"),
        ]
        dropped.update(id(n) for n in (relu, mul, sub, scale, absolute))
    _replace_nodes(model, replaced, dropped)
    return len(replaced)


def rewrite_zero_pad(model: onnx.ModelProto) -> int:
    """Replace channel zero-padding (Concat with zeros) by a 1×1 convolution; returns the count."""
    from onnx import helper, numpy_helper, shape_inference

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in shape_inference.infer_shapes(model).graph.value_info
    }
    replaced: dict[int, list[onnx.NodeProto]] = {}
    dropped: set[int] = set()
    for concat in graph.node:
        axis = next((a.i for a in concat.attribute if a.name == "axis"), None)
        if concat.op_type != "Concat" or axis != 1 or len(concat.input) != 2:
            continue
        zeros = producer.get(concat.input[1])
        if zeros is None or zeros.op_type != "ConstantOfShape" or zeros.input[0] not in inits:
            continue
        value = next((a.t for a in zeros.attribute if a.name == "value"), None)
        if value is not None and numpy_helper.to_array(value).any():
            continue  # padding with something other than zeros
        pad = int(numpy_helper.to_array(inits[zeros.input[0]])[1])
        shape = shapes.get(concat.input[0], [])
        if len(shape) != 4 or shape[1] <= 0:
            continue
        channels = shape[1]
        weight = np.zeros((channels + pad, channels, 1, 1), np.float32)
        weight[np.arange(channels), np.arange(channels)] = 1.0
        w_name = f"{concat.output[0]}/pad_w"
        graph.initializer.append(numpy_helper.from_array(weight, w_name))
        replaced[id(concat)] = [
            helper.make_node(
                "Conv", [concat.input[0], w_name], [concat.output[0]],
                f"{concat.name or concat.output[0]}/pad_conv", kernel_shape=[1, 1],
            )
        ]
        dropped.add(id(zeros))
    _replace_nodes(model, replaced, dropped)
    return len(replaced)


def rewrite_free_size(model: onnx.ModelProto) -> int:
    """Make an NHWC input's height and width symbolic; returns the output reshapes freed.

    Each output of BlazeFace is a Reshape of a head to ``[1, anchors, K]`` by a
    constant shape: the anchor count becomes -1. The convolutions themselves
    take any size that is a multiple of their total stride.
    """
    from onnx import numpy_helper

    graph = model.graph
    if len(graph.input) != 1:
        return 0
    dims = graph.input[0].type.tensor_type.shape.dim
    if len(dims) != 4 or dims[3].dim_value != 3:
        return 0
    inits = {i.name: i for i in graph.initializer}
    outputs = {o.name: o for o in graph.output}
    freed = 0
    for node in graph.node:
        if node.op_type != "Reshape" or node.output[0] not in outputs:
            continue
        init = inits.get(node.input[1])
        if init is None:
            return 0
        shape = numpy_helper.to_array(init).astype(np.int64).copy()
        if shape.shape != (3,):
            return 0
        shape[1] = -1
        init.CopyFrom(numpy_helper.from_array(shape, init.name))
        out_dim = outputs[node.output[0]].type.tensor_type.shape.dim[1]
        out_dim.ClearField("dim_value")
        out_dim.dim_param = "anchors"
        freed += 1
    if freed != len(outputs):
        return 0  # some output is not a plain reshape: leave the model square
    for index, name in ((1, "height"), (2, "width")):
        dims[index].ClearField("dim_value")
        dims[index].dim_param = name
    del graph.value_info[:]
    return freed


def _replace_nodes(
    model: onnx.ModelProto, replaced: dict[int, list[onnx.NodeProto]], dropped: set[int]
) -> None:
    graph = model.graph
    nodes = []
    for node in graph.node:
        if id(node) in replaced:
            nodes.extend(replaced[id(node)])
        elif id(node) not in dropped:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    # Shapes recorded for the old intermediate values may no longer exist.
    del graph.value_info[:]


def optimize_model(source: Path, target: Path, rewrites: Sequence[Rewrite]) -> dict[str, int]:
    """Apply ``rewrites`` to ``source`` and write ``target`` atomically; returns counts by name.

    Every rewrite must apply at least once: the catalog names fixed model files,
    so a rewrite that finds nothing means an unexpected model.
    """
    try:
        import onnx
    except ImportError as exc:
        raise AssetError(
            f"optimising the models needs {exc.name}: pip install 'facegate[models]'"
        ) from exc
    model = onnx.load(str(source))
    counts = {rewrite.__name__: rewrite(model) for rewrite in rewrites}
    missing = [name for name, n in counts.items() if n == 0]
    if missing:
        raise AssetError(f"{source.name}: nothing to rewrite for {', '.join(missing)}")
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = REWRITES_KEY, ",".join(counts)
    onnx.checker.check_model(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_suffix(".part")
    onnx.save(model, str(part))
    part.replace(target)
    return counts
