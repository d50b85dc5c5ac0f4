"""Image listings and background decoding for find-maxes; `photo_set` makes the small
image set the other test_maxes_* files use (scikit-image's sample photos, flipped
and cropped)."""
from __future__ import annotations

import numpy as np
import pytest

from deepvis.maxes.images import NO_LABEL, batches, decode, list_images, spans

SOURCES = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry",
           "hubble_deep_field", "colorwheel", "camera", "coins", "moon")


def photo_set(folder, count: int = 30, side: int = 128):
    """`count` photos (jpg and png, some gray) under folder/a and folder/b; returns folder."""
    import cv2
    import skimage.data

    folder.mkdir(parents=True, exist_ok=True)
    variants = (lambda im: im, lambda im: im[:, ::-1], lambda im: im[::-1],
                lambda im: im[im.shape[0] // 4:, : im.shape[1] * 3 // 4])
    made = 0
    for v, variant in enumerate(variants):
        for name in SOURCES:
            if made == count:
                return folder
            image = np.ascontiguousarray(variant(getattr(skimage.data, name)()))
            scale = side / max(image.shape[:2])
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            if image.ndim == 3:
                image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
            sub = folder / ("a" if made % 3 else "b")
            sub.mkdir(exist_ok=True)
            cv2.imwrite(str(sub / f"{name}_{v}.{'png' if made % 4 == 0 else 'jpg'}"), image)
            made += 1
    return folder


def test_a_folder_is_listed_recursively_in_sorted_order(tmp_path):
    photo_set(tmp_path / "photos", count=8)
    (tmp_path / "photos" / "notes.txt").write_text("not an image")
    images = list_images(tmp_path / "photos")
    assert len(images) == 8
    assert list(images.paths) == sorted(images.paths)
    assert all(p.startswith(("a/", "b/")) for p in images.paths)
    assert (images.labels == NO_LABEL).all()
    assert images.file(3).is_file()


def test_a_list_file_gives_paths_labels_and_order(tmp_path):
    photo_set(tmp_path / "p", count=3)
    listing = tmp_path / "list.txt"
    names = sorted(str(f.relative_to(tmp_path)) for f in (tmp_path / "p").rglob("*.*"))
    listing.write_text(f"# comment\n{names[2]} 7\n\n{names[0]}\n{names[1]} 285  # cat\n")
    images = list_images(listing)
    assert images.paths == (names[2], names[0], names[1])
    assert images.labels.tolist() == [7, NO_LABEL, 285]
    assert images.root == tmp_path.resolve()
    part = images.subset(1, 3)
    assert part.file(2) == images.file(2) and len(part) == 2


def test_corrupt_and_missing_files_are_skipped_with_a_reason(tmp_path):
    photo_set(tmp_path, count=2)
    (tmp_path / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tmp_path / "a" / "empty.png").write_bytes(b"")
    images = list_images(tmp_path)

    def preprocess(image):
        return np.zeros((1, 3, 4, 4), np.float32) + image.mean()

    got = list(batches(images, [(0, len(images))], preprocess, batch_size=3, threads=2))
    skipped = {images.paths[i]: why for b in got for i, why in b.skipped.items()}
    assert set(skipped) == {"a/broken.jpg", "a/empty.png"}
    assert all("OpenCV" in why for why in skipped.values())
    assert sum(len(b.index) for b in got) == 2
    assert decode(tmp_path / "missing.jpg", preprocess)[1].endswith("does not exist")


def test_background_decoding_gives_the_same_batches_as_inline(tmp_path):
    photo_set(tmp_path, count=10)
    images = list_images(tmp_path)

    def preprocess(image):
        return image.astype(np.float32).mean(axis=2)[None, None, :8, :8]

    ranges = [(0, 4), (6, 10)]
    inline = list(batches(images, ranges, preprocess, 3, threads=0))
    ahead = list(batches(images, ranges, preprocess, 3, threads=2))
    assert [(b.start, b.end) for b in inline] == spans(ranges, 3) == \
        [(0, 3), (3, 4), (6, 9), (9, 10)]
    for a, b in zip(inline, ahead, strict=True):
        assert a.index.tolist() == b.index.tolist()
        np.testing.assert_array_equal(a.x, b.x)


def test_a_decoding_error_reaches_the_caller(tmp_path):
    photo_set(tmp_path, count=2)

    def broken(image):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        list(batches(list_images(tmp_path), [(0, 2)], broken, 1, threads=1))
