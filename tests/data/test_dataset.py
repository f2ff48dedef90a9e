"""Issue "the first five minutes", item 7: labelled sets as users have them, and never a silent zero.

The ultralytics layouts are built in tmp_path from symlinks to the real coco-val128 files, and must
read exactly as the flat folder does: a data.yaml, its root, its images/val2017 folder, a .txt list, a zip.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from core.data import MIN_PAIRED, YoloDataset, load_dataset, names_mismatch
from core.errors import InputError
from core.runtime.onnx_file import COCO_NAMES

SPLIT = "val2017"


@pytest.fixture(scope="module")
def flat(val_dir) -> YoloDataset:
    ds = load_dataset(val_dir)
    assert (ds.inventory.images, ds.inventory.labelled, ds.inventory.boxes) == (128, 128, 898)
    return ds


def link_all(src: Path, dest: Path, pattern: str, limit: int | None = None) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    made = []
    for p in sorted(src.glob(pattern))[:limit]:
        (dest / p.name).symlink_to(p)
        made.append(dest / p.name)
    return made


def ultralytics_layout(root: Path, val_dir: Path, labels: bool = True, yaml_extra: dict | None = None) -> Path:
    """ROOT/images/{train2017,val2017} + ROOT/labels/... + ROOT/data.yaml, files symlinked to coco-val128's."""
    link_all(val_dir / "images", root / "images" / SPLIT, "*.jpg")
    link_all(val_dir / "images", root / "images" / "train2017", "*.jpg", 4)  # a second split: root must pick val
    if labels:
        link_all(val_dir / "labels", root / "labels" / SPLIT, "*.txt")
        link_all(val_dir / "labels", root / "labels" / "train2017", "*.txt", 4)
    data = {"path": str(root), "train": "images/train2017", "val": f"images/{SPLIT}"}
    data["names"] = dict(enumerate(COCO_NAMES))
    (root / "data.yaml").write_text(yaml.safe_dump({**data, **(yaml_extra or {})}))
    return root


def assert_same_set(ds: YoloDataset, flat: YoloDataset) -> None:
    assert [i.image.name for i in ds.items] == [i.image.name for i in flat.items]
    assert all(np.array_equal(a.labels, b.labels) for a, b in zip(ds.items, flat.items, strict=True))
    got, want = ds.inventory, flat.inventory
    assert (got.images, got.labelled, got.background, got.boxes) == (want.images, want.labelled, 0, 898)
    assert not got.bad_lines and not got.orphan_labels and got.pairing_warning is None


def test_data_yaml_its_root_and_its_split_folder_read_as_the_flat_set(tmp_path, val_dir, flat):
    root = ultralytics_layout(tmp_path / "coco", val_dir)
    from_yaml = load_dataset(root / "data.yaml")
    assert_same_set(from_yaml, flat)
    assert from_yaml.names == tuple(COCO_NAMES) and from_yaml.names_mismatch(COCO_NAMES) is None
    from_root = load_dataset(root)
    assert_same_set(from_root, flat)
    assert SPLIT in from_root.layout and from_root.names is None
    assert_same_set(load_dataset(root / "images" / SPLIT), flat)
    assert_same_set(load_dataset(tmp_path), flat)  # one level above the dataset folder
    assert load_dataset(root / "data.yaml", max_images=8).inventory.images == 8
    # a data.yaml copied with its set from another machine: its path is not here, its own folder is used
    (root / "data.yaml").write_text(yaml.safe_dump({"path": "/home/someone/coco", "val": f"images/{SPLIT}"}))
    moved = load_dataset(root / "data.yaml")
    assert_same_set(moved, flat)
    assert "path: /home/someone/coco is not a folder here" in moved.layout


