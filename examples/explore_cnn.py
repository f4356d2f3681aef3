"""Profile a few training steps of the digits CNN, then explore the last one in the browser.

    .venv/bin/pip install -e ".[examples,viz]"
    python examples/explore_cnn.py             # writes examples/out/cnn_explorer.html (open it in any browser)
    python examples/explore_cnn.py --serve     # the live explorer: any entry explained on demand

The CNN of train_digits.py takes --steps Adam steps on minibatches of 32 digits under ``profile()``; the profile's
table says where the time went, per op. The graph of the last step (its forward and backward, saved before its
update, so no value in it is stale) goes into one self-contained HTML file with the ops' times and saved bytes
and each tensor's 3 largest |grad| entries explained: click a node for its numbers and heat maps, click an entry
for why its gradient is what it is.
"""

import argparse
import os

from train_digits import digits, make_model  # the same data and network (needs the examples extra)

from tinygrad_cnn import Tensor, explore, profile, save_html
from tinygrad_cnn.data import batches
from tinygrad_cnn.functional import cross_entropy
from tinygrad_cnn.optim import Adam


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
    parser.add_argument("--serve", action="store_true", help="serve the live explorer and open a browser")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    x_train, _, y_train, _ = digits(seed=0)
    model = make_model(seed=0)
    opt = Adam(model.parameters(), lr=3e-3)
    minibatches = iter(batches(x_train, y_train, 32, seed=0))
    with profile() as prof:
        for step in range(1, args.steps + 1):
            x, y = next(minibatches)
            loss = cross_entropy(model(Tensor(x, name="x")), y)
            opt.zero_grad()
            loss.backward()
            if step < args.steps:  # the last update waits until the page is saved
                opt.step()
    loss.name = "loss"
    print(f"{args.steps} training steps, loss {loss.item():.4f}\n{prof}\n")

    page = save_html(loss, os.path.join(args.out, "cnn_explorer.html"), profile=prof)
    print(f"wrote {page}: open it in a browser (no network needed)")
    if args.serve:
        with explore(loss, profile=prof) as server:
            input(f"serving {server.url}\npress Enter to stop ")
    opt.step()


if __name__ == "__main__":
    main()
