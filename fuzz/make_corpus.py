#!/usr/bin/python3
"""make_corpus.py — writes the seed corpora under fuzz/corpus/ (deterministic; rerun to rebuild).

Python's standard library only. Checkpoints follow docs/checkpoint.md (versions 1 to 3); IDX seeds are
u32 little-endian L + images file (L bytes) + labels file, the input format of fuzz_idx.c; images
are tiny PNGs of every colour type, binary PGM/PPM, and a 1-bit BMP. CSV
seeds are train.csv files (fuzz_csv.c); CIFAR seeds are a mode byte, u16 little-endian M, M bytes of
meta file and the test batch (fuzz_cifar.c). ONNX seeds are small .onnx files written with the onnx
package's helper API (the onnx target alone needs it: Debian's python3-onnx, in /usr/bin/python3).
Also copies models/*.cfg and a few of tests/data/images. A seed whose name starts with "bad-" must be
refused by its loader, every other seed must load (tests/test_fuzz_regress.c checks both). Run from anywhere:
    /usr/bin/python3 fuzz/make_corpus.py [TARGET...]
TARGET (spec, checkpoint, idx, image, csv, cifar, onnx; default all) names the corpus folders rebuilt; the
others are left as they are. The image folder also holds JPEG and BMP seeds that this script does not
write (the loader's own test files): rebuild it and they are gone, so name only the targets you change.
"""
import gzip
import os
import shutil
import struct
import sys
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


# ---------------------------------------------------------------- model specs

SPECS = {
    "small-conv.cfg": "input 1 4 4\nconv 2 3\nrelu\nflatten\ndense 3\nsoftmax_ce\n",
    "all-layers.cfg": """# every keyword and option at least once
input 2 9 9
erase p=0.5 scale=0.02,0.33 ratio=0.3,3.3 value=0
conv 4 3x2 stride=1x2 pad=1,0,1,1 dil=1 groups=2 bias=1
batchnorm eps=1e-3 momentum=0.2
leaky_relu alpha=0.1
maxpool 2x2 stride=1 pad=1 dil=1 ceil=1
conv 4 3 pad=same groups=4 bias=0
sigmoid
avgpool 2 stride=2 pad=1 ceil=0 count_include_pad=0
tanh
dropout 0.25
globalavgpool
flatten
dense 5 bias=0
dropout p=0
mse reduction=mean
""",
    "pad-same.cfg": "input 3 7 5\nconv 8 5x3 pad=same stride=2 dil=2\nrelu\nmaxpool 3 stride=2 pad=1\nflatten\ndense 4\nmse\n",
    "no-loss.cfg": "input 1 8 8\nconv 2 1\nrelu\navgpool 2\n",
    "bad-line.cfg": "input 1 28 28\nconv 32 3 pad=1\nrelu\nmaxpool 2 pad=3\n",
    "graph.cfg": """# names, from=, the merge layers, the newer layers and a recipe
input 3 8 8
train epochs=2 batch=4 lr=0.1 nesterov augment
conv 4 3 pad=1 name=a
relu6 name=t
conv 4 3 pad=1 from=t
hardswish
add t
conv 2 1 from=a name=b
upsample 2
conv 2 3 stride=2 pad=1
silu
concat -1 b -5
globalavgpool name=g
dense 8
hardsigmoid
mul -4
convtranspose 4 3 stride=2 pad=1 outpad=1 groups=2
maxpool 2
flatten
dense 3
softmax_ce from=-1 smoothing=0.1
""",
    "bad-graph.cfg": "input 1 8 8\nconv 2 3 name=x\nadd y x\nconv 2 1 name=y\n",
}


def write_specs():
    for name, text in SPECS.items():
        put("spec", name, text)
    for cfg in sorted(os.listdir(os.path.join(ROOT, "models"))):
        if cfg.endswith(".cfg"):
            shutil.copy(os.path.join(ROOT, "models", cfg), os.path.join(CORPUS, "spec", cfg))


# ---------------------------------------------------------------- checkpoints (docs/checkpoint.md)

def f32s(values):
    return struct.pack("<Q", len(values)) + b"".join(struct.pack("<f", v) for v in values)


