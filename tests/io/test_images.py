import os
import re

import cv2
import numpy as np
import pytest

from revisp_tf.io import atomic, images
from revisp_tf.io.atomic import atomic_write
from revisp_tf.io.images import (
    ImageReadError,
    read_raw_npy,
    read_rgb,
    write_npy,
    write_rgb,
)

# Flat 16x16 colour blocks (whole JPEG MCUs), so JPEG keeps each colour almost exactly.
_BLOCK_COLOURS = np.array([[[230, 20, 20], [20, 200, 40]], [[30, 40, 220], [128, 128, 128]]], np.uint8)


def _blocks_rgb() -> np.ndarray:
    return np.repeat(np.repeat(_BLOCK_COLOURS, 16, axis=0), 16, axis=1)


def _encode(ext: str, img: np.ndarray) -> bytes:
    """Encodes with OpenCV as given (channel order is the caller's)."""
    ok, buf = cv2.imencode(ext, img)
    assert ok
    return buf.tobytes()


def _jpeg_bytes() -> bytes:
    return _encode(".jpg", _blocks_rgb()[..., ::-1].copy())


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _raises_naming(path, match):
    with pytest.raises(ImageReadError, match=match) as info:
        read_rgb(path)
    assert str(path) in str(info.value)


def test_good_jpeg_round_trip(tmp_path):
    path = write_rgb(tmp_path / "blocks.jpg", _blocks_rgb().astype(np.float32) / 255.0, jpeg_quality=100)
    rgb = read_rgb(path)
    assert rgb.dtype == np.float32 and rgb.shape == (32, 32, 3)
    # Block centres against the known colours: catches a BGR/RGB swap and a wrong scale.
    centres = rgb[8::16, 8::16] * 255.0
    np.testing.assert_allclose(centres, _BLOCK_COLOURS, atol=2.0)


def test_png_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.random((6, 10, 3)).astype(np.float32)
    out = read_rgb(write_rgb(tmp_path / "x.png", rgb))
    np.testing.assert_array_equal(out, np.round(rgb * 255.0).astype(np.float32) / 255.0)


def test_truncated_jpeg(tmp_path):
    data = _jpeg_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) * 3 // 4])
    _raises_naming(path, "truncated")


def test_truncated_jpeg_with_end_marker_in_thumbnail(tmp_path):
    # An EXIF thumbnail is a whole JPEG, end marker included, inside a header segment.
    data = _jpeg_bytes()
    thumb = b"Exif\x00\x00" + data
    app1 = b"\xff\xe1" + (len(thumb) + 2).to_bytes(2, "big") + thumb
    with_thumb = data[:2] + app1 + data[2:]
    complete = tmp_path / "thumb.jpg"
    complete.write_bytes(with_thumb)
    np.testing.assert_allclose(read_rgb(complete), read_rgb(_write(tmp_path / "plain.jpg", data)))
    cut = tmp_path / "thumb_cut.jpg"
    cut.write_bytes(with_thumb[:-200])
    _raises_naming(cut, "truncated")


def test_jpeg_with_trailing_data_is_accepted(tmp_path):
    data = _jpeg_bytes()
    plain = read_rgb(_write(tmp_path / "plain.jpg", data))
    np.testing.assert_array_equal(read_rgb(_write(tmp_path / "trailer.jpg", data + b"\x00" * 64 + b"appended")), plain)


