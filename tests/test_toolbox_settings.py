"""The original toolbox's settings_local.py files load unchanged (original-toolbox §7).

The fixtures are written here with the same constructs as the original's three templates:
%DVT_ROOT% paths, `def` name shorteners over several lines, a filter lambda, helper
variables with arithmetic in window_panes, a computed aspect ratio, caffevis_caffe_root.
"""
import numpy as np
import pytest

from deepvis import load_model
from deepvis.caffe.parse import read_prototxt
from deepvis.caffe.weights import random_weights
from deepvis.errors import DeepvisError, FormatError
from deepvis.resources import cache_dir, models_dir
from deepvis.settings import load_settings, read_settings_file
from deepvis.toolbox.session import Session, replay, static_files_for
from tests.caffe_writer import write_caffemodel

TINY_DEPLOY = """name: "Tiny"
input: "data"
input_dim: 1
input_dim: 3
input_dim: 16
input_dim: 16
force_backward: true
layers { name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1"
         convolution_param { num_output: 4 kernel_size: 3 stride: 2 } }
layers { name: "relu1" type: RELU bottom: "conv1" top: "conv1" }
layers { name: "pool1" type: POOLING bottom: "conv1" top: "pool1"
         pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layers { name: "fc8" type: INNER_PRODUCT bottom: "pool1" top: "fc8"
         inner_product_param { num_output: 5 } }
layers { name: "prob" type: SOFTMAX bottom: "fc8" top: "prob" }
"""

SETTINGS_LOCAL = '''# Define critical settings; copy to settings_local.py and edit.

caffevis_caffe_root      = '/path/to/caffe'

# Load model: tiny
caffevis_deploy_prototxt = '%DVT_ROOT%/models/tiny/tiny-deploy.prototxt'
caffevis_network_weights = '%DVT_ROOT%/models/tiny/tiny.caffemodel'
caffevis_data_mean       = (104, 117, 123)   # per-channel mean
caffevis_labels          = '%DVT_ROOT%/models/tiny/labels.txt'
caffevis_jpgvis_layers   = []
caffevis_prob_layer      = 'prob'
caffevis_label_layers    = ('fc8', 'prob')
def caffevis_layer_pretty_name_fn(name):
    # Shorten names to fit the control pane
    name = name.replace('conv','c').replace('pool','p')
    name = name.replace('c1', 'C1')
    return name.replace('__', '_')
caffevis_filter_layers = lambda name: '_split_' in name or 'fc8' in name

_control_height = 125
window_panes = (
    # (i, j, i_size, j_size)
    ('input',            (  0,    0,  300,   300)),
    ('caffevis_aux',     (300,    0,  300,   300)),
    ('caffevis_back',    (600,    0,  300,   300)),
    ('caffevis_status',  (900,    0,   30,  1500)),
    ('caffevis_control', (  0,  300,   _control_height, 1200)),
    ('caffevis_layers',  ( _control_height,  300,  900 - _control_height, 1200)),
)
caffevis_layers_aspect_ratio = float(window_panes[-1][1][3])/window_panes[-1][1][2]
caffevis_control_fsize = .85

# Use GPU? Default is True.
#caffevis_mode_gpu = True
#global_scale = 1.0
'''


@pytest.fixture
def checkout(tmp_path):
    """An original toolbox checkout: run_toolbox.py at the root, the model under models/."""
    (tmp_path / "run_toolbox.py").write_text("# the original's entry point\n")
    model_dir = tmp_path / "models" / "tiny"
    model_dir.mkdir(parents=True)
    deploy = model_dir / "tiny-deploy.prototxt"
    deploy.write_text(TINY_DEPLOY)
    net = read_prototxt(deploy)
    blobs = random_weights(net, 0)
    write_caffemodel(model_dir / "tiny.caffemodel",
                     [(layer.name, layer.type, blobs[layer.name])
                      for layer in net.layers if layer.name in blobs],
                     fmt="v1", legacy_dims=True)
    (model_dir / "labels.txt").write_text("zero\none\ntwo\nthree\nfour\n")
    template = model_dir / "settings_local.template-tiny.py"
    template.write_text(SETTINGS_LOCAL)
    (tmp_path / "settings_local.py").write_text(SETTINGS_LOCAL)
    return tmp_path


def test_template_constructs_become_data(checkout):
    for path in (checkout / "settings_local.py",
                 checkout / "models" / "tiny" / "settings_local.template-tiny.py"):
        values = read_settings_file(path)     # %DVT_ROOT% is the checkout, wherever the file is
        assert values["caffevis_deploy_prototxt"] == \
            str(checkout / "models" / "tiny" / "tiny-deploy.prototxt")
        assert values["caffevis_labels"] == str(checkout / "models" / "tiny" / "labels.txt")
        assert values["caffevis_layer_pretty_names"] == \
            [["conv", "c"], ["pool", "p"], ["c1", "C1"], ["__", "_"]]
        assert values["caffevis_filter_layers"] == ["_split_", "fc8"]
        assert values["window_panes"][4] == ("caffevis_control", (0, 300, 125, 1200))
        assert values["window_panes"][5] == ("caffevis_layers", (125, 300, 775, 1200))
        assert values["caffevis_layers_aspect_ratio"] == pytest.approx(1200 / 775)
        assert "_control_height" not in values and "caffevis_mode_gpu" not in values


