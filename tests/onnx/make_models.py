#!/usr/bin/python3
"""Export reference ONNX models (random, seeded weights) for cnn.c's ONNX import tests.

Usage:
    /usr/bin/python3 tests/onnx/make_models.py OUTDIR [NAME...] [--opset N]
    /usr/bin/python3 tests/onnx/make_models.py --list

For every model NAME (default: all) this writes
    OUTDIR/NAME.onnx     exported with torch.onnx.export (opset 13 by default,
                         constant folding on, input 'input', output 'output',
                         dynamic batch axis 0 on both)
    OUTDIR/NAME.in.npy   float32 input, seeded
    OUTDIR/NAME.out.npy  PyTorch's eval-mode output on that input, float32
and prints one line: name, input shape, output shape, ONNX size, seconds, op types.

Needs torch, numpy, onnx (Debian's /usr/bin/python3 has them) and, for the
torchvision models, python3-torchvision. No pretrained weights are used
(weights=None everywhere). BatchNorm running stats and affine parameters are
set to random values so that batchnorm is not the identity.

Exit status: 0 if every model was exported, 1 if any failed (each failure is
reported and the remaining models are still exported), 2 on usage errors.
"""

import argparse
import os
import sys
import time
import traceback

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 0


# --------------------------------------------------------------------------
# Small hand-written models (input N x 1 x 28 x 28 unless noted, batch 2)
# --------------------------------------------------------------------------

class FashionCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.drop(x)
        return self.fc2(x)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = x if self.short is None else self.short(x)
        return F.relu(out + sc)


class FashionResNet(nn.Module):
    """ResNet-20 style (3 stages x 3 basic blocks, 16/32/64 channels) for 1x28x28."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv = nn.Conv2d(1, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        layers = []
        cin = 16
        for i, c in enumerate((16, 32, 64)):
            for j in range(3):
                stride = 2 if (j == 0 and i > 0) else 1
                layers.append(BasicBlock(cin, c, stride))
                cin = c
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        x = self.layers(x)
        x = torch.flatten(self.pool(x), 1)
        return self.fc(x)


class SEBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 16, 3, padding=1)
        self.fc1 = nn.Conv2d(16, 4, 1)
        self.fc2 = nn.Conv2d(4, 16, 1)
        self.head = nn.Linear(16 * 28 * 28, 10)

    def forward(self, x):
        x = F.relu(self.conv(x))
        s = F.adaptive_avg_pool2d(x, 1)
        s = F.relu(self.fc1(s))
        s = F.hardsigmoid(self.fc2(s))
        x = x * s
        return self.head(torch.flatten(x, 1))


class InceptionBlock(nn.Module):
    """Four branches concatenated on channels; the output is the feature map."""

    def __init__(self, cin=1):
        super().__init__()
        self.b1 = nn.Conv2d(cin, 8, 1)
        self.b2 = nn.Sequential(nn.Conv2d(cin, 8, 1), nn.ReLU(),
                                nn.Conv2d(8, 12, 3, padding=1))
        self.b3 = nn.Sequential(nn.Conv2d(cin, 4, 1), nn.ReLU(),
                                nn.Conv2d(4, 6, 5, padding=2))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1),
                                nn.Conv2d(cin, 6, 1))

    def forward(self, x):
        return F.relu(torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1))


class UpsampleBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.up1 = nn.ConvTranspose2d(8, 6, 3, stride=2, padding=1, output_padding=1)
        self.up2 = nn.Upsample(scale_factor=2, mode='nearest')
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))          # 28x28
        x = F.relu(self.up1(x))            # 56x56
        x = self.up2(x)                    # 112x112
        x = F.relu(self.conv2(x))
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


class Activations(nn.Module):
    """1x1 convs with one activation after each; the output is the feature map."""

    def __init__(self):
        super().__init__()
        acts = [nn.LeakyReLU(0.1), nn.ReLU6(), nn.Hardswish(), nn.SiLU(),
                nn.Sigmoid(), nn.Tanh(), nn.Hardsigmoid()]
        layers = []
        cin = 1
        for a in acts:
            layers += [nn.Conv2d(cin, 8, 1), a]
            cin = 8
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)


class AvgPoolVariants(nn.Module):
    """Pooling edge cases on N x 3 x 15 x 15; outputs flattened and concatenated.

    avg(3,s2,p1,count_include_pad=True)  -> 8x8
    avg(3,s2,p1,count_include_pad=False) -> 8x8
    max(3,s2,ceil_mode=True)             -> 7x7 (ceil is a no-op at 15x15)
    max(2,s2,ceil_mode=True)             -> 8x8 (ceil adds a partial window)
    """

    def __init__(self):
        super().__init__()
        self.a = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=True)
        self.b = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.c = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.d = nn.MaxPool2d(2, stride=2, ceil_mode=True)

    def forward(self, x):
        outs = [self.a(x), self.b(x), self.c(x), self.d(x)]
        return torch.cat([torch.flatten(o, 1) for o in outs], 1)


class Conv1dNet(nn.Module):
    """A 1-D CNN on N x 4 x 50 (a signal of 4 channels): Conv1d with padding, stride, dilation and
    groups, BatchNorm1d, MaxPool1d and AvgPool1d, ConvTranspose1d, a global mean, a Linear head."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(4, 8, 5, padding=2), nn.BatchNorm1d(8), nn.ReLU(),
            nn.MaxPool1d(3, stride=2, padding=1),
            nn.Conv1d(8, 8, 3, padding=2, dilation=2, groups=4), nn.Hardtanh(-0.5, 0.5),
            nn.AvgPool1d(2, ceil_mode=True),
            nn.ConvTranspose1d(8, 6, 4, stride=2, padding=1), nn.ReLU6(),
            nn.Conv1d(6, 12, 3, stride=2))
        self.head = nn.Linear(12, 5)

    def forward(self, x):
        return self.head(self.body(x).mean(2))


