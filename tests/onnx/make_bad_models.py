#!/usr/bin/python3
"""make_bad_models.py OUTDIR — writes the hostile ONNX models of tests/onnx/test_bad_onnx.sh.

Each case is a file OUTDIR/NAME.onnx and a phrase the one-line error of `cnn run` and `cnn info` on it
must contain; OUTDIR/cases.tsv lists them (NAME, tab, PHRASE; a PHRASE of "-" means the model may also
load, as long as it loads or fails cleanly and quickly). OUTDIR/x.npy is an input of the shape every
model declares (2 x 1 x 4 x 4 float32), so that `cnn run` gets as far as loading the model.

Models are built with the onnx package's helper API (Debian's python3-onnx in /usr/bin/python3) or
written as raw protobuf bytes where the API would refuse them. Deterministic: rerun to rebuild.
"""
import os
import random
import sys

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h

N = h.make_node
SHAPE = [1, 4, 4]  # C H W of every model's input


def model(nodes, inits=(), opset=13, outputs=("y",), in_type=T.FLOAT, in_shape=None):
    x = h.make_tensor_value_info("x", in_type, ["N"] + (in_shape or SHAPE))
    ys = [h.make_tensor_value_info(o, T.FLOAT, None) for o in outputs]
    g = h.make_graph(nodes, "bad", [x], ys, initializer=list(inits))
    return h.make_model(g, opset_imports=[h.make_opsetid("", opset)], producer_name="make_bad_models.py")


def tensor(name, dtype, dims, values=()):
    """A TensorProto filled by hand: make_tensor refuses values that disagree with the dims."""
    t = T()
    t.name, t.data_type = name, dtype
    t.dims.extend(dims)
    if dtype == T.FLOAT:
        t.float_data.extend(values)
    return t


def floats(name, dims, n=None):
    count = 1
    for d in dims:
        count *= d
    return tensor(name, T.FLOAT, dims, [0.1 * (k % 7) for k in range(count if n is None else n)])


def ints(name, vals):
    return h.make_tensor(name, T.INT64, [len(vals)], vals)