def test_data_yaml_path_and_val_forms(tmp_path, val_dir, flat, monkeypatch):
    root = ultralytics_layout(tmp_path / "coco", val_dir, yaml_extra={"path": "coco", "val": [f"images/{SPLIT}"]})
    # path relative to the yaml's folder (then the working folder), val as a list, names as a list
    (tmp_path / "data.yaml").write_text((root / "data.yaml").read_text())
    assert_same_set(load_dataset(tmp_path / "data.yaml"), flat)
    monkeypatch.chdir(tmp_path)
    listing = "".join(f"./images/{SPLIT}/{i.image.name}\n" for i in flat.items)
    (root / "val2017.txt").write_text(listing)
    data = {"val": "val2017.txt", "names": list(COCO_NAMES)}  # no path: the yaml's folder
    (root / "list.yaml").write_text(yaml.safe_dump(data))
    from_list = load_dataset(root / "list.yaml")
    assert_same_set(from_list, flat)
    assert from_list.names == tuple(COCO_NAMES)
    # a Roboflow export: val: ../valid/images beside the yaml (ultralytics drops the ../)
    rf = tmp_path / "roboflow"
    link_all(val_dir / "images", rf / "valid" / "images", "*.jpg")
    link_all(val_dir / "labels", rf / "valid" / "labels", "*.txt")
    (rf / "data.yaml").write_text(yaml.safe_dump({"val": "../valid/images", "nc": 80, "names": list(COCO_NAMES)}))
    assert_same_set(load_dataset(rf / "data.yaml"), flat)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"val": "images/nope"}, r"val: images/nope is not there"),
        ({"path": "/nonexistent/coco", "val": "images/nope"}, r"images/nope is not there .*; its path: /nonexist"),
        ({"val": None}, r"has no val: entry"),
        ({"names": {0: "a", 2: "c"}}, r"names must number the classes 0..1"),
        ({"nc": 3}, r"nc is 3 but 80 names"),
    ],
)
def test_a_wrong_data_yaml_is_explained(tmp_path, val_dir, data, message):
    root = ultralytics_layout(tmp_path / "coco", val_dir, yaml_extra=data)
    with pytest.raises(InputError, match=message):
        load_dataset(root / "data.yaml")


def test_a_root_with_no_single_validation_split_lists_its_splits(tmp_path, val_dir):
    root = ultralytics_layout(tmp_path / "coco", val_dir)
    (root / "images" / "valid").mkdir()
    with pytest.raises(InputError, match=r"splits train2017, val2017, valid and 2 look like the validation split"):
        load_dataset(root)
    (root / "images" / "valid").rmdir()
    (root / "images" / SPLIT).rename(root / "images" / "test2017")
    with pytest.raises(InputError, match=r"splits test2017, train2017 and none looks like .* e\.g\. .*test2017"):
        load_dataset(root)


def zip_folder_into(zip_path: Path, folder: Path, arc_root: str) -> Path:
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_STORED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, f"{arc_root}/{p.relative_to(folder)}")  # follows the symlinks: the real bytes
    return zip_path