def test_settings_local_runs_the_toolbox(checkout, tmp_path, capsys):
    model = load_model(str(checkout / "settings_local.py"))
    assert "caffevis_caffe_root is ignored" in capsys.readouterr().err
    assert model.blob_names == ["data", "conv1", "pool1", "fc8", "prob"]
    np.testing.assert_allclose(model.preprocessing.mean.ravel(), [104, 117, 123])
    image = tmp_path / "in.png"
    import cv2
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (20, 30, 3), np.uint8))
    session = Session(model, static_files_for(model.settings, image))
    assert session.drawer.pretty_names == ["C1", "p1", "prob"]      # fc8 filtered out
    assert session.drawer.shape == (930, 1500)
    assert session.drawer.panes["caffevis_layers"].shape == (775, 1200)
    assert [(i.name, i.rows, i.cols) for i in session.state.layers] == \
        [("conv1", 2, 3), ("pool1", 2, 3), ("prob", 2, 3)]
    frame = session.drawer.draw(replay(session, []))
    aux = session.drawer.panes["caffevis_aux"].view(frame)
    lines = np.nonzero(np.diff(np.concatenate([[0], (aux != 51).any(axis=(1, 2)), [0]])) == 1)[0]
    assert len(lines) == 5                                           # five labels
    # a second load reuses the imported model
    again = load_model(str(checkout / "settings_local.py"))
    assert again.path == model.path and model.path.parent == cache_dir() / "onnx"


def test_gpu_setting_is_accepted(checkout):
    path = checkout / "settings_local.py"
    path.write_text(SETTINGS_LOCAL.replace("#caffevis_mode_gpu = True", "caffevis_mode_gpu = True"))
    assert load_settings(path).caffevis_mode_gpu is True
    assert load_model(str(path)).forward(np.zeros((1, 3, 16, 16), np.float32))["prob"].shape \
        == (1, 5)


def test_missing_required_setting_names_file_and_key(checkout):
    path = checkout / "settings_local.py"
    path.write_text(SETTINGS_LOCAL.replace("caffevis_network_weights", "# weights"))
    with pytest.raises(DeepvisError, match=r"settings_local.py: caffevis_network_weights is "
                                           r"required"):
        load_settings(path)


def test_unknown_key_names_the_closest(checkout):
    path = checkout / "settings_local.py"
    path.write_text(SETTINGS_LOCAL + "caffevis_jpgvis_layer = []\n")
    with pytest.raises(DeepvisError, match="did you mean 'caffevis_jpgvis_layers'"):
        load_settings(path)


@pytest.mark.parametrize("source, message", [
    ("x = open('f')\n", "the value of x is not a literal"),
    ("x = 'a' * 3\n", "only read on numbers"),
    ("x = y + 1\n", "'y' is not set earlier"),
    ("def caffevis_layer_pretty_name_fn(name):\n    return name.upper()\n", "not one deepvis"),
    ("def caffevis_layer_pretty_name_fn(name):\n    n = 1\n    return name\n",
     "only `name = name.replace"),
    ("def other(name):\n    return name\n", "only plain `name = value`"),
    ("for i in []:\n    pass\n", "only plain `name = value`"),
])
def test_python_that_is_not_data_is_refused_with_its_line(tmp_path, source, message):
    path = tmp_path / "settings_local.py"
    path.write_text(source)
    with pytest.raises(FormatError, match=message):
        read_settings_file(path)


def test_dvt_root_outside_a_checkout_is_deepvis_root(tmp_path):
    path = tmp_path / "settings_local.py"
    path.write_text("caffevis_labels = '%DVT_ROOT%/models/x/labels.txt'\n")
    assert read_settings_file(path)["caffevis_labels"] == \
        str(models_dir() / "x" / "labels.txt")


def test_yaml_paths_and_cache_token(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("deepvis_model: nets/m.onnx\n"
                    "caffevis_unit_jpg_dir: '%DEEPVIS_CACHE%/models/m/unit_jpg_vis'\n")
    values = read_settings_file(path)
    assert values["deepvis_model"] == str(tmp_path / "nets" / "m.onnx")
    assert values["caffevis_unit_jpg_dir"] == str(cache_dir() / "models" / "m" / "unit_jpg_vis")


def test_bundled_caffenet_yos_template_has_the_originals_values():
    s = load_settings(model="caffenet-yos")
    assert s.deepvis_model == "caffenet-yos"
    assert s.caffevis_jpgvis_layers == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7",
                                        "fc8", "prob"]
    assert s.caffevis_jpgvis_remap == {"pool1": "conv1", "pool2": "conv2", "pool5": "conv5"}
    assert (s.caffevis_label_layers, s.caffevis_prob_layer) == (["fc8", "prob"], "prob")
    assert s.caffevis_unit_jpg_dir == str(cache_dir() / "models" / "caffenet-yos" /
                                          "unit_jpg_vis")
    assert s.caffevis_layer_pretty_names == [["pool", "p"], ["norm", "n"]]
