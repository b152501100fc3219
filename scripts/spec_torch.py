"""spec_torch.py -- a torch module from cnn.c model-spec text, for tests/golden/gen_net.py (PyTorch parity
fixtures) and bench/train_torch.py (the same model trained in PyTorch). A subset of the grammar: square
kernels, integer stride and pad, no dilation, ceil mode or dropout; name=, from=, add, concat, mul, the
activations, convtranspose, upsample; a `train` line (the recipe) is skipped. Needs torch (Debian's
/usr/bin/python3 with python3-torch).
"""
import torch
import torch.nn as nn


# Every tensor is kept NCHW; flatten and dense give N x F x 1 x 1 (as libcnn's shapes: F x 1 x 1), and the
# net's output is flattened to N x F for the loss.

class Flatten(nn.Module):
    def forward(self, x):
        return x.reshape(x.shape[0], -1, 1, 1)


class Dense(nn.Linear):
    """dense OUT: a Linear over the C x 1 x 1 features of its input (libcnn takes 1 x 1 spatial inputs)."""
    def forward(self, x):
        return super().forward(x.flatten(1)).reshape(x.shape[0], -1, 1, 1)


class Add(nn.Module):
    def forward(self, *xs):
        y = xs[0]
        for x in xs[1:]:
            y = y + x  # left to right, as layer_merge.c
        return y


class Concat(nn.Module):
    def forward(self, *xs):
        return torch.cat(xs, dim=1)


class Mul(nn.Module):
    def forward(self, a, b):
        return a * b  # an N x C x 1 x 1 side broadcasts over H x W


ACTS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hardsigmoid": nn.Hardsigmoid, "hardswish": nn.Hardswish,
        "silu": nn.SiLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
MERGES = {"add": Add, "concat": Concat, "mul": Mul}


def out_size(size, k, stride, pad):
    return (size + 2 * pad - k) // stride + 1


class SpecNet(nn.Module):
    """A torch module from model-spec text (the subset of the grammar the fixtures use: square kernels,
    integer stride and pad, no dilation, ceil mode or dropout). layers holds one module per spec line, in
    line order, so its parameters enumerate in cnn.c's flat order; inputs[i] lists what layer i reads
    (earlier layer indices, -1 the net's input)."""

    def __init__(self, spec):
        super().__init__()
        self.layers = nn.ModuleList()
        self.inputs = []
        self.loss = None
        shapes, names = {}, {}
        for lineno, line in enumerate(spec.split("\n"), 1):
            tok = line.split("#")[0].split()
            if not tok:
                continue
            where = "line %d (%s)" % (lineno, line)
            if tok[0] == "train":
                continue  # the recipe: the trainer's business
            if tok[0] == "input":
                assert not shapes, where
                shapes[-1] = self.input_shape = tuple(int(v) for v in tok[1:4])
                continue
            assert shapes and self.loss is None, where
            kw, i = tok[0], len(self.layers)
            pos = [t for t in tok[1:] if "=" not in t]
            opt = dict(t.split("=", 1) for t in tok[1:] if "=" in t)
            name = opt.pop("name", None)

            def ref(word):
                if word == "input":
                    return -1
                if word.startswith("-"):
                    assert 1 <= int(word[1:]) <= i, where
                    return i - int(word[1:])
                return names[word]

            if kw in MERGES:
                ins = ([i - 1] if len(pos) == 1 else []) + [ref(w) for w in pos]  # one word: previous and it
                pos = []
            else:
                ins = [ref(opt.pop("from"))] if "from" in opt else [i - 1]  # the previous layer, or the input
            c, h, w = shapes[ins[0]]
            if kw == "conv":
                f, k = int(pos[0]), int(pos[1])
                s, pd, g = int(opt.pop("stride", 1)), int(opt.pop("pad", 0)), int(opt.pop("groups", 1))
                m = nn.Conv2d(c, f, k, stride=s, padding=pd, groups=g, bias=opt.pop("bias", "1") == "1")
                shape = (f, out_size(h, k, s, pd), out_size(w, k, s, pd))
            elif kw == "convtranspose":
                f, k = int(pos[0]), int(pos[1])
                s, pd, g = int(opt.pop("stride", 1)), int(opt.pop("pad", 0)), int(opt.pop("groups", 1))
                op = int(opt.pop("outpad", 0))
                m = nn.ConvTranspose2d(c, f, k, stride=s, padding=pd, output_padding=op, groups=g,
                                       bias=opt.pop("bias", "1") == "1")
                shape = (f, (h - 1) * s - 2 * pd + k + op, (w - 1) * s - 2 * pd + k + op)
            elif kw == "upsample":
                sc = int(pos[0])
                m = nn.Upsample(scale_factor=sc, mode="nearest")
                shape = (c, h * sc, w * sc)
            elif kw in ("maxpool", "avgpool"):
                k = int(pos[0])
                s, pd = int(opt.pop("stride", k)), int(opt.pop("pad", 0))
                m = (nn.MaxPool2d if kw == "maxpool" else nn.AvgPool2d)(k, stride=s, padding=pd)
                shape = (c, out_size(h, k, s, pd), out_size(w, k, s, pd))
            elif kw == "batchnorm":
                m = nn.BatchNorm2d(c)
                shape = (c, h, w)
            elif kw == "leaky_relu":
                m = nn.LeakyReLU(float(opt.pop("alpha", 0.01)))
                shape = (c, h, w)
            elif kw in ACTS:
                m = ACTS[kw]()
                shape = (c, h, w)
            elif kw == "globalavgpool":
                m = nn.AdaptiveAvgPool2d(1)
                shape = (c, 1, 1)
            elif kw == "flatten":
                m = Flatten()
                shape = (c * h * w, 1, 1)
            elif kw == "dense":
                assert h == 1 and w == 1, where
                m = Dense(c, int(pos[0]), bias=opt.pop("bias", "1") == "1")
                shape = (int(pos[0]), 1, 1)
            elif kw in MERGES:
                m = MERGES[kw]()
                sh = [shapes[t] for t in ins]
                if kw == "add":
                    assert all(s == sh[0] for s in sh), where
                    shape = sh[0]
                elif kw == "concat":
                    assert all(s[1:] == sh[0][1:] for s in sh), where
                    shape = (sum(s[0] for s in sh), h, w)
                else:
                    assert len(sh) == 2 and sh[0][0] == sh[1][0], where
                    shape = sh[0] if sh[0][1:] != (1, 1) else sh[1]
            elif kw == "softmax_ce":
                self.loss = "softmax_ce"
                self.out = ins[0]
                continue
            else:
                raise SystemExit("gen_net.py: %s: layer '%s' not supported here" % (where, kw))
            assert not opt and len(pos) <= 2, where  # an option or word this interpreter ignores
            if name is not None:
                assert name not in names and name != "input", where
                names[name] = i
            self.layers.append(m)
            self.inputs.append(ins)
            shapes[i] = shape
        assert self.loss == "softmax_ce", "the fixtures end in softmax_ce"

    def forward(self, x, visit=None):
        """visit(i, module, inputs), if given, sees every layer's inputs before it runs."""
        outs = {-1: x}
        for i, (m, ins) in enumerate(zip(self.layers, self.inputs)):
            xs = [outs[t] for t in ins]
            if visit is not None:
                visit(i, m, xs)
            outs[i] = m(*xs)
        return outs[self.out].flatten(1)
