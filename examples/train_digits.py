"""Train a small CNN on scikit-learn's 8x8 digits (1,797 images, bundled: no download).

    .venv/bin/pip install -e ".[examples]"      # scikit-learn, tqdm, matplotlib
    python examples/train_digits.py           # options: --epochs --seed --out --batch-size --lr
    python examples/train_digits.py --epochs 1   # a quick run (the tests run this; about 89% held out)

Network (NHWC):  (m, 8, 8, 1)
    conv1 3x3 pad 1 -> relu -> max pool 2   (m, 4, 4, 16)
    conv2 3x3 pad 1 -> relu -> max pool 2   (m, 2, 2, 32)
    flatten -> linear                       (m, 10) logits
trained with Adam on cross-entropy, evaluated on a held-out, stratified 20% split.

Writes to --out (default examples/out/): digits_curves.png (loss and accuracy per epoch),
digits_cnn.npz (the weights, via tinygrad_cnn.io.save) and digits_step.svg (the graph of one
training step; digits_step.gv if no Graphviz renderer is installed).
"""

import argparse
import os
import sys
import time

import numpy as np

from tinygrad_cnn import Tensor, nn, no_grad
from tinygrad_cnn.data import batches
from tinygrad_cnn.functional import cross_entropy
from tinygrad_cnn.io import load, save
from tinygrad_cnn.optim import Adam

try:
    import graphviz
    import matplotlib
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from tqdm import tqdm
except ImportError as e:
    sys.exit(f"{e}: this example needs the 'examples' extra: .venv/bin/pip install -e \".[examples]\"")

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the Agg backend)


def parse_args(description: str = __doc__, epochs: int = 20):
    """The command line: the first line of ``description`` is its help; ``epochs`` the default for --epochs."""
    parser = argparse.ArgumentParser(description=description.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=epochs,
                        help=f"passes over the training set (default {epochs}; 1 for a quick run)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the split, the init and the batch order")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    return parser.parse_args()


def digits(seed: int):
    """(x_train, x_test, y_train, y_test): images (m, 8, 8, 1) float32 in [0, 1], labels (m,) ints."""
    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[..., None]
    return train_test_split(x, data.target, test_size=0.2, random_state=seed, stratify=data.target)


def make_model(seed: int) -> nn.Sequential:
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        conv1=nn.Conv2d(1, 16, 3, pad=1, seed=rng), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2),
        conv2=nn.Conv2d(16, 32, 3, pad=1, seed=rng), relu2=nn.ReLU(), pool2=nn.MaxPool2d(2),
        flatten=nn.Flatten(), fc=nn.Linear(2 * 2 * 32, 10, init="glorot", seed=rng),
    )


@no_grad()
def evaluate(model, x, y, batch_size=512):
    """(mean loss, accuracy) over the whole set, without recording a graph, in eval mode (batch norm uses its
    running statistics, dropout passes all), the model's mode restored after."""
    was_training = model.training
    model.eval()
    losses, hits = [], 0
    try:
        for x_batch, y_batch in batches(x, y, batch_size, shuffle=False):
            logits = model(Tensor(x_batch))
            losses.append(cross_entropy(logits, y_batch).item() * len(logits))
            hits += int((logits.argmax(axis=1) == y_batch).sum())
    finally:
        model.train(was_training)
    return sum(losses) / len(x), hits / len(x)


def cosine_lr(base_lr: float, epoch: int, epochs: int) -> float:
    """Learning rate for ``epoch`` (1-based): from base_lr down to ~0 along half a cosine."""
    return base_lr * 0.5 * (1 + np.cos(np.pi * (epoch - 1) / epochs))


