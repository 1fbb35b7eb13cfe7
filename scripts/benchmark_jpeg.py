"""How much a reverse ISP loses when its RGB input is JPEG-compressed, with and without the JPEG augmentation.

    python scripts/benchmark_jpeg.py --data PAIRS_DIR [--sensor project] [--qualities 95 85 70]
        [--aug-range 70 95] [--model NAME=MODEL.keras ...] [--json out.json]

PAIRS_DIR holds AIM-layout pairs with a lossless RGB (`make-pairs ... --rgb-format png`). Its
examples are split alternately (in scan order): even ones to fit on, odd ones to test on.
Every method is scored (the challenge PSNR, `evaluate.score`) on the same test pairs with
the RGB as stored (lossless) and recompressed at each quality (libjpeg through OpenCV), and the
table gives each one's PSNR and its drop against lossless. Methods:
- `fitted`: the camera-fitted global inverse (`global_inverse.fit_global_inverse`) fitted on
  the lossless RGB of the fit pairs;
- `fitted+jpeg`: the same fit on RGB that went through the training pipeline's JPEG
  augmentation (`pipeline.make_jpeg_augmenter`, a random quality in --aug-range per image);
- each `--model NAME=PATH`: a trained Keras model (e.g. two runs of one config, with and
  without `jpeg_quality` augmentation), run on the test RGB.
The last lines compare the drops at quality 85 of `fitted+jpeg` and `fitted` (the augmentation
should at least halve it), and give a ceiling for that: the share of the JPEG-induced error of
`fitted`'s prediction (JPEG minus lossless input) that the least-squares best linear filter over
a 7x7 neighbourhood of the 4 packed channels removes when fitted on the test pairs themselves
(an oracle no deblocker reaches on unseen pairs), beside the share that halving the drop needs,
and the share that 4:2:0 chroma subsampling makes of that error (what even a perfect chroma
upsampler could give back).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from revisp_tf.data.pipeline import make_jpeg_augmenter  # noqa: E402
from revisp_tf.data.scan import scan_pairs  # noqa: E402
from revisp_tf.global_stage.fit import fit_global_inverse  # noqa: E402
from revisp_tf.io.images import read_raw_npy, read_rgb  # noqa: E402
from revisp_tf.isp.sensor import get_sensor  # noqa: E402
from revisp_tf.scoring import scorer as evaluate  # noqa: E402

LOSSLESS = "lossless"
SAMPLING = {"420": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420, "444": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444}  # libjpeg's default: 4:2:0


def recompress(rgb: np.ndarray, quality: int, sampling: str = "420") -> np.ndarray:
    """[0, 1] RGB through libjpeg (OpenCV) at `quality` and chroma `sampling`, back to [0, 1] float32."""
    params = [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, SAMPLING[sampling]]
    ok, buf = cv2.imencode(".jpg", np.round(rgb[..., ::-1] * 255).astype(np.uint8), params)
    if not ok:
        raise RuntimeError("OpenCV failed to encode a JPEG")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / np.float32(255)


def augmented(rgbs, low: int, high: int, seed: int = 0):
    """The RGBs as the training pipeline's JPEG augmentation hands them to a model."""
    fn = make_jpeg_augmenter((low, high), seed)
    return [fn(tf.constant(i, tf.int64), {"rgb": tf.constant(x)})["rgb"].numpy() for i, x in enumerate(rgbs)]


def score_method(predict, tests, sensor, qualities) -> dict:
    """{quality: mean challenge PSNR} of `predict(rgb) -> packed` on (rgb, gt) tests, RGB recompressed per quality."""
    out = {}
    for q in [LOSSLESS, *qualities]:
        rows = []
        for rgb, gt in tests:
            x = rgb if q == LOSSLESS else recompress(rgb, q)
            rows.append(evaluate.score(predict(x), gt, evaluate.packed_oe_mask(x), sensor))
        out[q] = evaluate.summarize(rows)["psnr"]
    return out


def linear_filter_share(jpeg_preds, lossless_preds, radius: int = 3) -> float:
    """Share of the energy of (jpeg - lossless) predictions that the best linear (2r+1)^2 x channels
    filter of the JPEG predictions, least squares on these very pairs, removes."""
    k = 2 * radius + 1

    def features(p):
        h, w, c = p.shape
        padded = np.pad(p, ((radius, radius), (radius, radius), (0, 0)), mode="edge")
        taps = [padded[dy : dy + h, dx : dx + w] for dy in range(k) for dx in range(k)]
        return np.concatenate([*taps, np.ones((h, w, 1))], -1).reshape(h * w, -1)

    xtx, xty, energy = 0.0, 0.0, 0.0  # normal equations, accumulated so memory stays one patch's
    for j, l in zip(jpeg_preds, lossless_preds):
        x, y = features(np.asarray(j, np.float64)), np.asarray(l, np.float64).reshape(-1, l.shape[-1])
        xtx, xty = xtx + x.T @ x, xty + x.T @ y
        energy += np.sum((np.asarray(j, np.float64) - l) ** 2)
    w = np.linalg.solve(xtx, xty)
    left = sum(np.sum((features(np.asarray(j, np.float64)) @ w - np.asarray(l, np.float64).reshape(-1, l.shape[-1])) ** 2)
               for j, l in zip(jpeg_preds, lossless_preds))
    return 1.0 - left / energy


