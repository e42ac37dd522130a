"""/v1/classify: a classifier trained by `neural-arch train` (tiny IDX files written here), served for real."""

import base64
import io

import httpx
import numpy as np
from PIL import Image
from serve_helpers import fashion_images, live_server

import neural_arch as na
from neural_arch.serve import ServeSettings, load_served_model

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def _b64(array, fmt):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return base64.b64encode(buf.getvalue()).decode()


def test_classify_returns_the_models_probabilities_under_its_training_transform(classifier_run):
    run = classifier_run
    served = load_served_model(run)
    images, _ = fashion_images(4, 5)
    train = fashion_images(64, 0)[0].astype(np.float32) / 255.0
    mean, std = train.mean(), train.std()     # build_data's normalisation, recomputed here
    with na.no_grad():
        logits = served.model(na.tensor(((images.astype(np.float32) / 255.0 - mean) / std)[:, None])).numpy()
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    with (live_server(served, ServeSettings(max_batch_size=4)) as (url, _),
          httpx.Client(base_url=url, timeout=60) as c):
        r = c.post("/v1/classify", json={"input": [_b64(img, "PNG") for img in images], "top_k": 3})
        rgb = np.repeat(images[0][..., None], 3, axis=2)
        single = c.post("/v1/classify", json={"input": _b64(rgb, "PNG"), "top_k": 50})
        jpeg = c.post("/v1/classify", json={"input": _b64(images[0], "JPEG")})
    assert r.status_code == 200, r.text
    for item, probs in zip(r.json()["data"], expected):
        top = np.argsort(-probs, kind="stable")[:3]
        assert item["labels"] == [CLASSES[j] for j in top] and item["label"] == CLASSES[top[0]]
        np.testing.assert_allclose(item["probabilities"], probs[top], rtol=1e-4, atol=1e-6)
    assert single.status_code == 200 and len(single.json()["data"][0]["labels"]) == 10   # top_k capped at 10
    np.testing.assert_allclose(sorted(single.json()["data"][0]["probabilities"], reverse=True),
                               np.sort(expected[0])[::-1], rtol=1e-4, atol=1e-6)   # RGB converts to the same grey
    assert jpeg.status_code == 200 and len(jpeg.json()["data"][0]["labels"]) == 5


def test_images_that_cannot_be_read_are_422_naming_the_one(classifier_run):
    served = load_served_model(classifier_run)
    gif = io.BytesIO()
    Image.new("L", (8, 8)).save(gif, format="GIF")
    ok = _b64(np.zeros((28, 28), np.uint8), "PNG")
    with (live_server(served) as (url, _),
          httpx.Client(base_url=url, timeout=30) as c):
        for bad, why in [("not base64!", "base64"), (base64.b64encode(b"plain text").decode(), "readable"),
                         (base64.b64encode(gif.getvalue()).decode(), "GIF"),
                         (ok[: len(ok) // 2 // 4 * 4], "readable")]:
            r = c.post("/v1/classify", json={"input": [ok, bad]})
            assert r.status_code == 422, (why, r.text)
            assert r.json()["detail"][0]["loc"] == ["body", "input", 1] and why in r.json()["detail"][0]["msg"]