def ramp(n, scale=0.01):
    return [((i * 37) % 23 - 11) * scale for i in range(n)]


def checkpoint(spec, params, state, optim=None, epoch=1, step=8, history=None, names=(), fit=0, norm=None):
    """optim: (kind, momentum, nesterov, weight_decay, beta1, beta2, eps, steps, state_count);
    history: None for a version-1 file, else the records (epoch and 7 floats) of a version-2 one,
    whose data section holds the input fit and the class names (str); norm: None for version 2, else
    a version-3 file's input normalisation, a (mean, std) pair per input channel ([]: none)."""
    version = 1 if history is None else 2 if norm is None else 3
    body = b"CNNCKPT\0" + struct.pack("<II", version, 1 if optim else 0)
    body += struct.pack("<Q", len(spec)) + spec.encode()
    body += f32s(ramp(params)) + f32s([0.5] * state)
    body += struct.pack("<QQ", 0x0123456789ABCDEF, 0xFEDCBA9876543210)  # dropout rng
    body += struct.pack("<iqQQQii", epoch, step, 42, 7, 9, 4, 3)  # epoch step seed rng batch epochs
    body += struct.pack("<ffii", 0.28, 0.35, 2, 1)  # mean std crop_pad flip
    body += struct.pack("<ifqqqf", 2, 0.01, 2, 100, 10, 0.1)  # schedule: cosine, lr, warmup, total, size, gamma
    if history is not None:
        body += struct.pack("<Q", len(history)) + b"".join(struct.pack("<i7f", *r) for r in history)
        body += struct.pack("<iI", fit, len(names))
        body += b"".join(struct.pack("<H", len(n.encode())) + n.encode() for n in names)
    if norm is not None:
        body += struct.pack("<I", len(norm)) + b"".join(struct.pack("<f", m) for m, _ in norm)
        body += b"".join(struct.pack("<f", s) for _, s in norm)
    if optim:
        kind, mom, nest, wd, b1, b2, eps, steps, count = optim
        body += struct.pack("<ififfffq", kind, mom, nest, wd, b1, b2, eps, steps) + f32s(ramp(count, 0.001))
    return body + struct.pack("<I", zlib.crc32(body))


def write_checkpoints():
    a = "input 1 4 4\nconv 2 3\nrelu\nflatten\ndense 3\nsoftmax_ce\n"  # 20 + 27 parameters
    put("checkpoint", "adam.ckpt", checkpoint(a, 47, 0, (1, 0.0, 0, 0.0, 0.9, 0.999, 1e-8, 8, 94)))
    put("checkpoint", "deploy.ckpt", checkpoint(a, 47, 0))
    b = ("input 1 6 6\nconv 2 3 pad=1 bias=0\nbatchnorm\nleaky_relu alpha=0.1\nmaxpool 2\ndropout 0.25\n"
         "flatten\ndense 2\nmse reduction=mean\n")  # 18 + 4 + 38 parameters, 4 state
    put("checkpoint", "sgd-batchnorm.ckpt", checkpoint(b, 60, 4, (0, 0.9, 1, 1e-4, 0.0, 0.0, 0.0, 3, 60)))
    c = ("input 2 5 5\nconv 4 3 groups=2 stride=2 pad=1\nsigmoid\navgpool 2 ceil=1\ntanh\nglobalavgpool\n"
         "flatten\ndense 2\nsoftmax_ce\n")  # 40 + 10 parameters
    put("checkpoint", "adamw-groups.ckpt", checkpoint(c, 50, 0, (2, 0.0, 0, 0.01, 0.8, 0.99, 1e-6, 1, 100)))
    put("checkpoint", "sgd-plain.ckpt", checkpoint(c, 50, 0, (0, 0.0, 0, 0.0, 0.0, 0.0, 0.0, 0, 0)))
    # version 2: a history (a NaN test loss is "not measured"), an empty one, and epochs out of order
    nan = float("nan")
    runs = [(1, 1.1, 0.5, 1.2, 0.45, 0.01, 900.0, 0.5), (2, 0.9, 0.6, nan, nan, 0.01, 1000.0, 0.4),
            (4, 0.7, 0.7, 0.8, 0.65, 0.005, 950.0, 0.45)]
    adam = (1, 0.0, 0, 0.0, 0.9, 0.999, 1e-8, 8, 94)
    put("checkpoint", "adam-history.ckpt", checkpoint(a, 47, 0, adam, epoch=4, history=runs))
    put("checkpoint", "deploy-no-history.ckpt", checkpoint(a, 47, 0, history=[]))
    put("checkpoint", "bad-history-order.ckpt", checkpoint(a, 47, 0, adam, epoch=4, history=runs[1:] + runs[:1]))
    # class names (multi-byte UTF-8 among them) and the pad fit
    put("checkpoint", "adam-names.ckpt", checkpoint(a, 47, 0, adam, epoch=4, history=runs,
                                                    names=["sandal", "caf\u00e9 \u2615", "ankle boot"], fit=1))
    # version 3: the input normalisation, per channel (two of them), none, and a std of 0
    put("checkpoint", "norm-two-channels.ckpt", checkpoint(c, 50, 0, history=runs, names=["a", "b"],
                                                           norm=[(0.49, 0.25), (0.48, 0.24)]))
    put("checkpoint", "norm-none.ckpt", checkpoint(a, 47, 0, adam, history=[], norm=[]))
    put("checkpoint", "bad-norm-std-0.ckpt", checkpoint(a, 47, 0, history=[], norm=[(0.5, 0.0)]))
    put("checkpoint", "bad-norm-channels.ckpt", checkpoint(a, 47, 0, history=[], norm=[(0.5, 1.0), (0.5, 1.0)]))


