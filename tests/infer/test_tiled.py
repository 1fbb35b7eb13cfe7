"""Tiled inference against one pass of the same model; the AIM 2022 patch grid.

The reference for every tiled result is the model run once over the whole frame (the U-Net
takes any size). Tiles equal it exactly where each used pixel sees its whole receptive field
inside its tile: `margin` >= the receptive radius, 2**(depth + 3) - 6 px. The radius itself is
checked here by perturbing one input pixel.
"""

import numpy as np
import pytest

from revisp_tf.infer.aim22 import group_patch_files, stitch_patches, unstitch
from revisp_tf.infer.tiled import TiledInference
from tests.lively import infer_tiled, receptive_radius
from revisp_tf.infer.tiling import axis_weights, tile_starts
from revisp_tf.models.inference_form import inference_form
from tests.conftest import REALDATA, read_jpeg_rgb
from tests.context_model import CONTEXT_CHANNELS, context_dual_model
from tests.lively import generated_frame, lively_model


def real_frame(realdata, scene="78"):
    """A full 3024x4032 S7 frame rebuilt from its 48 patches."""
    paths = sorted((realdata / "aim22_s7_rgb").glob(f"{scene}_*.jpg"))
    return stitch_patches(group_patch_files(paths)[scene])


def one_pass(model, rgb):
    return model.predict_on_batch(rgb[None])[0]


def seam_excess(out, ref, starts, extent, axis):
    """(worst across tile borders, worst inside tiles) of the extra neighbour difference tiling adds.

    Per boundary b between packed rows/columns b and b+1: mean |out[b+1] - out[b]| minus the same
    for the one-pass `ref`, over the frame's mean neighbour difference. A seam shows as a large
    value at the borders (the overlaps and the boundary before each tile).
    """
    diff = lambda a: np.abs(np.diff(a, axis=axis)).mean(axis=(1 - axis, 2))  # noqa: E731
    natural = diff(ref)
    excess = (diff(out) - natural) / natural.mean()
    border = np.zeros(excess.shape, bool)
    for prev, start in zip(starts, starts[1:]):
        border[start // 2 - 1 : (prev + extent) // 2] = True
    return excess[border].max(), excess[~border].max()


@pytest.fixture(scope="module")
def depth2():
    return lively_model("dual", depth=2)


@pytest.fixture(scope="module")
def depth4():
    return lively_model("single", depth=4)


@pytest.mark.parametrize("depth, size, centers", [(2, 96, (48, 49)), (4, 320, (160, 163))])
def test_receptive_radius_bounds_a_perturbation(depth, size, centers):
    model = lively_model("single", depth=depth, seed=1)
    radius = receptive_radius(depth)
    rgb = generated_frame(size, size)
    base = one_pass(model, rgb)
    reach = 0
    for c in centers:
        moved = rgb.copy()
        moved[c, c] = 1.0 - moved[c, c]
        changed = np.argwhere(np.abs(one_pass(model, moved) - base).max(-1) > 0)
        # A packed pixel P holds full-resolution rows/columns 2P and 2P+1: its nearer one must be within reach.
        dist = np.maximum(np.abs(2 * changed + 0.5 - c) - 0.5, 0)
        assert dist.max() <= radius
        reach = max(reach, dist.max())
    assert reach >= radius - 16  # the bound is nearly attained, so margins below it are not exact


def test_tiles_equal_one_pass_when_margin_covers_receptive_field(depth2):
    rgb = generated_frame(240, 320)
    ref = one_pass(depth2, rgb)
    got = infer_tiled(depth2, rgb, tile=128, overlap=80, batch_size=3, margin=32)  # margin 32 >= radius 26
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)
    near = infer_tiled(depth2, rgb, tile=128, overlap=32, margin=8)  # margin below the radius: close, not exact
    assert 1e-4 < np.abs(near - ref).max() < 0.05


def test_tiles_equal_one_pass_on_real_patches(realdata, depth2):
    rgb = real_frame(realdata)[1008:2016, 1512:2520]
    ref = one_pass(depth2, rgb)
    got = infer_tiled(depth2, rgb, tile=256, overlap=64, batch_size=2, margin=32)
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)


def test_unaligned_frame_equals_one_pass_over_bottom_right_padding(depth2):
    rgb = generated_frame(250, 330)  # neither side a multiple of the depth-2 alignment (4)
    padded = np.pad(rgb, [(0, 2), (0, 2), (0, 0)], constant_values=1.0)  # the U-Net's pad constant
    ref = one_pass(depth2, padded)[:125, :165]
    got = infer_tiled(depth2, rgb, tile=128, overlap=64, margin=32)
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("shape", [(100, 126), (100, 320)])
def test_axis_shorter_than_tile_is_one_tile(depth2, shape):
    rgb = generated_frame(*shape)
    got = infer_tiled(depth2, rgb, tile=128, overlap=64, margin=32)
    np.testing.assert_allclose(got, one_pass(depth2, rgb), atol=1e-5, rtol=0)
    assert tile_starts(shape[0], 128, 64, 4) == ([0], shape[0])


