import cv2
import numpy as np
from matplotlib import colormaps

from revisp_tf.report import panel


def _packed(seed=5, h=23, w=17):
    rng = np.random.default_rng(seed)
    packed = (0.05 + 0.9 * rng.random((h, w, 4))).astype(np.float32)
    packed[..., 0] *= 0.5  # a colour cast for the gray world to remove
    return packed


def _contains(image: np.ndarray, tile: np.ndarray) -> bool:
    """Whether `tile` appears, pixel for pixel, somewhere in `image`."""
    diff = cv2.matchTemplate(image.astype(np.float32), tile.astype(np.float32), cv2.TM_SQDIFF)
    return float(diff.min()) == 0.0


def test_raw_picture_is_what_infer_png_writes_pixel_for_pixel(tmp_path, monkeypatch):
    from revisp_tf.infer import files

    monkeypatch.setattr(files, "_PNG_BLOCK_ROWS", 5)  # infer visualises block by block, with the frame's gains
    packed = _packed()
    bands = ((y, packed[y : y + 4]) for y in range(0, len(packed), 4))  # as the tiles finish
    png = files.write_png_bands(tmp_path / "x.png", packed.shape, bands)
    written = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)[..., ::-1]
    view = panel.raw_views(packed, {})[panel.GT_LABEL]
    assert view.dtype == np.uint8 and view.shape == written.shape == (46, 34, 3)
    np.testing.assert_array_equal(view, written)


def test_predictions_are_drawn_with_the_ground_truths_white_balance():
    gt = np.full((4, 4, 4), 0.25, np.float32)  # gray: gains 1
    cast = gt.copy()
    cast[..., 0] = 0.5  # twice the red of the ground truth; its own gray world would hide that
    views = panel.raw_views(gt, {"m": cast})
    gray, red = round(0.25 ** (1 / 2.2) * 255), round(0.5 ** (1 / 2.2) * 255)  # bilinear demosaic of flat planes is flat
    assert (gray, red) == (136, 186)
    assert (views[panel.GT_LABEL] == gray).all()
    np.testing.assert_array_equal(np.unique(views["m"].reshape(-1, 3), axis=0), [[red, gray, gray]])


def test_panel_shows_the_pictures_unresized_and_the_signed_error_on_the_first_methods_scale():
    gt = _packed(seed=1, h=40, w=48)
    rgb = np.random.default_rng(2).random((80, 96, 3)).astype(np.float32)
    preds = {"model": gt + 0.01, "other": gt - 0.005}  # errors: +0.01 everywhere; -0.005 everywhere
    oe = np.zeros_like(gt)
    scores = {m: {"psnr": 40.0, "ssim": 0.99, "psnr_oe": np.nan, "psnr_noe": 40.0} for m in preds}
    image = panel.render_panel(rgb, gt, preds, oe, scores, side=96)  # the input's own width: nothing resized
    views = panel.raw_views(gt, preds)
    for name in (panel.GT_LABEL, "model", "other"):
        assert _contains(image, views[name]), name
    # The scale is the model's 99th percentile of |error|, 0.01: the model's map is the top colour, the other's a quarter up.
    cmap = colormaps["RdBu_r"]
    for value, name in ((1.0, "model"), (0.25, "other")):
        colour = np.round(np.array(cmap(value)[:3]) * 255).astype(np.uint8)
        assert _contains(image, np.broadcast_to(colour, (80, 96, 3))), name


def test_outline_paints_the_inner_border_of_the_mask():
    rng = np.random.default_rng(4)
    mask = rng.random((9, 11)) < 0.6
    mask[:, 8:] = True  # a block against the frame's edge: outlined inside only
    img = np.zeros((9, 11, 3), np.uint8)
    out = panel.outline(img, mask)
    painted = (out != 0).any(axis=-1)
    padded = np.pad(mask, 1, constant_values=True)  # outside the frame counts as inside
    inner = np.all([padded[1 + dy : 10 + dy, 1 + dx : 12 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0)
    np.testing.assert_array_equal(painted, mask & ~inner)
    assert painted.any() and (out[painted] == panel._OUTLINE).all()
    assert not img.any()  # a copy


def test_figures_text_writes_a_nan_psnr_as_a_dash():
    # A NaN OE PSNR: the image has no overexposed pixel.
    text = panel._figures_text({"model": {"psnr": 31.234, "ssim": 0.91234, "psnr_oe": np.nan, "psnr_noe": 30.5}})
    assert text.splitlines()[1].split() == ["model", "31.23", "0.9123", "-", "30.50"]