# ---------------------------------------------------------------- IDX

def idx(dims, data):
    return struct.pack(">BBBB", 0, 0, 8, len(dims)) + b"".join(struct.pack(">I", d) for d in dims) + bytes(data)


def idx_pair(images, labels):
    return struct.pack("<I", len(images)) + images + labels


def write_idx():
    img3 = idx([2, 3, 3], range(18))
    img4 = idx([2, 2, 2, 2], [i * 16 for i in range(16)])
    lab = idx([2], [1, 0])
    put("idx", "raw-3d", idx_pair(img3, lab))
    put("idx", "raw-4d", idx_pair(img4, lab))
    put("idx", "gz-3d", idx_pair(gz(img3), gz(lab)))
    put("idx", "gz-images-raw-labels", idx_pair(gz(img4), lab))
    # the first three images of the committed Fashion-MNIST test subset, raw and compressed
    with gzip.open(os.path.join(ROOT, "tests", "data", "t10k-images-idx3-ubyte.gz")) as f:
        real = f.read(16 + 3 * 784)
    with gzip.open(os.path.join(ROOT, "tests", "data", "t10k-labels-idx1-ubyte.gz")) as f:
        real_lab = f.read(8 + 3)
    real = real[:4] + struct.pack(">I", 3) + real[8:]
    real_lab = real_lab[:4] + struct.pack(">I", 3) + real_lab[8:]
    put("idx", "fashion-3-raw", idx_pair(real, real_lab))
    put("idx", "fashion-3-gz", idx_pair(gz(real), gz(real_lab)))


# ---------------------------------------------------------------- images

def png(w, h, color, depth, rows, plte=None, trns=None, interlace=0):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, interlace))
    if plte:
        out += chunk(b"PLTE", plte)
    if trns:
        out += chunk(b"tRNS", trns)
    return out + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def raw_rows(h, row_bytes, filt=0):
    return b"".join(bytes([filt]) + bytes((y * 31 + x * 7) & 0xFF for x in range(row_bytes)) for y in range(h))