def conv_model():
    """A valid conv + relu + flatten + gemm model (what the truncated case cuts)."""
    return model([N("Conv", ["x", "w", "b"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
                  N("Relu", ["c"], ["r"], name="relu"),
                  N("Flatten", ["r"], ["f"], name="flat"),
                  N("Gemm", ["f", "fw", "fb"], ["y"], name="fc", transB=1)],
                 [floats("w", [4, 1, 3, 3]), floats("b", [4]), floats("fw", [10, 64]), floats("fb", [10])])


def reshape_by(shape_nodes, shape_inits, shape_name):
    """x reshaped to a shape computed by shape_nodes (output shape_name), then a Relu."""
    return model(shape_nodes + [N("Reshape", ["x", shape_name], ["r"], name="reshape"),
                                N("Relu", ["r"], ["y"], name="relu")], shape_inits)


def varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, payload):
    """A length-delimited protobuf field."""
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def nested_subgraphs(depth):
    """A model whose graph's node holds an attribute holding a graph ... depth times: protobuf
    recursion that a parser without a depth limit follows down the stack. Each level is a prefix of
    the one inside it, so the prefixes are built inside out and joined once."""
    prefixes, inner = [], 0  # inner: the length of the graph one level down
    for _ in range(depth):
        attr = field(1, b"body") + varint(20 << 3) + varint(5) + varint(6 << 3 | 2) + varint(inner)
        node = field(4, b"If") + varint(5 << 3 | 2) + varint(len(attr) + inner)
        graph = varint(1 << 3 | 2) + varint(len(node) + len(attr) + inner)
        prefixes.append(graph + node + attr)
        inner += len(prefixes[-1])
    body = b"".join(reversed(prefixes))
    opset = field(1, b"") + varint(2 << 3) + varint(13)
    return varint(1 << 3) + varint(8) + field(7, body) + field(8, opset)  # ir_version, graph, opset_import


def cases():
    """(name, phrase, model or bytes)."""
    out = []
    good = conv_model().SerializeToString()
    out.append(("truncated", "not an ONNX model: the protobuf is truncated or malformed", good[:len(good) // 2]))
    rng = random.Random(20240601)
    out.append(("random-bytes", "not an ONNX model", bytes(rng.randrange(256) for _ in range(4096))))
    out.append(("empty", "the model has no graph", b""))

    # an initializer of 2^40 elements declared in a few bytes
    big = tensor("w", T.FLOAT, [1 << 20, 1 << 20])
    out.append(("dims-2-40", "tensor 'w': dims too large or negative",
                model([N("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[3, 3])], [big])))

    # axes out of range
    out.append(("concat-axis-7", "node 'cat': axis 7 is out of range",
                model([N("Concat", ["x", "x"], ["y"], name="cat", axis=7)])))
    out.append(("gather-axis-minus-9", "node 'gather': axis -9 is out of range",
                reshape_by([N("Shape", ["x"], ["s"], name="shape"),
                            N("Gather", ["s", "i0"], ["n"], name="gather", axis=-9),
                            N("Unsqueeze", ["n", "a0"], ["n1"], name="unsq"),
                            N("Concat", ["n1", "m1"], ["t"], name="cat", axis=0)],
                           [h.make_tensor("i0", T.INT64, [], [0]), ints("a0", [0]), ints("m1", [-1])], "t")))
    out.append(("unsqueeze-axes-out-of-range", "node 'unsq': axis 5 is out of range",
                reshape_by([N("Shape", ["x"], ["s"], name="shape"),
                            N("Unsqueeze", ["s", "a5"], ["t"], name="unsq")], [ints("a5", [5])], "t")))

    # names nothing defines, and a cycle
    out.append(("undefined-tensor", "node 'add': reads 'ghost', which nothing before it defines",
                model([N("Add", ["x", "ghost"], ["y"], name="add")])))
    out.append(("cycle", "node 'A': reads 'b', which nothing before it defines (an unknown name or a cycle)",
                model([N("Add", ["x", "b"], ["a"], name="A"), N("Relu", ["a"], ["b"], name="B"),
                       N("Relu", ["b"], ["y"], name="out")])))

    # an initializer whose data disagrees with its dims, wrong data types
    out.append(("initializer-size-mismatch", "tensor 'w': its dims give 36 values but it holds 5",
                model([N("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[3, 3])], [floats("w", [4, 1, 3, 3], 5)])))
    sw = h.make_tensor("w", T.STRING, [4, 1, 3, 3], [b"w"] * 36)
    out.append(("string-weights", "tensor 'w': data type string is not supported",
                model([N("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[3, 3])], [sw])))
    out.append(("int-input", "input 'x' is int64; only float inputs are supported",
                model([N("Relu", ["x"], ["y"], name="relu")], in_type=T.INT64)))

    # int64 shape arithmetic that overflows: (2^40) * (2^40) as a Reshape's target
    out.append(("int64-overflow", "node 'mul': integer overflow",
                reshape_by([N("Mul", ["p", "q"], ["pq"], name="mul"),
                            N("Concat", ["m1", "pq"], ["t"], name="cat", axis=0)],
                           [ints("p", [1 << 40]), ints("q", [1 << 40]), ints("m1", [-1])], "t")))

    # 10,000 nodes in a chain: loads (or fails cleanly) quickly, without deep recursion
    chain = [N("Relu" if k % 2 else "Identity", ["x" if k == 0 else "t%d" % (k - 1)],
               ["y" if k == 9999 else "t%d" % k], name="n%d" % k) for k in range(10000)]
    out.append(("chain-10000", "-", model(chain)))

    # unsupported: an op, a second output, an opset, external data
    out.append(("lrn", "node 'lrn1': op LRN (opset 13) is not supported",
                model([N("LRN", ["x"], ["y"], name="lrn1", size=3)])))
    out.append(("two-outputs", "the model has 2 outputs; one is supported",
                model([N("Relu", ["x"], ["y"], name="relu"), N("Sigmoid", ["x"], ["z"], name="sig")],
                      outputs=("y", "z"))))
    out.append(("opset-99", "opset 99 is newer than the newest supported",
                model([N("Relu", ["x"], ["y"], name="relu")], opset=99)))
    ext = tensor("w", T.FLOAT, [4, 1, 3, 3])
    ext.data_location = T.EXTERNAL
    for k, v in (("location", "weights.bin"), ("offset", "0"), ("length", "144")):
        e = ext.external_data.add()
        e.key, e.value = k, v
    out.append(("external-data", "tensor 'w': external data files are not supported",
                model([N("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[3, 3])], [ext])))

    # more of the same kind: other domains, no op type, an output without a name, memory and stack bombs
    out.append(("foreign-domain", "node 'fancy': op Fancy of domain 'com.example' is not supported",
                model([N("Fancy", ["x"], ["y"], name="fancy", domain="com.example")])))
    no_op = model([N("Relu", ["x"], ["y"], name="noop")])
    no_op.graph.node[0].ClearField("op_type")
    out.append(("no-op-type", "node 'noop': no op type", no_op))
    unnamed = model([N("Relu", ["x"], ["y"], name="relu")])
    unnamed.graph.output[0].ClearField("name")
    out.append(("output-without-name", "no name", unnamed))
    # ConstantOfShape 65536 x 65536 of ones: 16 GiB of floats asked for by a 150-byte file
    one = h.make_tensor("one", T.FLOAT, [1], [1.0])
    out.append(("constantofshape-16gib", "too large",
                model([N("ConstantOfShape", ["s"], ["k"], name="cos", value=one),
                       N("Add", ["k", "k"], ["k2"], name="twice"),
                       N("Shape", ["k2"], ["t"], name="shape"),
                       N("Reshape", ["x", "t"], ["y"], name="reshape")], [ints("s", [65536, 65536])])))
    out.append(("nested-subgraphs", "nested", nested_subgraphs(100000)))
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_bad_models.py OUTDIR")
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "cases.tsv"), "w") as tsv:
        for name, phrase, m in cases():
            data = m if isinstance(m, bytes) else m.SerializeToString()
            with open(os.path.join(outdir, name + ".onnx"), "wb") as f:
                f.write(data)
            tsv.write("%s\t%s\n" % (name, phrase))
    np.save(os.path.join(outdir, "x.npy"), np.zeros([2] + SHAPE, dtype=np.float32))


if __name__ == "__main__":
    main()
