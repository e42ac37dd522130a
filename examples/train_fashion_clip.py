"""Train a tiny CLIP contrastively on Fashion-MNIST images + captions; evaluate zero-shot with held-out prompts.

    python examples/train_fashion_clip.py --epochs 4
    python examples/train_fashion_clip.py --epochs 1 --subset 5000 --compare-torch

Every training image is paired with a caption: its class name written into
one of TRAIN_TEMPLATES, drawn at random each time. The test set is then
classified zero-shot from EVAL_TEMPLATES, which training never saw: each
class's text embedding is the mean over those prompts, and an image takes
the class of the nearest one. Retrieval Recall@1/5/10 is reported both ways
at class level (a hit is an item of the query's class): image -> text over
the 10 x len(EVAL_TEMPLATES) held-out captions, text -> image over the
10,000 test images.

Tokenisation is word-level over the training captions' vocabulary (a word
never seen in training becomes [UNK]); token ids feed CLIPModel exactly as a
BPE tokenizer's would.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import neural_arch as na  # noqa: E402
from fashion_common import CLASSES, MEAN, STD, Timer, batches, load_arrays  # noqa: E402

# NEURAL_ARCH_EXAMPLE_SMOKE=1 (the test suite): one epoch of one-layer towers on 256 images
SMOKE = os.environ.get("NEURAL_ARCH_EXAMPLE_SMOKE") == "1"
from neural_arch import optim  # noqa: E402
from neural_arch.data.transforms import RandomCrop  # noqa: E402
from neural_arch.models.clip import (  # noqa: E402
    CLIPConfig,
    CLIPModel,
    logit_scale_clamp_,
    retrieval_recall,
    zero_shot_classifier,
    zero_shot_predict,
)

TRAIN_TEMPLATES = ["a photo of a {}.", "a picture of a {}.", "an image of the {}.", "a {} on a plain background.",
                   "a grayscale photo of a {}.", "a small photo of the {}.", "a low resolution photo of a {}."]
EVAL_TEMPLATES = ["a product photo of a {}.", "this is a {}.", "a black and white picture of the {}."]
BOS, PAD, UNK, EOS = 0, 1, 2, 3
MAX_LEN = 16


class WordTokenizer:
    """Lower-case words and punctuation -> ids; [BOS] ... [EOS], padded with [PAD] (mask 0)."""

    def __init__(self, texts):
        words = sorted({w for t in texts for w in self.split(t)})
        self.vocab = {w: i + 4 for i, w in enumerate(words)}

    @staticmethod
    def split(text):
        return re.findall(r"[a-z0-9\-]+|[^\sa-z0-9]", text.lower())

    def __call__(self, texts):
        ids = np.full((len(texts), MAX_LEN), PAD, np.int64)
        mask = np.zeros((len(texts), MAX_LEN), np.int64)
        for row, t in enumerate(texts):
            toks = [BOS] + [self.vocab.get(w, UNK) for w in self.split(t)][:MAX_LEN - 2] + [EOS]
            ids[row, :len(toks)] = toks
            mask[row, :len(toks)] = 1
        return ids, mask


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--vision-layers", type=int, default=3)
    p.add_argument("--text-layers", type=int, default=2)
    p.add_argument("--subset", type=int, default=0)
    p.add_argument("--max-minutes", type=float, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compare-torch", action="store_true")
    return p.parse_args()


def time_torch_epoch(model, args, xtr, ytr, captions) -> float:
    """One epoch of transformers' CLIPModel with the same config and initial weights."""
    import tempfile

    import torch
    import transformers

    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        net = transformers.CLIPModel.from_pretrained(tmp)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr / 10, weight_decay=0.1)
    net.train()
    t = Timer()
    for xb, yb in batches(xtr, ytr, args.batch_size, np.random.default_rng(args.seed)):
        ids, mask = captions(yb)
        out = net(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                  pixel_values=torch.from_numpy(xb), return_loss=True)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    return t()