def write_images():
    put("image", "gray-3x3.png", png(3, 3, 0, 8, raw_rows(3, 3)))
    put("image", "gray-1bit-9x2.png", png(9, 2, 0, 1, raw_rows(2, 2)))
    put("image", "gray16-2x2.png", png(2, 2, 0, 16, raw_rows(2, 4, 1)))
    put("image", "gray-alpha-2x3.png", png(2, 3, 4, 8, raw_rows(3, 4, 2)))
    put("image", "rgb-3x2.png", png(3, 2, 2, 8, raw_rows(2, 9, 3)))
    put("image", "rgba-2x2.png", png(2, 2, 6, 8, raw_rows(2, 8, 4)))
    put("image", "palette-4x2.png", png(4, 2, 3, 4, raw_rows(2, 2), plte=bytes(range(12)), trns=b"\x00\x80"))
    # Adam7: a 5x5 RGB image is seven passes of sub-images
    passes = [(1, 1), (1, 1), (2, 1), (1, 2), (3, 1), (2, 3), (5, 2)]
    put("image", "rgb-interlaced-5x5.png", png(5, 5, 2, 8, b"".join(raw_rows(ph, 3 * pw) for pw, ph in passes),
                                               interlace=1))
    put("image", "gray-3x2.pgm", b"P5\n# a comment\n3 2\n255\n" + bytes(range(0, 240, 40)))
    put("image", "rgb-2x2.ppm", b"P6 2 2 255\n" + bytes(range(12)))
    put("image", "bad-maxval-15.pgm", b"P5 2 1 15\n\x01\x02")
    put("image", "gray-1bit-2x2.bmp", b"BM" + struct.pack("<IHHI", 66, 0, 0, 62) +
        struct.pack("<IiiHHIIiiII", 40, 2, 2, 1, 1, 0, 8, 2835, 2835, 2, 2) + b"\0\0\0\0\xff\xff\xff\0" +
        b"\x80\0\0\0\x40\0\0\0")
    images = os.path.join(ROOT, "tests", "data", "images")
    for name in ("5_sandal.png", "test_499.pgm", "wrong_size_32x32.png"):
        shutil.copy(os.path.join(images, name), os.path.join(CORPUS, "image", name))


# ---------------------------------------------------------------- CSV