@pytest.mark.parametrize(
    "size, tile, overlap, margin", [(3024, 512, 64, 16), (1104, 512, 64, 0), (900, 256, 200, 100), (4032, 1024, 320, 128)]
)
def test_blend_weights_partition_of_unity(size, tile, overlap, margin):
    starts, extent = tile_starts(size, tile, overlap, 16)
    assert all(s % 16 == 0 for s in starts) and starts[-1] + extent == -(-size // 16) * 16
    assert all(prev + extent - s >= overlap for prev, s in zip(starts, starts[1:]))
    weights = axis_weights(starts, extent, margin)
    total = np.zeros(starts[-1] // 2 + extent // 2)
    for s, w in zip(starts, weights):
        total[s // 2 : s // 2 + extent // 2] += w
        assert np.all(w >= 0)
    np.testing.assert_allclose(total, 1.0, atol=1e-6)
    for i, w in enumerate(weights):  # context-only margins at inner edges
        if i > 0:
            assert not w[: margin // 2].any()
        if i < len(weights) - 1:
            assert not w[extent // 2 - margin // 2 :].any()


def test_constant_model_gives_constant_frame():
    model = lively_model("single", depth=2)
    head = model.get_layer("unet").get_layer("head")
    head.set_weights([np.zeros_like(head.kernel.numpy()), np.full(3, 0.3, np.float32)])
    got = infer_tiled(model, generated_frame(250, 330), tile=64, overlap=48, margin=8)
    np.testing.assert_allclose(got, 0.3, atol=1e-6)


def test_blending_leaves_no_seams(depth4):
    rgb = generated_frame(384, 512, seed=2)
    ref = one_pass(depth4, rgb)
    for axis in (0, 1):
        starts, extent = tile_starts(rgb.shape[axis], 128, 64, 16)
        blended = infer_tiled(depth4, rgb, tile=128, overlap=64, margin=16)  # margin 16 << radius 122
        assert np.abs(blended - ref).max() > 1e-4  # the tiles really disagree near their edges ...
        border, inside = seam_excess(blended, ref, starts, extent, axis)
        assert border < 0.1 and inside < 0.1  # ... yet no neighbour difference grows by 10% of the natural one
        cut_starts, _ = tile_starts(rgb.shape[axis], 128, 0, 16)
        cut = infer_tiled(depth4, rgb, tile=128, overlap=0)
        assert seam_excess(cut, ref, cut_starts, extent, axis)[0] > 1.0  # positive control: hard cuts show


@pytest.mark.slow
def test_full_frame_tiles_equal_one_pass(request):
    """12 MP: tiled depth-4 inference equals one pass everywhere (margin 128 >= radius 122, 3024x4032 aligned to 16)."""
    rgb = real_frame(REALDATA) if REALDATA.is_dir() else generated_frame(3024, 4032)
    model = lively_model("single", depth=4)
    ref = one_pass(model, rgb)
    got = infer_tiled(model, rgb, tile=1024, overlap=320, batch_size=2, margin=128)
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)
    for axis in (0, 1):
        starts, extent = tile_starts(rgb.shape[axis], 1024, 320, 16)
        assert max(seam_excess(got, ref, starts, extent, axis)) < 1e-3


def test_bad_input_is_refused(depth2):
    rgb = generated_frame(64, 64)
    with pytest.raises(ValueError, match="even height and width"):
        infer_tiled(depth2, rgb[:63])
    with pytest.raises(ValueError, match=r"shape \(H, W, 3\)"):
        infer_tiled(depth2, rgb[..., :2])
    with pytest.raises(ValueError, match="uint8, uint16 or a float array"):
        infer_tiled(depth2, (rgb * 255).astype(np.int32))
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        infer_tiled(depth2, rgb * 2)
    bad = rgb.copy()
    bad[3, 3, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        infer_tiled(depth2, bad)
    with pytest.raises(ValueError, match="multiple of 4"):
        infer_tiled(depth2, rgb, tile=66)
    with pytest.raises(ValueError, match="overlap=65"):
        infer_tiled(depth2, rgb, tile=128, overlap=65)
    with pytest.raises(ValueError, match="margin=40"):
        infer_tiled(depth2, rgb, tile=128, overlap=64, margin=40)


def expected_kinds(plan, rgb):
    """NumPy reference of each tile's kind: the luma mask (Y >= 0.978) over the full-resolution pixels of the
    packed output the tile blends in (weight > 0, inside the frame): any 1 -> OE runs, any 0 -> NOE runs."""
    y = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    oe = y >= 0.978
    h2, w2 = rgb.shape[0] // 2, rgb.shape[1] // 2
    kinds = np.empty((len(plan.ys), len(plan.xs)), object)
    for i, y0 in enumerate(plan.ys):
        rows = np.flatnonzero(plan.wy[i][: h2 - y0 // 2] > 0) + y0 // 2
        for j, x0 in enumerate(plan.xs):
            cols = np.flatnonzero(plan.wx[j][: w2 - x0 // 2] > 0) + x0 // 2
            region = oe[2 * rows[0] : 2 * rows[-1] + 2, 2 * cols[0] : 2 * cols[-1] + 2]
            kinds[i, j] = "both" if region.any() and not region.all() else "oe" if region.all() else "noe"
    return kinds


def skip_versus_both(model, rgb, **tiling):
    """(plan, output with skipping, output running both nets on every tile)."""
    runner = TiledInference(model)
    plan = runner.plan(rgb, tiling["tile"], tiling["overlap"], margin=tiling.get("margin"))
    return plan, runner(rgb, **tiling), TiledInference(model, skip_oe=False)(rgb, **tiling)


def test_skipping_a_net_equals_running_both():
    rgb = generated_frame(240, 320)
    rgb[:120, 160:] = 1.0  # a saturated quarter: tiles wholly inside it need only the OE net
    model = inference_form(lively_model("dual", depth=2))
    plan, skipped, both = skip_versus_both(model, rgb, tile=64, overlap=16, batch_size=3)
    np.testing.assert_array_equal(plan.kinds, expected_kinds(plan, rgb))
    assert all(plan.count(k) > 0 for k in ("both", "noe", "oe"))
    np.testing.assert_allclose(skipped, both, atol=1e-6, rtol=0)


def test_skipped_net_is_really_not_run():
    """A poisoned OE net (NaN output) poisons exactly the tiles that ran it: 0 * NaN is NaN, so any other would show."""
    rgb = generated_frame(240, 320)
    model = lively_model("dual", depth=2)
    head = model.get_layer("unet_oe").get_layer("head")
    head.set_weights([head.kernel.numpy(), np.full(3, np.nan, np.float32)])
    runner = TiledInference(model)
    plan = runner.plan(rgb, 64, 16)
    want = np.zeros((120, 160), bool)
    for i, j in zip(*np.nonzero(plan.kinds != "noe")):
        want[plan.ys[i] // 2 : (plan.ys[i] + plan.th) // 2, plan.xs[j] // 2 : (plan.xs[j] + plan.tw) // 2] = True
    got = np.isnan(runner(rgb, 64, 16)).any(-1)
    assert 0 < want.mean() < 0.5
    np.testing.assert_array_equal(got, want)
    assert np.isnan(TiledInference(model, skip_oe=False)(rgb, 64, 16)).all()


@pytest.mark.slow
def test_skipping_on_a_real_frame_equals_running_both(realdata):
    """Scene 78 (7.5 % overexposed, in a few tiles), through the inference form at depth 4 as shipped."""
    rgb = real_frame(realdata)
    model = inference_form(lively_model("dual", depth=4))
    plan, skipped, both = skip_versus_both(model, rgb, tile=512, overlap=64, batch_size=2)
    np.testing.assert_array_equal(plan.kinds, expected_kinds(plan, rgb))
    assert 0.05 < plan.oe_share < 0.5
    assert skipped.std() > 0.05
    np.testing.assert_allclose(skipped, both, atol=1e-5, rtol=0)


def test_context_is_sliced_like_the_rgb():
    """A two-input model: tiles with their slice of the frame's context equal one pass over the frame."""
    model = context_dual_model(depth=2)
    rgb = generated_frame(240, 320)
    yy, xx = np.mgrid[0:240, 0:320] / 100.0
    context = np.stack([np.sin(yy), np.cos(xx), yy * xx / 5, yy - xx, np.ones_like(yy)], -1).astype(np.float32)
    assert context.shape[-1] == CONTEXT_CHANNELS
    ref = model.predict_on_batch([rgb[None], context[None]])[0]
    tiling = dict(tile=128, overlap=80, batch_size=3, margin=32)  # margin 32 >= radius 26: exact
    np.testing.assert_allclose(infer_tiled(model, rgb, context=context, **tiling), ref, atol=1e-5, rtol=0)
    window = lambda y0, x0, h, w: context[y0 : y0 + h, x0 : x0 + w]  # noqa: E731
    np.testing.assert_allclose(infer_tiled(model, rgb, context=window, **tiling), ref, atol=1e-5, rtol=0)
    np.testing.assert_allclose(infer_tiled(model, rgb, context=context, skip_oe=False, **tiling), ref, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="'context' input"):
        infer_tiled(model, rgb, **tiling)
    with pytest.raises(ValueError, match="context: expected"):
        infer_tiled(model, rgb, context=context[:100], **tiling)


def test_integer_frames_and_bands_in_order():
    model = lively_model("dual", depth=2)
    rgb8 = np.round(generated_frame(240, 320) * 255).astype(np.uint8)
    want = infer_tiled(model, rgb8.astype(np.float32) / 255, tile=64, overlap=16)
    np.testing.assert_array_equal(infer_tiled(model, rgb8, tile=64, overlap=16), want)

    class Rows:
        """A sink that accepts rows only once each, top to bottom (as a streaming file writer does)."""

        def __init__(self):
            self.parts, self.next = [], 0

        def __setitem__(self, index, rows):
            assert index.start == self.next and index.stop == self.next + len(rows)
            self.parts.append(np.array(rows))
            self.next = index.stop

    sink = infer_tiled(model, rgb8, tile=64, overlap=16, batch_size=8, out=Rows())
    assert len(sink.parts) > 2  # more than one band: rows leave memory as they finish
    np.testing.assert_allclose(np.concatenate(sink.parts), want, atol=1e-6, rtol=0)  # batch 8: other conv kernels


def test_jit_compile_gives_the_same_output():
    model = inference_form(lively_model("dual", depth=2))
    rgb = generated_frame(160, 192)
    plain = infer_tiled(model, rgb, tile=64, overlap=16, batch_size=2)
    np.testing.assert_allclose(infer_tiled(model, rgb, tile=64, overlap=16, batch_size=2, jit_compile=True), plain,
                               atol=1e-5, rtol=0)


def test_tile_extent_is_the_smallest_for_the_tile_count():
    starts, extent = tile_starts(3024, 512, 32, 16)
    assert (len(starts), extent) == (7, 464) and starts[-1] + extent == 3024
    assert len(tile_starts(3024, 512, 32, 16)[0]) == 1 + -(-(3024 - 512) // 480)  # as many as 512 px tiles need
    assert all(b - a <= extent - 32 for a, b in zip(starts, starts[1:]))
    bigger = [s for s in range(16, 464, 16) if (s - 32) // 16 * 16 > 0]
    assert all(1 + -(-(3024 - s) // ((s - 32) // 16 * 16)) > 7 for s in bigger)  # no smaller extent does it in 7


def test_progress_shows_tiles_done_of_total(capsys):
    model, rgb = lively_model("single", depth=2), generated_frame(128, 192)
    total = TiledInference(model).plan(rgb, 64, 16).tiles
    infer_tiled(model, rgb, tile=64, overlap=16, progress=True)
    err = capsys.readouterr().err
    assert "tiles: " in err and f" 0/{total} " in err and f" 1/{total} " in err  # done / total as tiles finish


def _reference_stitch(patches, rows, cols):
    """NumPy reference: pixel (y, x) of the frame comes from patch k = cols * (y // h) + x // w."""
    h, w = patches[0].shape[:2]
    frame = np.zeros((rows * h, cols * w, *patches[0].shape[2:]), patches[0].dtype)
    for y in range(rows * h):
        for x in range(0, cols * w, w):
            frame[y, x : x + w] = patches[cols * (y // h) + x // w][y % h]
    return frame


def test_stitch_and_unstitch_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    patches = [rng.integers(0, 1024, (6, 5, 4)).astype(np.uint16) for _ in range(48)]
    frame = stitch_patches(patches)
    np.testing.assert_array_equal(frame, _reference_stitch(patches, 6, 8))
    assert all(np.array_equal(a, b) for a, b in zip(unstitch(frame), patches))
    paths = []
    for k in rng.permutation(48):
        np.save(tmp_path / f"scene_a_{k}.npy", patches[k])
        paths.append(tmp_path / f"scene_a_{k}.npy")
    grouped = group_patch_files(paths)
    assert list(grouped) == ["scene_a"]
    np.testing.assert_array_equal(stitch_patches(grouped["scene_a"]), frame)
    with pytest.raises(ValueError, match="missing \\[7\\]"):
        group_patch_files([p for p in paths if p.stem != "scene_a_7"])
    with pytest.raises(ValueError, match="6x8"):
        unstitch(frame[:-1])


def test_stitch_real_scene_places_patch_k_at_row_k_div_8(realdata):
    frame = real_frame(realdata)
    assert frame.shape == (3024, 4032, 3)
    for k in (0, 13, 47):
        row, col = divmod(k, 8)
        want = read_jpeg_rgb(realdata / "aim22_s7_rgb" / f"78_{k}.jpg")
        np.testing.assert_allclose(frame[row * 504 : (row + 1) * 504, col * 504 : (col + 1) * 504], want, atol=1 / 255)