def main():
    args = parse_args()
    if SMOKE:
        args.epochs, args.subset, args.dim, args.vision_layers, args.text_layers = 1, 256, 32, 1, 1
    na.manual_seed(args.seed)
    xtr, ytr, xte, yte = load_arrays(args.subset or None, args.seed)
    tok = WordTokenizer([t.format(c) for t in TRAIN_TEMPLATES for c in CLASSES])
    config = CLIPConfig(
        text_config=dict(vocab_size=len(tok.vocab) + 4, hidden_size=args.dim, intermediate_size=2 * args.dim,
                         num_hidden_layers=args.text_layers, num_attention_heads=4, max_position_embeddings=MAX_LEN,
                         bos_token_id=BOS, pad_token_id=PAD, eos_token_id=EOS),
        vision_config=dict(hidden_size=args.dim, intermediate_size=2 * args.dim, num_hidden_layers=args.vision_layers,
                           num_attention_heads=4, num_channels=1, image_size=28, patch_size=7),
        projection_dim=args.dim)
    model = CLIPModel(config)
    print(f"CLIP dim={args.dim} vision layers={args.vision_layers} text layers={args.text_layers}: "
          f"{sum(p.numel() for p in model.parameters()):,} parameters; vocabulary {len(tok.vocab) + 4}; "
          f"train {len(xtr)} images", flush=True)

    rng = np.random.default_rng(args.seed)

    def captions(labels):
        picks = rng.integers(0, len(TRAIN_TEMPLATES), size=len(labels))
        return tok([TRAIN_TEMPLATES[p].format(CLASSES[c]) for p, c in zip(picks, labels)])

    torch_epoch = time_torch_epoch(model, args, xtr, ytr, captions) if args.compare_torch else None
    crop = RandomCrop(28, padding=2, fill=(0.0 - MEAN) / STD, batched=True)
    steps_per_epoch = (len(xtr) + args.batch_size - 1) // args.batch_size
    opt = optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.1)
    sched = optim.lr_scheduler.WarmupCosineLR(opt, warmup_steps=min(200, steps_per_epoch),
                                               total_steps=args.epochs * steps_per_epoch)
    total, epoch_times, done, stop = Timer(), [], 0.0, False
    for epoch in range(args.epochs):
        model.train()
        t = Timer()
        seen, loss_sum = 0, 0.0
        for xb, yb in batches(xtr, ytr, args.batch_size, rng):
            ids, mask = captions(yb)
            out = model(input_ids=na.tensor(ids), attention_mask=na.tensor(mask), pixel_values=na.tensor(crop(xb)),
                        return_loss=True)
            opt.zero_grad()
            out.loss.backward()
            opt.step()
            sched.step()
            logit_scale_clamp_(model)
            seen += len(yb)
            loss_sum += out.loss.item() * len(yb)
            if args.max_minutes and total() > 60 * args.max_minutes:
                stop = True
                break
        epoch_times.append(t() * len(xtr) / seen)
        done = epoch + seen / len(xtr)
        print(f"epoch {done:.2f}/{args.epochs}: contrastive loss {loss_sum / seen:.4f} | "
              f"logit scale {np.exp(model.logit_scale.item()):.1f} | epoch time {epoch_times[-1]:.1f}s", flush=True)
        if stop:
            print(f"stopped after {args.max_minutes} minutes (--max-minutes)")
            break
    train_time = total()

    # -- zero-shot evaluation with held-out templates ---------------------------------------------
    model.eval()
    class_prompts = [tok([t.format(c) for t in EVAL_TEMPLATES]) for c in CLASSES]
    classifier = zero_shot_classifier(model, class_prompts)
    preds = np.concatenate([zero_shot_predict(model, na.tensor(xb), classifier) for xb, _ in batches(xte, yte, 500)])
    acc = float((preds == yte).mean())
    with na.no_grad():
        img_emb = np.concatenate([model.get_image_features(na.tensor(xb)).numpy() for xb, _ in batches(xte, yte, 500)])
        texts = [(t.format(c), ci) for ci, c in enumerate(CLASSES) for t in EVAL_TEMPLATES]
        ids, mask = tok([s for s, _ in texts])
        txt_emb = model.get_text_features(na.tensor(ids), na.tensor(mask)).numpy()
    recall = retrieval_recall(img_emb, txt_emb, image_labels=yte, text_labels=np.array([c for _, c in texts]))
    print(f"trained {done:.2f} epochs in {train_time:.1f}s; time per epoch {np.mean(epoch_times):.1f}s (neural-arch)")
    print(f"zero-shot test accuracy (held-out templates {EVAL_TEMPLATES}): {acc:.4f}")
    print("retrieval (class-level), image->text over 30 held-out captions, text->image over 10,000 test images:")
    print("  " + "  ".join(f"{k} {v:.4f}" for k, v in recall.items()))
    if torch_epoch is not None:
        print(f"transformers CLIPModel in torch, same config and batches: {torch_epoch:.1f}s per epoch "
              f"(ratio torch/ours {torch_epoch / np.mean(epoch_times):.3f})")


if __name__ == "__main__":
    main()