def test_truncated_png(tmp_path):
    data = _encode(".png", np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8))
    _raises_naming(_write(tmp_path / "cut.png", data[: len(data) // 2]), "corrupt or truncated")


def test_zero_byte_file(tmp_path):
    _raises_naming(_write(tmp_path / "empty.jpg", b""), "empty")


def test_text_file_named_png(tmp_path):
    _raises_naming(_write(tmp_path / "notes.png", b"not an image\n"), "not a JPEG or PNG")


def test_missing_file(tmp_path):
    _raises_naming(tmp_path / "nowhere.jpg", "cannot read")


def test_image_read_error_is_a_value_error():
    assert issubclass(ImageReadError, ValueError)


def test_rgba_with_transparency_is_refused(tmp_path):
    bgra = np.full((4, 6, 4), 255, np.uint8)
    bgra[0, 0, 3] = 128
    _raises_naming(_write(tmp_path / "alpha.png", _encode(".png", bgra)), "transparent")


def test_opaque_rgba_drops_alpha(tmp_path):
    bgra = np.zeros((4, 6, 4), np.uint8)
    bgra[..., 0], bgra[..., 1], bgra[..., 2], bgra[..., 3] = 10, 20, 30, 255  # B, G, R, A
    rgb = read_rgb(_write(tmp_path / "opaque.png", _encode(".png", bgra)))
    np.testing.assert_array_equal(rgb, np.broadcast_to(np.float32([30, 20, 10]) / 255.0, (4, 6, 3)))


def test_greyscale_is_replicated_with_warning(tmp_path, monkeypatch):
    warnings = []
    monkeypatch.setattr(images.logging, "warning", lambda msg, *args: warnings.append(msg % args))
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    rgb = read_rgb(_write(tmp_path / "grey.png", _encode(".png", grey)))
    np.testing.assert_array_equal(rgb, np.repeat(grey[..., None], 3, axis=-1) / np.float32(255))
    assert len(warnings) == 1 and "greyscale" in warnings[0] and "grey.png" in warnings[0]


def test_16bit_png_scaled_by_65535(tmp_path):
    bgr16 = np.array([[[0, 1000, 65535], [65535, 32768, 1]]], np.uint16)
    rgb = read_rgb(_write(tmp_path / "deep.png", _encode(".png", bgr16)))
    np.testing.assert_array_equal(rgb, bgr16[..., ::-1].astype(np.float32) / np.float32(65535))


def test_write_rgb_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        write_rgb(tmp_path / "x.png", np.full((2, 2, 3), 1.5, np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        write_rgb(tmp_path / "x.png", np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="ending in"):
        write_rgb(tmp_path / "x.bmp", np.zeros((2, 2, 3), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_leaves_nothing_when_the_writer_raises(tmp_path):
    target = tmp_path / "out.png"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(target) as tmp:
            assert tmp.parent == tmp_path and tmp.suffix == ".png" and tmp != target
            tmp.write_bytes(b"half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_keeps_old_file_on_failure_and_replaces_on_success(tmp_path):
    target = _write(tmp_path / "out.npy", b"old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as tmp:
            tmp.write_bytes(b"new")
            raise RuntimeError
    assert target.read_bytes() == b"old"
    with atomic_write(target) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and list(tmp_path.iterdir()) == [target]


def test_npy_round_trip(tmp_path):
    raw = np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4) * 40
    back = read_raw_npy(write_npy(tmp_path / "raw.npy", raw), expected_shape=(2, None, 4))
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, raw)


@pytest.mark.parametrize(
    "arr, match",
    [
        (np.zeros((4, 4, 3), np.uint16), r"shape \(4, 4, 3\)"),
        (np.zeros((1, 4, 4, 4), np.float32), r"shape \(1, 4, 4, 4\)"),
        (np.zeros((4, 4, 4), np.int32), "dtype int32"),
        (np.array([[[0, 0, 0, np.nan]]], np.float32), "1 non-finite"),
    ],
)
def test_read_raw_npy_rejects_bad_arrays(tmp_path, arr, match):
    path = tmp_path / "bad.npy"
    np.save(path, arr)
    with pytest.raises(ImageReadError, match=match) as info:
        read_raw_npy(path)
    assert str(path) in str(info.value)


def test_read_raw_npy_rejects_bad_files(tmp_path):
    good = tmp_path / "good.npy"
    np.save(good, np.zeros((4, 4, 4), np.uint16))
    with pytest.raises(ImageReadError, match=r"expected \(8, 8, 4\)"):
        read_raw_npy(good, expected_shape=(8, 8, 4))
    with pytest.raises(ImageReadError, match="truncated"):
        read_raw_npy(_write(tmp_path / "cut.npy", good.read_bytes()[:-10]))
    pickled = tmp_path / "obj.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ImageReadError, match="pickled"):
        read_raw_npy(pickled)
    with pytest.raises(ImageReadError, match="not a NumPy"):
        read_raw_npy(_write(tmp_path / "text.npy", b"hello"))
    with pytest.raises(ImageReadError, match="empty"):
        read_raw_npy(_write(tmp_path / "empty.npy", b""))
    with pytest.raises(ImageReadError, match="cannot read"):
        read_raw_npy(tmp_path / "missing.npy")
    with pytest.raises(ValueError, match=r"ending in \.npy"):
        write_npy(tmp_path / "raw.bin", np.zeros((2, 2, 4), np.uint16))


# ---------------------------------------------------------------- corrupt data, size limit, write faults


def _jpeg_gradient() -> bytes:
    y, x = np.mgrid[:64, :96]
    return _encode(".jpg", np.stack([2 * x, 3 * y, x + y], -1).astype(np.uint8))


def _scan_start(data: bytes) -> int:
    i = data.find(b"\xff\xda")
    return i + 2 + int.from_bytes(data[i + 2 : i + 4], "big")


def test_jpeg_with_garbage_mid_scan_is_refused(tmp_path, capfd):
    """Garbage inside the entropy-coded data, end marker kept: OpenCV decodes it, libjpeg only warns."""
    data = bytearray(_jpeg_gradient())
    mid = (_scan_start(data) + len(data) - 2) // 2
    data[mid : mid + 40] = np.random.default_rng(1).integers(0, 256, 40, dtype=np.uint8).tobytes()
    path = _write(tmp_path / "garbage.jpg", bytes(data))
    assert cv2.imdecode(np.frombuffer(bytes(data), np.uint8), cv2.IMREAD_UNCHANGED) is not None  # what OpenCV alone does
    capfd.readouterr()
    _raises_naming(path, r"corrupt JPEG data \(libjpeg: Corrupt JPEG data: premature end of data segment\)")
    assert "Corrupt JPEG" not in capfd.readouterr().err  # the warning became the error, not noise


def test_jpeg_with_extraneous_bytes_before_the_end_marker_is_refused(tmp_path):
    data = _jpeg_gradient()
    path = _write(tmp_path / "extra.jpg", data[:-2] + bytes(range(1, 42)) + data[-2:])
    _raises_naming(path, r"corrupt JPEG data \(libjpeg: Corrupt JPEG data: \d+ extraneous bytes before marker 0xd9\)")


def test_good_jpeg_prints_nothing(tmp_path, capfd):
    path = _write(tmp_path / "good.jpg", _jpeg_gradient())
    capfd.readouterr()
    assert read_rgb(path).shape == (64, 96, 3)
    assert capfd.readouterr().err == ""


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height, followed by a tiny IDAT and IEND (valid CRCs)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return images._PNG_MAGIC + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def test_huge_png_header_is_refused_before_decoding(tmp_path, monkeypatch):
    path = _write(tmp_path / "huge.png", _png_claiming(60000, 60000))
    _raises_naming(path, r"PNG is 60000x60000 px \(3600 MP\), above the limit of 64 MP \(revisp-tf --max-megapixels raises it\)")
    # Past OpenCV's own limit (2**30 px) its assertion becomes the same kind of one-line error.
    monkeypatch.setitem(images._limits, "max_pixels", 4_000_000_000)
    _raises_naming(path, "OpenCV cannot decode it")


def test_image_size_limit_is_the_declared_width_times_height(tmp_path, monkeypatch):
    png = write_rgb(tmp_path / "a.png", np.zeros((16, 24, 3), np.uint8))
    jpg = write_rgb(tmp_path / "a.jpg", np.zeros((16, 24, 3), np.uint8))
    assert images.max_pixels() == images.DEFAULT_MAX_PIXELS == 64_000_000
    monkeypatch.setitem(images._limits, "max_pixels", 16 * 24)
    assert read_rgb(png).shape == read_rgb(jpg).shape == (16, 24, 3)
    images.set_max_pixels(16 * 24 - 1)
    _raises_naming(png, r"PNG is 24x16 px")
    _raises_naming(jpg, r"JPEG is 24x16 px")
    with pytest.raises(ValueError, match="positive whole number"):
        images.set_max_pixels(0)


def test_write_into_a_read_only_folder_names_the_target(tmp_path):
    from tests.mounts import read_only_folder

    with read_only_folder(tmp_path / "ro") as ro:
        with pytest.raises(atomic.WriteError) as info:
            write_npy(ro / "out.npy", np.zeros((4, 4, 4), np.uint16))
        assert str(info.value).startswith(f"cannot write {ro / 'out.npy'}: ")
        assert ".tmp" not in str(info.value)
        with pytest.raises(atomic.WriteError, match=f"cannot write into {ro}"):
            atomic.check_writable_dir(ro)
        with pytest.raises(atomic.WriteError, match=f"cannot write into {ro}"):
            atomic.check_output_file(ro / "model.tflite")


def test_full_disk_names_the_target_and_leaves_nothing(tmp_path):
    from tests.mounts import full_folder

    with full_folder(tmp_path / "full", size_kb=64) as full:
        with pytest.raises(atomic.WriteError) as info:
            write_npy(full / "big.npy", np.zeros((256, 256, 4), np.uint16))  # 512 KiB into 64 KiB
        # NumPy reports a short write without errno; the message then adds the space left.
        assert re.fullmatch(rf"cannot write {re.escape(str(full / 'big.npy'))}: 262144 requested and \d+ written "
                            r"\([\d,]+ bytes free there: is the disk full\?\)", str(info.value)), str(info.value)
        with pytest.raises(atomic.WriteError, match=f"cannot write {re.escape(str(full / 'big.bin'))}: No space left on device"):
            with atomic_write(full / "big.bin") as tmp:
                tmp.write_bytes(b"\0" * 300_000)
        assert list(full.iterdir()) == []


def test_check_output_file(tmp_path):
    assert atomic.check_output_file(tmp_path / "x.tflite") == tmp_path / "x.tflite"
    with pytest.raises(atomic.WriteError, match="it is a folder"):
        atomic.check_output_file(tmp_path)
    with pytest.raises(atomic.WriteError, match="does not exist"):
        atomic.check_output_file(tmp_path / "missing" / "x.tflite")
    assert atomic.check_writable_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # creates nothing
    (tmp_path / "afile").write_text("x")
    with pytest.raises(atomic.WriteError, match="it is a file; expected a folder"):
        atomic.check_writable_dir(tmp_path / "afile")
    with pytest.raises(atomic.WriteError, match="is a file; expected a folder"):
        atomic.check_writable_dir(tmp_path / "afile" / "sub")


def test_check_rgb_files_reads_all_before_any_work(tmp_path):
    good = write_rgb(tmp_path / "a.png", np.zeros((4, 6, 3), np.uint8))
    odd = write_rgb(tmp_path / "b.png", np.zeros((5, 6, 3), np.uint8))
    images.check_rgb_files([good])
    with pytest.raises(ImageReadError, match=f"{odd}: 6x5 px; the bayer output needs an even width and height"):
        images.check_rgb_files([good, odd])


def test_stale_temporaries_of_dead_writers_are_removed_by_the_next_write(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".frame.{dead_pid}.0badc0de.tmp.npy"  # what a killed `infer` leaves
    alive = tmp_path / f".other.{os.getppid()}.0badc0de.tmp.npy"  # a writer still running
    foreign = tmp_path / ".notes.tmp"  # not the project's naming
    for p in (stale, alive, foreign):
        p.write_bytes(b"partial")
    write_npy(tmp_path / "frame.npy", np.zeros((2, 2, 4), np.uint16))
    assert not stale.exists() and alive.exists() and foreign.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, foreign.name, "frame.npy"])


def test_png_written_by_rows_decodes_to_the_rows(tmp_path):
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (37, 29, 3), dtype=np.uint8)
    rgb[5:9] = 255  # flat runs and wrap-around differences for the Sub filter
    blocks = [rgb[:1], rgb[1:20], rgb[20:21], rgb[21:]]
    path = images.write_png_rows(tmp_path / "rows.png", 37, 29, iter(blocks))
    decoded = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)  # an independent decoder
    np.testing.assert_array_equal(decoded, rgb)
    np.testing.assert_array_equal(read_rgb(path), rgb.astype(np.float32) / 255)


def test_png_rows_short_or_misshapen_leave_nothing(tmp_path):
    rgb = np.zeros((4, 6, 3), np.uint8)
    with pytest.raises(RuntimeError, match=r"x\.png: 4 of 5 rows"):
        images.write_png_rows(tmp_path / "x.png", 5, 6, [rgb])
    with pytest.raises(ValueError, match=r"x\.png: expected uint8 row blocks \(n, 6, 3\)"):
        images.write_png_rows(tmp_path / "x.png", 4, 6, [rgb.astype(np.float32)])
    assert list(tmp_path.iterdir()) == []


def test_scratch_file_is_removed_after_use_and_after_failure(tmp_path):
    with atomic.scratch_file(tmp_path / "a.f32") as tmp:
        tmp.write_bytes(b"x")
        assert tmp.parent == tmp_path and tmp.name.startswith(".a.")
    with pytest.raises(KeyError), atomic.scratch_file(tmp_path / "b.f32") as tmp:
        tmp.write_bytes(b"x")
        raise KeyError
    assert list(tmp_path.iterdir()) == []