def test_a_zip_reads_as_its_folder_with_its_data_yaml(tmp_path, val_dir, flat, monkeypatch):
    monkeypatch.setenv("YOLOLAB_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "src"
    link_all(val_dir / "images", src / "images" / SPLIT, "*.jpg", 12)
    link_all(val_dir / "labels", src / "labels" / SPLIT, "*.txt", 12)
    (src / "data.yaml").write_text(yaml.safe_dump({"path": "/elsewhere", "val": f"images/{SPLIT}", "names": ["cat"]}))
    zipped = zip_folder_into(tmp_path / "set.zip", src, "my-set")  # wrapped in one folder, as zips often are
    ds = load_dataset(zipped)
    want = flat.items[:12]
    assert [i.image.name for i in ds.items] == [i.image.name for i in want]
    assert ds.inventory.boxes == sum(len(i.labels) for i in want) and ds.inventory.labelled == 12
    assert ds.names == ("cat",) and "set.zip unpacked to" in ds.layout  # path: is the unpacked folder (ultralytics)
    assert ds.items[0].image.is_relative_to(tmp_path / "cache")
    assert load_dataset(zipped).items[0].image == ds.items[0].image  # unpacked once, then reused
    (src / "data.yaml").unlink()
    flat_zip = zip_folder_into(tmp_path / "plain.zip", src, "plain")  # no data.yaml: the folder rules
    assert load_dataset(flat_zip).inventory.labelled == 12


def test_images_without_any_label_file_are_refused_naming_where_labels_were_looked_for(tmp_path, val_dir):
    root = ultralytics_layout(tmp_path / "coco", val_dir, labels=False)
    labels = root / "labels" / SPLIT
    for given in (root / "images" / SPLIT, root, root / "data.yaml"):
        with pytest.raises(InputError, match=r"no label files for the 128 images: looked in ") as err:
            load_dataset(given)
        assert str(labels) in str(err.value) and "YOLO layout" in str(err.value)
    flat_unlabelled = tmp_path / "flat"
    link_all(val_dir / "images", flat_unlabelled / "images", "*.jpg")
    with pytest.raises(InputError, match="no label files for the 128 images") as err:
        load_dataset(flat_unlabelled)
    assert str(flat_unlabelled / "labels") in str(err.value)


def test_the_first_images_all_unlabelled_is_refused_too(tmp_path, val_dir):
    root = tmp_path / "ds"
    link_all(val_dir / "images", root / "images", "*.jpg")
    link_all(val_dir / "labels", root / "labels", "*.txt")
    first = sorted((root / "labels").iterdir())[:4]
    for p in first:
        p.unlink()
    with pytest.raises(InputError, match=r"none of the first 4 images .* though 124 of the 128 do"):
        load_dataset(root, max_images=4)


def test_fewer_than_nine_in_ten_paired_is_said_not_refused(tmp_path, val_dir, calib_dir):
    root = tmp_path / "ds"
    link_all(val_dir / "images", root / "images", "*.jpg")
    link_all(val_dir / "labels", root / "labels", "*.txt", 100)
    rep = load_dataset(root).inventory
    assert (rep.images, rep.labelled, rep.background) == (128, 100, 28) and MIN_PAIRED > 100 / 128
    warning = rep.pairing_warning
    assert warning and "only 100 of 128 images (78 %) have a label file" in warning
    assert str(root / "labels") in warning and "28 are scored as background" in warning
    assert load_dataset(calib_dir).inventory.pairing_warning is None  # coco128: 126 of 128, two background


def test_names_from_data_yaml_against_the_model_names(tmp_path, val_dir):
    coco = tuple(COCO_NAMES)
    assert names_mismatch(None, coco) is None  # a folder has no names: nothing to compare
    assert names_mismatch(coco, coco) is None
    assert names_mismatch(("Person", "bicycle", "car"), coco) is None  # the model's first ids, case aside
    assert names_mismatch(("traffic_light",), ("traffic light",)) is None
    message = names_mismatch(("cat", "dog"), coco)
    assert message and "at 2 of 2 ids" in message and "0: 'cat' vs 'person'" in message
    longer = names_mismatch(("a", "b", "c"), ("a", "b"))
    assert longer and "names 3 classes but the model predicts 2" in longer and "(c)" in longer
    root = ultralytics_layout(tmp_path / "pets", val_dir, yaml_extra={"names": {0: "cat", 1: "dog", 2: "bird"}})
    ds = load_dataset(root / "data.yaml")
    assert ds.names == ("cat", "dog", "bird")
    mismatch = ds.names_mismatch(coco)
    assert mismatch and "'cat' vs 'person'" in mismatch and "scored by class id" in mismatch


def test_what_is_not_a_dataset_is_explained(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_dataset(tmp_path / "nope.yaml")
    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(InputError, match=r"a dataset is a folder .* got a \.onnx"):
        load_dataset(tmp_path / "model.onnx")
    (tmp_path / "bad.yaml").write_text("val: [unclosed\n")
    with pytest.raises(InputError, match="not a readable YAML file"):
        load_dataset(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(InputError, match=r"expected an ultralytics data\.yaml"):
        load_dataset(tmp_path / "list.yaml")
