"""/v1/classify on ResNet and EfficientNet: our folder layout (a folder, or a checkpoint in it) and transformers'
ResNetForImageClassification folder, each saved here (tiny, random weights with random BatchNorm statistics)
and served by a real server; the served probabilities are checked against the model's own forward on the
image put through the transform computed here (and, for the transformers folder, against transformers)."""

import base64
import io
import json

import httpx
import numpy as np
import pytest
from PIL import Image
from serve_helpers import live_server

import neural_arch as na
from neural_arch.errors import ConfigError
from neural_arch.io import save_checkpoint
from neural_arch.models import efficientnet_small, resnet_small
from neural_arch.serve import ServeSettings, load_served_model

LABELS = ["cat", "dog", "bird"]


def _b64(array, fmt="PNG"):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return base64.b64encode(buf.getvalue()).decode()


def _softmax(logits):
    z = np.exp(logits - logits.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


def _randomise_batchnorm(model, seed):
    """Running statistics away from (0, 1), so that a transform or a weight in the wrong place shows."""
    rng = np.random.default_rng(seed)
    for name, buf in model.named_buffers():
        if name.endswith("running_mean"):
            buf.data[...] = rng.normal(0, 0.2, buf.shape)
        elif name.endswith("running_var"):
            buf.data[...] = rng.uniform(0.5, 2.0, buf.shape)


def _images(seed, channels=3):
    rng = np.random.default_rng(seed)
    shape = (lambda h, w: (h, w, 3)) if channels == 3 else (lambda h, w: (h, w))
    return [rng.integers(0, 256, shape(22 + 5 * i, 34 - 4 * i)).astype(np.uint8) for i in range(3)]


def _served_probabilities(served, images, fmt="PNG"):
    """The probabilities the server answers for ``images`` (one request of all, and one per image at once),
    in label order; the single requests must agree with the batched one."""
    with (live_server(served, ServeSettings(max_batch_size=4)) as (url, _),
          httpx.Client(base_url=url, timeout=120) as c):
        r = c.post("/v1/classify", json={"input": [_b64(a, fmt) for a in images], "top_k": len(LABELS)})
        single = c.post("/v1/classify", json={"input": _b64(images[1], fmt), "top_k": len(LABELS)})
    assert r.status_code == 200 and single.status_code == 200, (r.text, single.text)
    out = []
    for item in r.json()["data"] + single.json()["data"]:
        probs = np.zeros(len(LABELS))
        probs[[LABELS.index(label) for label in item["labels"]]] = item["probabilities"]
        assert item["label"] == LABELS[int(np.argmax(probs))]
        out.append(probs)
    np.testing.assert_allclose(out[3], out[1], rtol=1e-6, atol=1e-7)
    return np.stack(out[:3])


def _forward(model, pixels):
    with na.no_grad():
        return _softmax(model(na.tensor(np.stack(pixels).astype(np.float32))).numpy().astype(np.float64))


def test_our_resnet_folder_serves_its_forward_through_its_preprocessor_config(tmp_path):
    na.manual_seed(0)
    model = resnet_small(num_classes=3, in_channels=3, widths=(4, 8), layers=(1, 1))
    _randomise_batchnorm(model, 0)
    na.save(model.state_dict(), tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps({
        "architecture": "resnet_small", "id2label": dict(enumerate(LABELS)),
        "kwargs": {"num_classes": 3, "in_channels": 3, "widths": [4, 8], "layers": [1, 1]}}))
    mean, std = [0.3, 0.4, 0.5], [0.2, 0.25, 0.3]
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(
        {"size": {"height": 20, "width": 18}, "resample": 3, "image_mean": mean, "image_std": std}))
    served = load_served_model(tmp_path)
    assert served.labels == LABELS and served.image_size == (18, 20)
    images = _images(1)
    pixels = [((np.asarray(Image.fromarray(a).resize((18, 20), Image.Resampling.BICUBIC), np.float32) / 255
                - mean) / std).transpose(2, 0, 1) for a in images]
    np.testing.assert_allclose(_served_probabilities(served, images), _forward(model.eval(), pixels),
                               rtol=1e-4, atol=1e-6)