def train_epoch(model, opt, x, y, batch_size, rng, desc):
    """One pass over (x, y) in shuffled minibatches, in training mode, with a tqdm bar; returns (mean loss,
    accuracy)."""
    model.train()
    total_loss, hits, seen = 0.0, 0, 0
    bar = tqdm(batches(x, y, batch_size, seed=rng), desc=desc, unit="batch", leave=True,
               total=-(-len(x) // batch_size))
    for x_batch, y_batch in bar:
        logits = model(Tensor(x_batch))
        loss = cross_entropy(logits, y_batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total_loss += loss.item() * len(y_batch)
        hits += int((logits.argmax(axis=1) == y_batch).sum())
        seen += len(y_batch)
        bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{hits / seen:.3f}", refresh=False)
    return total_loss / seen, hits / seen


def fit(model, x_train, y_train, x_test, y_test, args) -> dict:
    """Adam on cross-entropy for args.epochs epochs, the learning rate from args.lr down a cosine; after each
    epoch the test set is evaluated. Returns the history: lists of train_loss, train_acc, test_loss, test_acc."""
    opt = Adam(model.parameters(), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    history = {"train_loss": [], "train_acc": [], "test_loss": [], "test_acc": []}
    for epoch in range(1, args.epochs + 1):
        opt.lr = cosine_lr(args.lr, epoch, args.epochs)
        train_loss, train_acc = train_epoch(model, opt, x_train, y_train, args.batch_size, rng,
                                            desc=f"epoch {epoch:2d}/{args.epochs}")
        test_loss, test_acc = evaluate(model, x_test, y_test)
        for key, value in zip(history, (train_loss, train_acc, test_loss, test_acc), strict=True):
            history[key].append(value)
        tqdm.write(f"           test loss {test_loss:.4f}  test accuracy {test_acc:.4f}")
    return history


def plot_curves(history, path, title="tinygrad_cnn: small CNN on the 8x8 digits"):
    epochs = np.arange(1, len(history["train_loss"]) + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, history["train_loss"], "o-", label="train")
    ax_loss.plot(epochs, history["test_loss"], "o-", label="test")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss", yscale="log")
    ax_acc.plot(epochs, history["train_acc"], "o-", label="train")
    ax_acc.plot(epochs, history["test_acc"], "o-", label="test")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_and_reload(model, fresh, path, x_test, y_test) -> None:
    """Save the weights (and buffers) to ``path``, load them into ``fresh`` (the same model, other weights): it
    must score the same on the test set."""
    save(model, path)
    fresh.load_state_dict(load(path))
    assert evaluate(fresh, x_test, y_test) == evaluate(model, x_test, y_test)


def draw_one_step(model, x, y, path, title="one training step: cross_entropy(model(x), y) on 4 digits",
                  max_nodes=200):
    """Forward and backward on 4 images in training mode, then draw that graph to ``path`` (parameters show as
    conv1.W, ...), at most ``max_nodes`` tensors (the ones nearest the loss). A batch norm layer counts these 4
    images in its running statistics, as any training step does: draw after saving the weights.

    Without a Graphviz renderer, viz writes the DOT source (.gv) instead; its message says where.
    """
    from tinygrad_cnn.viz import save_graph

    model.train()
    loss = cross_entropy(model(Tensor(x[:4])), y[:4])
    loss.backward()
    print(f"      {path} (one training step)")
    try:
        save_graph(loss, path, title=title, show_rule=True, max_nodes=max_nodes)  # drawn while the gradients are there
    except graphviz.ExecutableNotFound as e:  # viz wrote the .gv source instead, and says where
        print(f"  {e}")
    model.zero_grad()


def main():
    args = parse_args()
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()

    x_train, x_test, y_train, y_test = digits(args.seed)
    model = make_model(args.seed)
    print(model)
    print(f"{model.num_parameters()} parameters; {len(x_train)} training and {len(x_test)} test images\n")

    history = fit(model, x_train, y_train, x_test, y_test, args)
    train_time = time.perf_counter() - start

    curves = os.path.join(args.out, "digits_curves.png")
    plot_curves(history, curves)
    weights = os.path.join(args.out, "digits_cnn.npz")
    save_and_reload(model, make_model(args.seed + 1), weights, x_test, y_test)

    print(f"\nfinal test accuracy: {history['test_acc'][-1]:.4f} ({len(x_test)} held-out images)")
    print(f"wrote {curves}\n      {weights} (reloaded: same test accuracy)")
    draw_one_step(model, x_train, y_train, os.path.join(args.out, "digits_step.svg"))
    print(f"wall time: {train_time:.1f} s training, {time.perf_counter() - start:.1f} s in all")


if __name__ == "__main__":
    main()