def chroma_share(jpeg420_preds, jpeg444_preds, lossless_preds) -> float:
    """Share of the energy of (jpeg - lossless) predictions at 4:2:0 that is gone at 4:4:4 (same quality)."""
    def energy(preds):
        return sum(np.sum((np.asarray(p, np.float64) - l) ** 2) for p, l in zip(preds, lossless_preds))

    return 1.0 - energy(jpeg444_preds) / energy(jpeg420_preds)


def share_to_halve(drop_db: float) -> float:
    """The share of a JPEG-induced error (additive to the lossless one) to remove so a drop of `drop_db` halves."""
    return 1.0 - (10 ** (drop_db / 20) - 1) / (10 ** (drop_db / 10) - 1)


def _load(example, sensor):
    """(RGB in [0, 1], packed RAW in model units) of a scanned example."""
    return read_rgb(example.rgb), np.asarray(sensor.to_model_units(read_raw_npy(example.raw)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--sensor", default="project")
    ap.add_argument("--qualities", type=int, nargs="+", default=[95, 85, 70])
    ap.add_argument("--aug-range", type=int, nargs=2, default=[70, 95], metavar=("LOW", "HIGH"))
    ap.add_argument("--model", action="append", default=[], metavar="NAME=PATH")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    sensor = get_sensor(args.sensor)
    examples = scan_pairs(args.data, sensor=sensor)
    fit_ex, test_ex = examples[0::2], examples[1::2]
    if not fit_ex or not test_ex:
        print(f"{args.data}: needs at least 2 pairs (even ones fit, odd ones test)", file=sys.stderr)
        return 1
    fits, tests = [_load(e, sensor) for e in fit_ex], [_load(e, sensor) for e in test_ex]
    t0 = time.perf_counter()
    plain = fit_global_inverse([r for r, _ in fits], [b for _, b in fits])
    aug = fit_global_inverse(augmented([r for r, _ in fits], *args.aug_range), [b for _, b in fits])
    methods = {"fitted": plain.predict, "fitted+jpeg": aug.predict}
    for spec in args.model:
        from revisp_tf.models import load_reverse_isp
        from revisp_tf.models.reverse_isp import predict_bayer

        name, _, path = spec.partition("=")
        model = load_reverse_isp(path)
        methods[name] = lambda rgb, model=model: predict_bayer(model, rgb)
    report = {name: score_method(fn, tests, sensor, args.qualities) for name, fn in methods.items()}
    print(f"{args.data}: fit on {len(fits)} pairs, test on {len(tests)}; augmentation range {args.aug_range}; "
          f"{time.perf_counter() - t0:.0f} s")
    cols = [LOSSLESS, *args.qualities]
    print(f"{'method':<14}" + "".join(f"{str(q):>10}" for q in cols) + "".join(f"{'drop ' + str(q):>10}" for q in args.qualities))
    for name, r in report.items():
        drops = [r[LOSSLESS] - r[q] for q in args.qualities]
        print(f"{name:<14}" + "".join(f"{r[q]:10.2f}" for q in cols) + "".join(f"{d:10.2f}" for d in drops))
    if 85 in args.qualities:
        d_plain = report["fitted"][LOSSLESS] - report["fitted"][85]
        d_aug = report["fitted+jpeg"][LOSSLESS] - report["fitted+jpeg"][85]
        print(f"drop at quality 85: fitted {d_plain:.2f} dB, fitted+jpeg {d_aug:.2f} dB (ratio {d_aug / d_plain:.2f})")
        lossless = [plain.predict(rgb) for rgb, _ in tests]
        jpeg = [plain.predict(recompress(rgb, 85)) for rgb, _ in tests]
        share = linear_filter_share(jpeg, lossless)
        chroma = chroma_share(jpeg, [plain.predict(recompress(rgb, 85, "444")) for rgb, _ in tests], lossless)
        print(f"ceiling: the best linear 7x7 filter, fitted on these test pairs, removes {share:.0%} of fitted's "
              f"JPEG-induced error at quality 85, 4:2:0 chroma makes {chroma:.0%} of it; halving its drop needs "
              f"{share_to_halve(d_plain):.0%}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({k: {str(q): v for q, v in r.items()} for k, r in report.items()}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
