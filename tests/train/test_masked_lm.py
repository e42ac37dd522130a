"""BERT / RoBERTa masked-LM training: the masking rule, deterministic evaluation, the configs, the CLI."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

import neural_arch as na
from neural_arch.cli import main
from neural_arch.cli.build import build_run
from neural_arch.config import load_config
from neural_arch.data import CharTokenizer
from neural_arch.train import MaskedLanguageModeling, Trainer, build_model, fill_masked_text


def test_masking_follows_bert_80_10_10():
    task = MaskedLanguageModeling(mask_token_id=65, vocab_size=65)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 65, (200, 500))
    inputs, labels = task.mask(ids, rng)
    chosen = labels != -100
    assert chosen.mean() == pytest.approx(0.15, abs=0.003)
    assert np.array_equal(labels[chosen], ids[chosen])
    assert np.array_equal(inputs[~chosen], ids[~chosen])  # unchosen tokens are never touched
    masked = inputs[chosen] == 65
    changed = ~masked & (inputs[chosen] != ids[chosen])  # replaced by a different random character
    assert masked.mean() == pytest.approx(0.8, abs=0.01)
    assert changed.mean() == pytest.approx(0.1 * 64 / 65, abs=0.01)  # a random draw can equal the original
    assert inputs.max() == 65 and inputs.min() == 0


@pytest.mark.parametrize("name", ["bert", "roberta"])
def test_masked_models_predict_characters_and_the_extra_ids(name):
    model = build_model(name, vocab_size=65, block_size=16, n_layer=1, n_head=2, n_embd=16)
    assert (model.mask_token_id, model.pad_token_id) == (65, 66)
    ids = na.tensor(np.r_[np.arange(15), 65][None].repeat(2, 0))  # the mask id is a valid input
    assert model(ids).shape == (2, 16, 67)


def test_evaluation_hides_the_same_characters_every_time():
    na.manual_seed(0)
    model = build_model("bert", vocab_size=65, block_size=16, n_layer=1, n_head=2, n_embd=16).eval()
    task = MaskedLanguageModeling(65, 65, generator=na.Generator(1))
    ids = na.tensor(np.random.default_rng(2).integers(0, 65, (8, 16)))
    first, second = task.evaluate(model, (ids, ids)), task.evaluate(model, (ids, ids))
    assert first == second and first["count"] > 0
    assert task.loss(model, (ids, ids)).item() != task.loss(model, (ids, ids)).item()  # training draws anew


@pytest.mark.parametrize("name", ["bert", "roberta"])
def test_shakespeare_configs_build_and_learn(name):
    cfg = load_config(f"configs/{name}_shakespeare.yaml", [
        "model.kwargs.n_layer=1", "model.kwargs.n_embd=32", "model.kwargs.n_head=2", "model.kwargs.dropout=0",
        "data.val_windows=64", "train.batch_size=16", "train.max_steps=60", "optimizer.lr=0.003"])
    run = build_run(cfg)
    trainer = Trainer(run.model, run.optimizer, run.train_loader, task=run.task, val_loader=run.val_loader,
                      scheduler=run.scheduler, max_steps=run.max_steps, grad_clip=1.0)
    before = trainer.evaluate()
    after = trainer.fit()
    # from about log(67) = 4.2 to the characters' unigram entropy (about 3.3) and below
    assert before["loss"] > 3.9 and after["loss"] < 3.4 and after["accuracy"] > 0.1


def test_fill_masked_text_shows_hidden_characters():
    tok = CharTokenizer.from_text("abcdefgh")
    model = build_model("bert", vocab_size=8, block_size=32, n_layer=1, n_head=2, n_embd=16)
    masked, filled = fill_masked_text(model, tok, "abcdefgh" * 3, mask_prob=0.5, generator=na.Generator(0))
    assert len(masked) == len(filled) == 24 and "_" in masked
    assert all(m == f for m, f in zip(masked, filled) if m != "_")
    assert set(filled) <= set("abcdefgh")


def test_cli_trains_evaluates_and_refuses_to_generate(tmp_path):
    cfg = yaml.safe_load(Path("configs/bert_shakespeare.yaml").read_text())
    cfg.update(run_dir=str(tmp_path / "run"))
    cfg["model"]["kwargs"] = {"n_layer": 1, "n_head": 2, "n_embd": 16}
    cfg["data"]["val_windows"] = 32
    cfg["train"].update(batch_size=8, max_steps=4, eval_every=2, checkpoint_every=2)
    cfg["logging"] = {"progress": False, "plot": False, "sample_chars": 40}
    path = tmp_path / "bert.yaml"
    path.write_text(yaml.safe_dump(cfg))
    runner = CliRunner()
    result = runner.invoke(main, ["train", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output and "filled in:" in result.output and "sample:" not in result.output
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any(r["split"] == "val" and "accuracy" in r for r in records)
    result = runner.invoke(main, ["evaluate", str(tmp_path / "run")], catch_exceptions=False)
    assert result.exit_code == 0 and "accuracy" in result.output and "filled in:" in result.output
    result = runner.invoke(main, ["generate", str(tmp_path / "run")], catch_exceptions=False)
    assert result.exit_code == 1 and "masked language model" in result.output and "Traceback" not in result.output