class PadClip(nn.Module):
    """F.pad in reflect, replicate and constant modes (a crop too), clamp, on N x 2 x 12 x 10."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3)

    def forward(self, x):
        x = F.pad(x, (1, 2, 2, 1), mode='reflect')
        x = torch.clamp(self.conv(x), -0.3, 0.4)
        x = F.pad(x, (2, 0, 1, 1), mode='replicate')
        x = F.pad(x, (1, 1, 0, 2), value=0.25)
        return F.pad(x, (-1, 0, 0, -2))


class ConstArith(nn.Module):
    """Arithmetic with constants: per-channel normalisation, scalars on either side, a per-feature bias
    after flatten (Add, Sub, Mul and Div with initializers), on N x 3 x 8 x 8."""

    def __init__(self):
        super().__init__()
        self.register_buffer('mean', torch.tensor([0.2, -0.1, 0.4]).view(3, 1, 1))
        self.register_buffer('std', torch.tensor([0.5, 2.0, 0.25]).view(1, 3, 1, 1))
        self.conv = nn.Conv2d(3, 4, 3)
        self.register_buffer('gain', torch.linspace(0.5, 2.0, 4).view(1, 4, 1, 1))
        self.register_buffer('shift', torch.linspace(-1.0, 1.0, 36))

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = self.conv(x) * self.gain + 0.25
        x = 1.5 - F.relu(x) / 3.0
        x = torch.flatten(F.max_pool2d(x, 2), 1)
        return 2.0 * (x + self.shift)


# --------------------------------------------------------------------------
# torchvision models (input N x 3 x 224 x 224, batch 1, weights=None)
# --------------------------------------------------------------------------

def _tv(name, **kw):
    def build():
        import torchvision.models as tvm
        return getattr(tvm, name)(weights=None, **kw)
    return build


SMALL = (2, 1, 28, 28)
IMAGENET = (1, 3, 224, 224)  # densenet121 too: kept at 224 (slowest model here)

# name -> (builder, input shape)
MODELS = {
    'fashion_cnn': (FashionCNN, SMALL),
    'fashion_resnet': (FashionResNet, SMALL),
    'se_block': (SEBlock, SMALL),
    'inception_block': (InceptionBlock, SMALL),
    'upsample_block': (UpsampleBlock, SMALL),
    'activations': (Activations, SMALL),
    'avgpool_variants': (AvgPoolVariants, (2, 3, 15, 15)),
    'conv1d_net': (Conv1dNet, (2, 4, 50)),
    'pad_clip': (PadClip, (2, 2, 12, 10)),
    'const_arith': (ConstArith, (2, 3, 8, 8)),
    'resnet18': (_tv('resnet18'), IMAGENET),
    'mobilenet_v2': (_tv('mobilenet_v2'), IMAGENET),
    'mobilenet_v3_small': (_tv('mobilenet_v3_small'), IMAGENET),
    'squeezenet1_1': (_tv('squeezenet1_1'), IMAGENET),
    'shufflenet_v2_x0_5': (_tv('shufflenet_v2_x0_5'), IMAGENET),
    'densenet121': (_tv('densenet121'), IMAGENET),
    'googlenet': (_tv('googlenet', aux_logits=False, init_weights=True,
                      transform_input=False), IMAGENET),
    'efficientnet_b0': (_tv('efficientnet_b0'), IMAGENET),
    'regnet_x_400mf': (_tv('regnet_x_400mf'), IMAGENET),
}


def randomize_bn(model, seed):
    """Give every BatchNorm non-trivial, seeded running stats and affine params."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                if m.affine:
                    m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                    m.bias.copy_(torch.randn(n, generator=g) * 0.1)