def csv(images, labels, px, eol="\n", last=True, side=0):
    """Kaggle's layout; side > 0 names the pixels RxC (shorter than pixelN) for a side x side image."""
    if side:
        names = ["%dx%d" % (k // side + 1, k % side + 1) for k in range(px)]
    else:
        names = ["pixel%d" % (k + 1) for k in range(px)]
    lines = ["label," + ",".join(names)]
    lines += [",".join(str(v) for v in [lab] + list(im)) for im, lab in zip(images, labels)]
    return eol.join(lines) + (eol if last else "")


def write_csv():
    ims = [[0, 1, 2, 255], [9, 8, 7, 6], [128, 0, 64, 32]]
    put("csv", "gray-2x2.csv", csv(ims, [3, 0, 7], 4))
    put("csv", "crlf-no-final-eol.csv", csv(ims, [1, 1, 2], 4, "\r\n", False))
    put("csv", "spaces-trailing-blanks.csv", "label, a, b, c, d\n 5 , 1 , 2 , 3 , 4 \n6,0,0,0,0\n\n \r\n")
    put("csv", "one-pixel.csv", "label,pixel1\n0,17\n255,3\n")
    # the first image of the committed Fashion-MNIST test subset (6 KB: within fuzz.sh's -max_len)
    with gzip.open(os.path.join(ROOT, "tests", "data", "t10k-images-idx3-ubyte.gz")) as f:
        real = f.read(16 + 784)[16:]
    with gzip.open(os.path.join(ROOT, "tests", "data", "t10k-labels-idx1-ubyte.gz")) as f:
        real_lab = f.read(8 + 1)[8:]
    put("csv", "fashion-1.csv", csv([real], list(real_lab), 784, side=28))
    put("csv", "bad-fields.csv", "label,a,b,c,d\n1,0,0,0,0\n2,0,0,0\n")
    put("csv", "bad-pixel-300.csv", "label,a,b,c,d\n1,0,300,0,0\n")
    put("csv", "bad-not-square.csv", "label,a,b,c\n1,0,0,0\n")


# ---------------------------------------------------------------- CIFAR

def cifar_records(labels, coarse=None):
    out = b""
    for i, lab in enumerate(labels):
        out += (bytes([coarse[i]]) if coarse else b"") + bytes([lab])
        out += bytes((k * 7 + lab * 13 + i) & 0xFF for k in range(3072))
    return out


def cifar_input(mode, meta, batch):
    return bytes([mode]) + struct.pack("<H", len(meta)) + meta + batch


def write_cifar():
    names10 = b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n"
    names100 = b"".join(b"class_%02d\r\n" % k for k in range(100))
    put("cifar", "cifar10-one", cifar_input(0, b"", cifar_records([7])))
    put("cifar", "cifar10-two-names", cifar_input(2, names10 + b"\n", cifar_records([0, 9])))
    put("cifar", "cifar100-one", cifar_input(1, b"", cifar_records([99], [19])))
    put("cifar", "cifar100-one-names", cifar_input(3, names100, cifar_records([42], [3])))
    put("cifar", "bad-label-10", cifar_input(0, b"", cifar_records([10])))
    put("cifar", "bad-size", cifar_input(0, b"", cifar_records([1]) + b"\0"))
    put("cifar", "bad-nine-names", cifar_input(2, names10[:-6], cifar_records([1])))


# ---------------------------------------------------------------- ONNX models (fuzz_onnx.c)

def onnx_seeds():
    """name -> model bytes: every op family the importer converts, on inputs of a few pixels."""
    import onnx
    from onnx import TensorProto as T
    from onnx import helper as h

    def init(name, dims, dtype=T.FLOAT, vals=None):
        n = 1
        for d in dims:
            n *= d
        if vals is None:
            vals = ramp(n, 0.05) if dtype == T.FLOAT else list(range(n))
        return h.make_tensor(name, dtype, dims, vals)

    def model(nodes, inits, shape, out_shape, opset=13, name="g"):
        x = h.make_tensor_value_info("x", T.FLOAT, ["N"] + shape)
        y = h.make_tensor_value_info("y", T.FLOAT, ["N"] + out_shape)
        g = h.make_graph(nodes, name, [x], [y], initializer=inits)
        m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)], producer_name="make_corpus.py")
        return m.SerializeToString()

    N = h.make_node
    out = {}
    out["conv-relu-pool-gemm.onnx"] = model(
        [N("Conv", ["x", "w", "b"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
         N("Relu", ["c"], ["r"], name="relu"),
         N("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
         N("Flatten", ["p"], ["f"], name="flat", axis=1),
         N("Gemm", ["f", "fw", "fb"], ["y"], name="fc", transB=1)],
        [init("w", [2, 1, 3, 3]), init("b", [2]), init("fw", [3, 8]), init("fb", [3])], [1, 4, 4], [3])
    out["residual-add.onnx"] = model(
        [N("Conv", ["x", "w1"], ["a"], name="c1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
         N("Relu", ["a"], ["r"], name="r1"),
         N("Conv", ["r", "w2", "b2"], ["c"], name="c2", kernel_shape=[1, 1]),
         N("Add", ["c", "x"], ["y"], name="add")],
        [init("w1", [2, 2, 3, 3]), init("w2", [2, 2, 1, 1]), init("b2", [2])], [2, 3, 3], [2, 3, 3])
    out["concat.onnx"] = model(
        [N("Conv", ["x", "w1"], ["a"], name="c1", kernel_shape=[1, 1]),
         N("Conv", ["x", "w2"], ["b"], name="c2", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
         N("Concat", ["a", "b", "x"], ["y"], name="cat", axis=1)],
        [init("w1", [1, 1, 1, 1]), init("w2", [2, 1, 3, 3])], [1, 3, 3], [4, 3, 3])
    out["batchnorm.onnx"] = model(
        [N("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3]),
         N("BatchNormalization", ["c", "g", "bb", "m", "v"], ["n"], name="bn", epsilon=1e-3),
         N("Sigmoid", ["n"], ["y"], name="sig")],
        [init("w", [2, 1, 3, 3]), init("g", [2], vals=[1.5, 0.5]), init("bb", [2], vals=[0.1, -0.1]),
         init("m", [2], vals=[0.2, -0.3]), init("v", [2], vals=[0.9, 1.1])], [1, 4, 4], [2, 2, 2])
    # x.reshape(x.shape[0], -1) as exporters write it
    out["reshape-from-shape.onnx"] = model(
        [N("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[1, 1]),
         N("Shape", ["c"], ["s"], name="shape"),
         N("Gather", ["s", "zero"], ["n"], name="gather", axis=0),
         N("Unsqueeze", ["n", "axes"], ["n1"], name="unsq"),
         N("Concat", ["n1", "minus1"], ["t"], name="cat", axis=0),
         N("Reshape", ["c", "t"], ["f"], name="reshape"),
         N("Gemm", ["f", "fw"], ["y"], name="fc", transB=1)],
        [init("w", [2, 1, 1, 1]), init("zero", [], T.INT64, [0]), init("axes", [1], T.INT64, [0]),
         init("minus1", [1], T.INT64, [-1]), init("fw", [2, 18])], [1, 3, 3], [2])
    out["pad-avgpool.onnx"] = model(
        [N("Pad", ["x", "pads"], ["p"], name="pad", mode="constant"),
         N("AveragePool", ["p"], ["a"], name="avg", kernel_shape=[3, 3], strides=[2, 2]),
         N("GlobalAveragePool", ["a"], ["y"], name="gap")],
        [init("pads", [8], T.INT64, [0, 0, 1, 1, 0, 0, 1, 1])], [2, 5, 5], [2, 1, 1])
    out["clip-relu6.onnx"] = model(
        [N("Conv", ["x", "w", "b"], ["c"], name="conv", kernel_shape=[2, 2], strides=[2, 2]),
         N("Clip", ["c", "lo", "hi"], ["y"], name="clip")],
        [init("w", [3, 1, 2, 2]), init("b", [3]), init("lo", [], vals=[0.0]), init("hi", [], vals=[6.0])],
        [1, 4, 4], [3, 2, 2])
    out["resize-nearest.onnx"] = model(
        [N("Resize", ["x", "", "scales"], ["r"], name="up", mode="nearest",
           coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
         N("Conv", ["r", "w"], ["y"], name="conv", kernel_shape=[3, 3])],
        [init("scales", [4], vals=[1.0, 1.0, 2.0, 2.0]), init("w", [1, 1, 3, 3])], [1, 3, 3], [1, 4, 4])
    # refused: a file cut short, an op not converted, a read of a name nothing defines, opset 99
    good = out["conv-relu-pool-gemm.onnx"]
    out["bad-truncated.onnx"] = good[:len(good) // 2]
    out["bad-lrn.onnx"] = model([N("LRN", ["x"], ["y"], name="lrn", size=3)], [], [2, 3, 3], [2, 3, 3])
    out["bad-undefined-input.onnx"] = model(
        [N("Add", ["x", "ghost"], ["y"], name="add")], [], [1, 2, 2], [1, 2, 2])
    out["bad-opset-99.onnx"] = model([N("Relu", ["x"], ["y"], name="relu")], [], [1, 2, 2], [1, 2, 2], opset=99)
    out["bad-axis-7.onnx"] = model([N("Concat", ["x", "x"], ["y"], name="cat", axis=7)], [], [1, 2, 2], [2, 2, 2])
    for name, data in out.items():
        assert len(data) < 8192, name
        if not name.startswith("bad-"):
            onnx.checker.check_model(onnx.load_from_string(data))
    return out


def write_onnx():
    for name, data in onnx_seeds().items():
        put("onnx", name, data)


WRITERS = {"spec": lambda: write_specs(), "checkpoint": lambda: write_checkpoints(), "idx": lambda: write_idx(),
           "image": lambda: write_images(), "csv": lambda: write_csv(), "cifar": lambda: write_cifar(),
           "onnx": lambda: write_onnx()}

if __name__ == "__main__":
    targets = sys.argv[1:] or list(WRITERS)
    unknown = [t for t in targets if t not in WRITERS]
    if unknown:
        sys.exit("make_corpus.py: unknown target %s (targets: %s)" % (unknown[0], " ".join(WRITERS)))
    for t in targets:
        shutil.rmtree(os.path.join(CORPUS, t), ignore_errors=True)
        WRITERS[t]()
