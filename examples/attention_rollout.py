"""Save an attention-rollout overlay PNG for a few Fashion-MNIST test images.

    python examples/train_fashion_vit.py --epochs 3 --save /tmp/vit-fashion
    python examples/attention_rollout.py --model /tmp/vit-fashion --out docs/vit_attention_rollout.png

Without ``--model`` a randomly initialised ViT is used (the maps are then
meaningless; the point of the file is a trained model).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fashion_common import CLASSES, MEAN, STD, load_arrays  # noqa: E402
from neural_arch.models.vit import ViTConfig, ViTForImageClassification  # noqa: E402
from neural_arch.viz import save_attention_rollout  # noqa: E402

# NEURAL_ARCH_EXAMPLE_SMOKE=1 (the test suite): the PNG goes to a temporary directory, not docs/
SMOKE = os.environ.get("NEURAL_ARCH_EXAMPLE_SMOKE") == "1"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="", help="a directory written by save_pretrained")
    p.add_argument("--out", default=os.path.join(tempfile.mkdtemp(), "rollout.png") if SMOKE
                   else "docs/vit_attention_rollout.png")
    p.add_argument("--n", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--discard-ratio", type=float, default=0.0)
    args = p.parse_args()
    if args.model:
        model = ViTForImageClassification.from_pretrained(args.model)
    else:
        model = ViTForImageClassification(ViTConfig(hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
                                                    intermediate_size=128, image_size=28, patch_size=7,
                                                    num_channels=1, num_labels=10))
    _, _, xte, yte = load_arrays(subset=1)
    idx = np.random.default_rng(args.seed).choice(len(xte), args.n, replace=False)
    path = save_attention_rollout(model, xte[idx], args.out, labels=yte[idx], class_names=CLASSES, mean=MEAN,
                                  std=STD, discard_ratio=args.discard_ratio)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