def export_one(name, outdir, opset):
    import onnx
    builder, shape = MODELS[name]
    t0 = time.time()
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    model = builder()
    randomize_bn(model, SEED)
    model.eval()

    x = np.random.RandomState(SEED).standard_normal(shape).astype(np.float32)
    xt = torch.from_numpy(x)
    with torch.no_grad():
        y = model(xt)
    if isinstance(y, (tuple, list)):
        y = y[0]
    y = y.detach().numpy().astype(np.float32)

    path = os.path.join(outdir, name + '.onnx')
    with torch.no_grad():
        torch.onnx.export(
            model, xt, path,
            opset_version=opset,
            do_constant_folding=True,
            input_names=['input'],
            output_names=['output'],
            dynamic_axes={'input': {0: 'batch'}, 'output': {0: 'batch'}},
        )
    m = onnx.load(path)
    onnx.checker.check_model(m)
    ops = sorted({n.op_type for n in m.graph.node})

    np.save(os.path.join(outdir, name + '.in.npy'), x)
    np.save(os.path.join(outdir, name + '.out.npy'), y)
    dt = time.time() - t0
    return x.shape, y.shape, os.path.getsize(path), ops, dt


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('outdir', nargs='?')
    ap.add_argument('names', nargs='*', metavar='NAME')
    ap.add_argument('--opset', type=int, default=13)
    ap.add_argument('--list', action='store_true', help='print model names and exit')
    args = ap.parse_args(argv)

    if args.list:
        for n in MODELS:
            print(n)
        return 0
    if not args.outdir:
        ap.error('OUTDIR is required')
    names = args.names or list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        ap.error('unknown model(s): %s (see --list)' % ', '.join(unknown))
    os.makedirs(args.outdir, exist_ok=True)

    failed = []
    for name in names:
        try:
            ishape, oshape, size, ops, dt = export_one(name, args.outdir, args.opset)
            print('%-20s in=%-18s out=%-14s %9d B %6.1fs ops=%s' % (
                name, 'x'.join(map(str, ishape)), 'x'.join(map(str, oshape)),
                size, dt, ','.join(ops)), flush=True)
        except Exception as e:  # keep going; report at the end
            failed.append(name)
            print('%-20s FAILED: %s: %s' % (name, type(e).__name__, e), flush=True)
            traceback.print_exc(file=sys.stderr)
    if failed:
        print('failed: %s' % ' '.join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
