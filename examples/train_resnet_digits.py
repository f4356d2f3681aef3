"""Train a small residual network (ResNet) on scikit-learn's 8x8 digits, the split of train_digits.py.

    .venv/bin/pip install -e ".[examples]"      # scikit-learn, tqdm, matplotlib
    python examples/train_resnet_digits.py    # options: --epochs --seed --out --batch-size --lr
    python examples/train_resnet_digits.py --epochs 1   # a quick run (the tests run this; about 94% held out)

Network (NHWC), the course's two residual blocks ("Residual Networks", He et al. 2015):  (m, 8, 8, 1)
    stem: conv 3x3 pad 1 -> batch norm -> relu                                  (m, 8, 8, 16)
    convolutional block: main path  conv 3x3 stride 2 -> bn -> relu -> conv 3x3 -> bn
                         shortcut   conv 1x1 stride 2 -> bn  (a projection: new size, new width)
                         relu(main + shortcut)                                  (m, 4, 4, 32)
    identity block:      main path  conv 3x3 -> bn -> relu -> conv 3x3 -> bn
                         shortcut   the input itself
                         relu(main + input)                                     (m, 4, 4, 32)
    global average pool -> linear                                               (m, 10) logits
trained as train_digits.py (Adam, cosine decay, cross-entropy) on the same stratified 80/20 split.
The blocks are the basic two-conv blocks of ResNet-18/34, not the course's three-conv bottleneck
(1x1, fxf, 1x1): at 16 to 32 channels the bottleneck has little to squeeze.

Writes to --out (default examples/out/): resnet_digits_curves.png, resnet_digits.npz (weights and
batch norm statistics) and resnet_digits_step.svg (one training step, drawn with max_nodes: the
tensors nearest the loss, the identity block whole).
"""

import os
import sys
import time

import numpy as np

from tinygrad_cnn import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_digits import digits, draw_one_step, fit, parse_args, plot_curves, save_and_reload  # noqa: E402

WIDTH = 16  # channels after the stem; the convolutional block doubles them
MAX_NODES = 34  # tensors drawn of the 44 in a step: the identity block whole, the convolutional block's sum


class IdentityBlock(nn.Module):
    """x (m, n_H, n_W, C) -> relu(bn(conv(relu(bn(conv(x))))) + x), same shape: the shortcut is x itself."""

    def __init__(self, channels: int, seed):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, pad=1, bias=False, seed=seed)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, pad=1, bias=False, seed=seed)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        main = self.bn1(self.conv1(x)).relu()
        main = self.bn2(self.conv2(main))
        return (main + x).relu()


class ConvolutionalBlock(nn.Module):
    """x (m, n_H, n_W, C_in) -> (m, n_H/stride, n_W/stride, C_out): a residual block that changes the size and
    the width, so its shortcut is a projection, a 1x1 convolution with the same stride, then batch norm."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, seed):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, pad=1, bias=False, seed=seed)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, pad=1, bias=False, seed=seed)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut_conv = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False, seed=seed)
        self.shortcut_bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        main = self.bn1(self.conv1(x)).relu()
        main = self.bn2(self.conv2(main))
        shortcut = self.shortcut_bn(self.shortcut_conv(x))
        return (main + shortcut).relu()


class ResNet(nn.Module):
    """Digits (m, 8, 8, 1) -> logits (m, 10): stem, convolutional block, identity block, pool, linear."""

    def __init__(self, seed: int, width: int = WIDTH):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.stem = nn.Sequential(conv=nn.Conv2d(1, width, 3, pad=1, bias=False, seed=rng),
                                  bn=nn.BatchNorm2d(width), relu=nn.ReLU())
        self.conv_block = ConvolutionalBlock(width, 2 * width, stride=2, seed=rng)
        self.identity_block = IdentityBlock(2 * width, seed=rng)
        self.pool = nn.GlobalAvgPool2d()
        self.fc = nn.Linear(2 * width, 10, init="glorot", seed=rng)

    def forward(self, x):
        x = self.stem(x)
        x = self.conv_block(x)
        x = self.identity_block(x)
        return self.fc(self.pool(x))


def main():
    args = parse_args(__doc__, epochs=15)
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()

    x_train, x_test, y_train, y_test = digits(args.seed)
    model = ResNet(args.seed)
    model.summary((1, 8, 8, 1))
    print(f"{len(x_train)} training and {len(x_test)} test images\n")

    history = fit(model, x_train, y_train, x_test, y_test, args)
    train_time = time.perf_counter() - start

    curves = os.path.join(args.out, "resnet_digits_curves.png")
    plot_curves(history, curves, title="tinygrad_cnn: a small ResNet on the 8x8 digits")
    weights = os.path.join(args.out, "resnet_digits.npz")
    save_and_reload(model, ResNet(args.seed + 1), weights, x_test, y_test)

    print(f"\nfinal test accuracy: {history['test_acc'][-1]:.4f} ({len(x_test)} held-out images)")
    print(f"wrote {curves}\n      {weights} (reloaded: same test accuracy)")
    draw_one_step(model, x_train, y_train, os.path.join(args.out, "resnet_digits_step.svg"),
                  title="one training step of the ResNet on 4 digits (the tensors nearest the loss)",
                  max_nodes=MAX_NODES)
    print(f"wall time: {train_time:.1f} s training, {time.perf_counter() - start:.1f} s in all")


if __name__ == "__main__":
    main()