def test_a_checkpoint_of_our_efficientnet_serves_with_a_shorter_side_resize_and_centre_crop(tmp_path):
    na.manual_seed(1)
    model = efficientnet_small(num_classes=3, in_channels=1, width_mult=0.25, depth_mult=0.25)
    _randomise_batchnorm(model, 1)
    (tmp_path / "checkpoints").mkdir()
    save_checkpoint(tmp_path / "checkpoints" / "step-8.safetensors", model, step=8)
    config = {"architecture": "efficientnet_small", "id2label": dict(enumerate(LABELS)),
              "kwargs": {"num_classes": 3, "in_channels": 1, "width_mult": 0.25, "depth_mult": 0.25}}
    (tmp_path / "checkpoints" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="image_mean"):   # a grey model has no default normalisation
        load_served_model(tmp_path / "checkpoints" / "step-8.safetensors")
    (tmp_path / "checkpoints" / "preprocessor_config.json").write_text(json.dumps(
        {"size": {"shortest_edge": 16}, "crop_pct": 0.8, "image_mean": [0.3], "image_std": [0.35]}))
    served = load_served_model(tmp_path / "checkpoints" / "step-8.safetensors")
    assert served.name == "step-8" and served.image_mode == "L" and served.image_size == (16, 16)
    images = _images(2, channels=1)

    def transform(a):   # shorter side to int(16 / 0.8) = 20, then the centre 16 x 16
        h, w = a.shape
        size = (20, int(20 * h / w)) if w <= h else (int(20 * w / h), 20)
        img = Image.fromarray(a).resize(size, Image.Resampling.BILINEAR)
        left, top = (img.width - 16) // 2, (img.height - 16) // 2
        crop = np.asarray(img.crop((left, top, left + 16, top + 16)), np.float32)
        return ((crop / 255 - 0.3) / 0.35)[None]

    expected = _forward(model.eval(), [transform(a) for a in images])
    np.testing.assert_allclose(_served_probabilities(served, images), expected, rtol=1e-4, atol=1e-6)


@pytest.fixture(scope="module")
def hf_resnet_dir(tmp_path_factory):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from transformers import ConvNextImageProcessorPil

    path = tmp_path_factory.mktemp("hf_resnet")
    torch.manual_seed(0)
    config = transformers.ResNetConfig(embedding_size=8, hidden_sizes=[32, 64], depths=[1, 2], layer_type="bottleneck",
                                       id2label=dict(enumerate(LABELS)), label2id={v: k for k, v in enumerate(LABELS)})
    model = transformers.ResNetForImageClassification(config).eval()
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_(0, 0.2)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 2.0)
    model.save_pretrained(path)
    ConvNextImageProcessorPil(size={"shortest_edge": 24}, crop_pct=0.875, image_mean=[0.45, 0.5, 0.55],
                              image_std=[0.25, 0.2, 0.3]).save_pretrained(path)
    return path


def test_a_transformers_resnet_folder_classifies_as_transformers_does(hf_resnet_dir):
    import torch
    import transformers
    from transformers import ConvNextImageProcessorPil

    served = load_served_model(hf_resnet_dir)
    assert served.labels == LABELS and served.image_size == (24, 24) and served.shortest_edge == 27
    images = _images(3)
    processor = ConvNextImageProcessorPil.from_pretrained(hf_resnet_dir)
    pixels = processor(images=[Image.fromarray(a) for a in images], return_tensors="np")["pixel_values"]
    model = transformers.ResNetForImageClassification.from_pretrained(hf_resnet_dir).eval()
    with torch.no_grad():
        expected = _softmax(model(pixel_values=torch.from_numpy(pixels)).logits.numpy().astype(np.float64))
    np.testing.assert_allclose(_forward(served.model, list(pixels)), expected, rtol=1e-4, atol=1e-6)  # same net
    np.testing.assert_allclose(_served_probabilities(served, images), expected, rtol=1e-4, atol=1e-5)


def test_a_jpeg_is_read_and_bad_folders_are_config_errors(tmp_path, hf_resnet_dir):
    served = load_served_model(hf_resnet_dir)
    probs = _served_probabilities(served, _images(4), fmt="JPEG")
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-6)
    (tmp_path / "config.json").write_text(json.dumps({"architecture": "resnet1000"}))
    with pytest.raises(ConfigError, match="resnet18"):
        load_served_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"architecture": "resnet18", "kwargs": {"depth": 3}}))
    with pytest.raises(ConfigError, match="kwargs"):
        load_served_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**json.loads((hf_resnet_dir / "config.json").read_text()),
                                                      "downsample_in_bottleneck": True}))
    with pytest.raises(ConfigError, match="downsample_in_bottleneck"):
        load_served_model(tmp_path)
