"""find-maxes on a Dask cluster: 1, 2 and 3 workers and various partitions give exactly
the single-process tables; a single-process run never imports Dask."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from deepvis.cli import main
from deepvis.maxes.store import read_maxes, write_maxes
from tests.test_maxes_images import photo_set

pytest.importorskip("dask.distributed")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = "efficientnet-lite0"
LAYERS = "stem,block03,head,prob"


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = photo_set(tmp_path_factory.mktemp("photos"), count=16)
    (folder / "a" / "empty.jpg").write_bytes(b"")
    return folder


@pytest.fixture(scope="module")
def alone(photos, tmp_path_factory):
    return run(photos, tmp_path_factory.mktemp("alone") / "alone.npz")


def run(photos, out, *extra):
    assert main(["find-maxes", MODEL, "--images", str(photos), "--layers", LAYERS,
                 "-o", str(out), "--batch-size", "4", *extra]) == 0
    return read_maxes(out)


@pytest.mark.parametrize("workers,partition", [(1, 17), (2, 4), (3, 3)])
def test_any_number_of_workers_and_partitions_gives_the_single_process_tables(
        photos, alone, tmp_path, workers, partition):
    from dask.distributed import LocalCluster

    # Threads in this process, so the test does not pay for spawning and model loads;
    # the CLI reaches them through --scheduler like any cluster.
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        spread = run(photos, tmp_path / "spread.npz", "--scheduler", cluster.scheduler_address,
                     "--partition-size", str(partition))
    for layer in alone.tables:
        assert spread.tables[layer].equals(alone.tables[layer]), layer
    assert spread.skipped == alone.skipped and len(spread.skipped) == 1


def test_workers_get_the_command_lines_input_size_and_preprocess(photos, tmp_path):
    """A graph of dynamic height and width loads only with --input-size, and --preprocess
    changes every activation: workers must load the model with both, as a local run does."""
    from dask.distributed import LocalCluster

    from tests.test_any_input import small_cnn

    model = small_cnn(tmp_path / "dynamic.onnx", batch=0, hw=(0, 0), flatten="flatten")

    def scan(name, *extra):
        out = tmp_path / f"{name}.npz"
        assert main(["find-maxes", str(model), "--images", str(photos), "--layers",
                     "conv,logits", "-o", str(out), "--batch-size", "4", "--input-size", "8x8",
                     *extra]) == 0
        return read_maxes(out)

    here = scan("here", "--preprocess", "caffe")
    assumed = scan("assumed")                    # torchvision, the convention assumed
    assert any(not assumed.tables[layer].equals(here.tables[layer]) for layer in here.tables)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        there = scan("there", "--preprocess", "caffe", "--scheduler", cluster.scheduler_address,
                     "--partition-size", "4")
    for layer in here.tables:
        assert there.tables[layer].equals(here.tables[layer]), layer
    assert there.skipped == here.skipped


def test_partitions_cover_the_ranges_exactly():
    from deepvis.maxes.distributed import default_partition_size, partitions

    assert partitions([(0, 10), (12, 15)], 4) == [(0, 4), (4, 8), (8, 10), (12, 15)]
    assert default_partition_size([(0, 1000)], workers=2, batch_size=32) == 128
    assert default_partition_size([(0, 10 ** 7)], workers=2, batch_size=32) == 64 * 32


def test_a_single_process_run_does_not_import_dask(photos, tmp_path):
    listing = tmp_path / "one.txt"
    listing.write_text(f"{sorted((photos / 'b').iterdir())[0]}\n")
    code = ("import sys; from deepvis.cli import main; "
            f"rc = main(['find-maxes', '{MODEL}', '--images', r'{listing}', '--layers', 'stem', "
            f"'-o', r'{tmp_path / 'one.npz'}']); "
            "sys.exit(rc or 3 * any(m.split('.')[0] in ('dask', 'distributed') "
            "for m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]


def test_crop_max_patches_on_a_cluster_writes_the_same_files(photos, alone, tmp_path):
    from dask.distributed import LocalCluster

    maxes = tmp_path / "alone.npz"
    write_maxes(maxes, alone)
    args = ["crop-max-patches", MODEL, str(maxes), "--layers", "stem,prob", "--units", "0,5"]
    assert main([*args, "-o", str(tmp_path / "here")]) == 0
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        assert main([*args, "-o", str(tmp_path / "there"), "--scheduler",
                     cluster.scheduler_address]) == 0
    here = {p.relative_to(tmp_path / "here"): p.read_bytes()
            for p in (tmp_path / "here").rglob("*") if p.is_file()}
    there = {p.relative_to(tmp_path / "there"): p.read_bytes()
             for p in (tmp_path / "there").rglob("*") if p.is_file()}
    assert len(here) == 4 * (2 + 3 * 9 + 1) and here == there
