import numpy as np
import tensorflow as tf

from revisp_tf.isp.sensor import PROJECT_10BIT
from revisp_tf.report import render_panel
from revisp_tf.scoring.scorer import packed_oe_mask, score
from revisp_tf.train.trainer import batch_inputs
from revisp_tf.train.validation import validate


def test_validation_panels_are_the_reports_panels_of_the_first_images(tmp_path):
    from revisp_tf.data.pipeline import make_dataset
    from revisp_tf.data.scan import scan_pairs
    from revisp_tf.data.synthetic import make_synthetic_pairs
    from revisp_tf.models import build_reverse_isp

    make_synthetic_pairs(tmp_path, count=5, seed=4, patch=48)
    examples = scan_pairs(tmp_path, sensor=PROJECT_10BIT)
    ds = make_dataset(examples, crop=32, batch_size=3, training=False, with_demosaiced=False, sensor=PROJECT_10BIT)
    model = build_reverse_isp("dual", base_filters=2, depth=2)
    _, images = validate(model, ds, PROJECT_10BIT, max_images=2)
    batch = next(iter(ds))
    pred = tf.cast(model(batch_inputs(model, batch), training=False), tf.float32).numpy()
    oe = packed_oe_mask(batch["rgb"])
    assert images["panel"].dtype == np.uint8 and len(images["panel"]) == 2
    for k in range(2):
        rows = score(pred[k], batch["raw"][k].numpy(), oe[k], PROJECT_10BIT)
        want = render_panel(batch["rgb"][k].numpy(), batch["raw"][k].numpy(), {"model": pred[k]}, oe[k], {"model": rows})
        np.testing.assert_array_equal(images["panel"][k], want)
