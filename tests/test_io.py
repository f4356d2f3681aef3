"""Saving and loading (io.py): weights and nested checkpoints (state dicts of a model, an optimizer and a scheduler,
numbers, tuples) round trip bit-identically as a plain npz without pickle, and training resumed from a checkpoint
equals training straight; bad files give errors that name the file and the real problem, and never run code.
"""

import io
import math
import pathlib
import threading
import zipfile

import numpy as np
import pytest

from tests.helpers import random_images
from tinygrad_cnn import Tensor, nn, optim
from tinygrad_cnn.functional import cross_entropy
from tinygrad_cnn.io import load, save
from tinygrad_cnn.optim import lr_scheduler


def _net(seed=0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(conv1=nn.Conv2d(1, 3, 3, pad=1, seed=rng), relu=nn.ReLU(), flat=nn.Flatten(),
                         fc=nn.Linear(48, 4, seed=rng))


def test_module_round_trip_is_bit_identical(tmp_path):
    a, b = _net(0), _net(1)
    path = tmp_path / "w.npz"
    save(a, path)
    state = load(path)
    assert list(state) == ["conv1.W", "conv1.b", "fc.W", "fc.b"]
    for key, value in a.state_dict().items():
        assert state[key].dtype == value.dtype and state[key].tobytes() == value.tobytes()
    b.load_state_dict(state)
    x = Tensor(np.random.default_rng(2).random((2, 4, 4, 1)))
    assert a(x).data.tobytes() == b(x).data.tobytes()


def test_state_dict_round_trip_keeps_dtype_shape_order_and_special_values(tmp_path):
    state = {
        "z.last": np.array([np.nan, -np.inf, np.inf, -0.0, 1e-45], np.float32),
        "a.first": np.random.default_rng(0).standard_normal((2, 3, 4)),
        "count": np.array(7, np.int64),
        "mask": np.array([True, False]),
        "t": Tensor(np.arange(3, dtype=np.float32)),
    }
    path = tmp_path / "weights.bin"  # the name is used as given
    save(state, path)
    assert [p.name for p in tmp_path.iterdir()] == ["weights.bin"]
    back = load(str(path))
    assert list(back) == list(state)
    for key, value in state.items():
        value = np.asarray(value.data if isinstance(value, Tensor) else value)
        assert back[key].dtype == value.dtype and back[key].shape == value.shape
        assert back[key].tobytes() == value.tobytes()
    assert np.load(path)["a.first"].shape == (2, 3, 4)  # plain numpy reads it too


def test_buffers_round_trip_through_save_and_load(tmp_path):
    model = nn.Sequential(nn.Conv2d(2, 3, 3, seed=0), nn.BatchNorm2d(3))
    for step in range(3):
        model(random_images((2, 5, 5, 2), seed=step, dtype=np.float32))
    save(model, tmp_path / "w.npz")
    fresh = nn.Sequential(nn.Conv2d(2, 3, 3, seed=1), nn.BatchNorm2d(3))
    held = fresh[1].running_mean  # an op holding the buffer sees the loaded values: loaded in place
    fresh.load_state_dict(load(tmp_path / "w.npz"))
    for (name, a), (_, b) in zip(model.state_dict().items(), fresh.state_dict().items(), strict=True):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert fresh[1].running_mean is held and int(fresh[1].num_batches_tracked) == 3
    fresh.eval(), model.eval()
    x = random_images((1, 5, 5, 2), seed=7, dtype=np.float32)
    np.testing.assert_array_equal(fresh(x).data, model(x).data)


def test_save_overwrites_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "w.npz"
    save({"x": np.zeros(2)}, path)
    save({"y": np.ones(3)}, path)
    assert list(load(path)) == ["y"] and [p.name for p in tmp_path.iterdir()] == ["w.npz"]


def test_threads_saving_to_one_path_do_not_collide(tmp_path):
    # the temporary file was named by the process id only: two threads wrote, renamed and removed the same one
    path, errors = tmp_path / "w.npz", []
    state = {"W": np.random.default_rng(0).standard_normal((200, 200))}

    def save_often():
        try:
            for _ in range(15):
                save(state, path)
        except OSError as e:
            errors.append(e)
    threads = [threading.Thread(target=save_often) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and [p.name for p in tmp_path.iterdir()] == ["w.npz"]
    np.testing.assert_array_equal(load(path)["W"], state["W"])


# ----------------------------------------------------------------------------- checkpoints
def _model(seed):
    return nn.Sequential(nn.Conv2d(1, 3, 3, pad=1, seed=seed), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(3 * 3 * 3, 4, seed=seed + 1))


DATA = [(np.random.default_rng(s).standard_normal((8, 6, 6, 1)).astype(np.float32), np.arange(8) % 4)
        for s in range(5)]


def _train(model, opt, sched, steps):
    for x, y in steps:
        loss = cross_entropy(model(Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


SETUPS = {
    "SGD momentum, StepLR": (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3),
                             lambda o: lr_scheduler.StepLR(o, step_size=2, gamma=0.5)),
    "SGD nesterov, MultiStepLR": (lambda p: optim.SGD(p, 0.05, 0.8, 0.0, 0.0, True),
                                  lambda o: lr_scheduler.MultiStepLR(o, [1, 3, 3], gamma=0.3)),
    "Adam, CosineAnnealingLR": (lambda p: optim.Adam(p, lr=0.01, betas=(0.8, 0.99), weight_decay=1e-4),
                                lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=3, eta_min=1e-4)),
    "Adam, ExponentialLR": (lambda p: optim.Adam(p, lr=0.01), lambda o: lr_scheduler.ExponentialLR(o, 0.9)),
}


@pytest.mark.parametrize("setup", sorted(SETUPS))
def test_resuming_from_a_checkpoint_equals_training_straight_bit_for_bit(setup, tmp_path):
    make_opt, make_sched = SETUPS[setup]
    straight = _model(0)
    opt = make_opt(straight.parameters())
    sched = make_sched(opt)
    _train(straight, opt, sched, DATA)

    first = _model(0)
    opt1 = make_opt(first.parameters())
    sched1 = make_sched(opt1)
    _train(first, opt1, sched1, DATA[:3])
    save({"model": first.state_dict(), "opt": opt1.state_dict(), "sched": sched1.state_dict(), "epoch": 3},
         tmp_path / "ckpt.npz")

    resumed = _model(7)  # other initial weights: everything must come from the file
    opt2 = make_opt(resumed.parameters())
    sched2 = make_sched(opt2)
    ckpt = load(tmp_path / "ckpt.npz")
    resumed.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["opt"])
    sched2.load_state_dict(ckpt["sched"])
    assert ckpt["epoch"] == 3 and opt2.lr == opt1.lr
    _train(resumed, opt2, sched2, DATA[3:])

    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert opt2.lr == opt.lr and sched2.get_last_lr() == sched.get_last_lr() and sched2.last_epoch == 5
    for mine, theirs in zip(opt2.state, opt.state, strict=True):
        assert mine.keys() == theirs.keys()
        assert all(np.array_equal(mine[k], theirs[k]) for k in mine)


def test_nested_state_numbers_and_tuples_come_back_as_saved(tmp_path):
    model = _model(0)
    opt = optim.Adam(model.parameters(), lr=0.01)
    _train(model, opt, lr_scheduler.StepLR(opt, 1), DATA[:1])
    saved = {"model": model.state_dict(), "opt": opt.state_dict(), "epoch": 3, "betas": (0.9, (0.999, 1)),
             "lrs": [0.1, 1e-300, -0.0], "none": None, "run": "first try", "flags": {1: True, "1": False},
             "special": [math.inf, -math.inf], "count": np.int64(7), "half": np.float32(0.5), "empty": {},
             "third": 1 / 3}
    save(saved, tmp_path / "ckpt.npz")
    back = load(tmp_path / "ckpt.npz")
    assert back.keys() == saved.keys()
    assert back["epoch"] == 3 and type(back["epoch"]) is int
    assert back["betas"] == (0.9, (0.999, 1)) and type(back["betas"][1]) is tuple
    assert back["lrs"] == [0.1, 1e-300, -0.0] and math.copysign(1, back["lrs"][2]) == -1
    assert back["none"] is None and back["run"] == "first try" and back["flags"] == {1: True, "1": False}
    assert back["special"] == [math.inf, -math.inf] and back["third"] == 1 / 3 and back["empty"] == {}
    assert back["count"] == 7 and back["count"].dtype == np.int64 and back["half"].dtype == np.float32
    assert list(back["model"]) == list(saved["model"])
    assert all(np.array_equal(back["model"][k], v) and back["model"][k].dtype == v.dtype
               for k, v in saved["model"].items())
    assert back["opt"]["param_groups"] == saved["opt"]["param_groups"]
    assert sorted(back["opt"]["state"]) == sorted(saved["opt"]["state"]) == [0, 1, 2, 3, 4, 5]
    assert back["opt"]["state"][0]["step"] == 1
    assert np.array_equal(back["opt"]["state"][0]["exp_avg"], saved["opt"]["state"][0]["exp_avg"])


def test_a_checkpoint_is_still_a_plain_npz_without_pickle(tmp_path):
    model = _model(0)
    save({"model": model, "opt": optim.SGD(model.parameters(), lr=0.1), "epoch": 1}, tmp_path / "ckpt.npz")
    with zipfile.ZipFile(tmp_path / "ckpt.npz") as zf:
        assert all(name.endswith(".npy") for name in zf.namelist())
    with np.load(tmp_path / "ckpt.npz", allow_pickle=False) as npz:  # numpy reads it as it is
        assert "model/0.W" in npz.files and "__tree__" in npz.files
        assert npz["__tree__"].dtype.kind == "U" and '"epoch"' in str(npz["__tree__"])
        assert npz["model/0.W"].shape == (3, 3, 1, 3)
    assert set(load(tmp_path / "ckpt.npz")) == {"model", "opt", "epoch"}


def test_flat_files_keep_their_layout(tmp_path):
    model = _model(0)
    save(model, tmp_path / "w.npz")
    with zipfile.ZipFile(tmp_path / "w.npz") as zf:
        assert zf.namelist() == [f"{k}.npy" for k in model.state_dict()]
    assert list(load(tmp_path / "w.npz")) == list(model.state_dict())


# ----------------------------------------------------------------------------- save errors
@pytest.mark.parametrize("obj, words", [
    ([np.zeros(2)], "save: expected a Module, an optimizer or a dict .*, got list"),
    ({1.5: np.zeros(2)}, "save: at the top, keys must be strings or ints, got 1.5"),
    ({"": np.zeros(2)}, "save: keys must be non-empty strings other than '__tree__', got ''"),
    ({"__tree__": np.zeros(2)}, "save: keys must be non-empty strings other than '__tree__', got '__tree__'"),
    ({"opt": {"lr": 0.1, "f": print}}, "save: /opt/f holds a builtin_function_or_method; a checkpoint holds arrays"),
    ({"w": np.array([{}, 1], dtype=object)}, "save: key 'w' holds dtype object; only numeric arrays"),
    ({"w": np.array(["a"])}, "save: key 'w' holds dtype <U1"),
])
def test_save_refuses_what_it_cannot_store(tmp_path, obj, words):
    path = tmp_path / "w.npz"
    save({"keep": np.ones(1)}, path)
    with pytest.raises(TypeError, match=words):
        save(obj, path)
    assert list(load(path)) == ["keep"]  # the old file is untouched


def test_save_into_a_missing_directory_names_the_users_path(tmp_path):
    path = tmp_path / "no" / "such" / "dir" / "w.npz"
    with pytest.raises(FileNotFoundError) as info:
        save(_net(), path)
    assert str(info.value) == f"save: cannot write '{path}': no directory '{path.parent}'"
    assert ".tmp" not in str(info.value)


def test_save_onto_a_directory_says_so(tmp_path):
    with pytest.raises(IsADirectoryError, match=f"save: '{tmp_path}' is a directory; give a file path"):
        save(_net(), tmp_path)
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_other_os_errors_of_save_name_the_users_path(tmp_path):
    path = tmp_path / ("w" * 300 + ".npz")  # longer than a file name may be
    with pytest.raises(OSError, match=rf"save: cannot write '{tmp_path}/w+\.npz' \(File name too long\)"):
        save({"w": np.zeros(2)}, path)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- load errors
def test_missing_file(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match=f"load: no weights file at '{path}'"):
        load(path)


def test_garbage_file(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"this is not a weights file\n" * 10)
    with pytest.raises(ValueError, match=f"load: '{path}' is not a .npz weights file"):
        load(path)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.99])
def test_truncated_file(tmp_path, keep):
    path = tmp_path / "w.npz"
    save(_net(), path)
    raw = path.read_bytes()
    path.write_bytes(raw[:int(len(raw) * keep)])
    with pytest.raises(ValueError, match=f"load: '{path}'.* corrupt or truncated"):
        load(path)


def test_flipped_byte_in_the_data_fails_the_checksum(tmp_path):
    path = tmp_path / "w.npz"
    save({"w": np.zeros(100)}, path)
    raw = bytearray(path.read_bytes())
    at = raw.index(bytes(8) * 50) + 200  # inside the array's zeros
    raw[at] = 1
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=f"load: '{path}' is corrupt: member 'w.npy' fails its checksum"):
        load(path)


class _Touch:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def test_object_array_is_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.npz"
    np.savez(path, ok=np.ones(2), payload=np.array([_Touch(marker)], dtype=object))
    with pytest.raises(ValueError, match=f"load: '{path}', key 'payload' holds an object array"):
        load(path)
    assert not marker.exists()


def test_lone_npy_and_non_numeric_arrays_are_refused(tmp_path):
    npy = tmp_path / "one.npy"
    np.save(npy, np.ones(3))
    with pytest.raises(ValueError, match=f"load: '{npy}' holds a single array"):
        load(npy)
    text = tmp_path / "text.npz"
    np.savez(text, names=np.array(["conv1", "fc"]))
    with pytest.raises(ValueError, match=f"load: '{text}', key 'names' holds dtype <U5, not numbers"):
        load(text)


def test_member_with_a_broken_npy_header_names_path_and_key(tmp_path):
    import zipfile
    path = tmp_path / "bad_header.npz"
    with zipfile.ZipFile(path, "w") as zf:  # a valid zip whose member is not an .npy array
        zf.writestr("W.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': 'nonsense'}\n")
    with pytest.raises(ValueError, match=r"bad_header.npz'?, key 'W' is corrupt"):
        load(path)


def test_crafted_npy_headers_only_ever_give_the_clear_error(tmp_path):
    import io
    import random
    import warnings
    import zipfile
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.arange(12.0).reshape(3, 4), allow_pickle=False)
    header_end = buf.getvalue().index(b"\n") + 1
    rng = random.Random(1)
    path = tmp_path / "crafted.npz"
    for _ in range(300):
        member = bytearray(buf.getvalue())
        for _ in range(rng.randint(1, 3)):  # punctuation and letters inside the header dict
            member[rng.randrange(8, header_end)] = rng.choice(b"{}[]()'\",:0123456789 \nabcdeFTx<>")
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("W.npy", bytes(member))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                loaded = load(path)
            except ValueError as e:
                assert "crafted.npz" in str(e)
            else:
                assert set(loaded) == {"W"}


def test_load_of_a_directory_says_so(tmp_path):
    with pytest.raises(IsADirectoryError, match=f"load: '{tmp_path}' is a directory, not a weights file"):
        load(tmp_path)


@pytest.mark.parametrize("content", [b"this is not a weights file\n" * 10,
                                     __import__("pickle").dumps({"W": [1.0, 2.0]})], ids=["text", "pickle"])
def test_non_weights_file_gives_no_advice_to_unpickle(tmp_path, content):
    path = tmp_path / "junk.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError) as info:
        load(path)
    assert str(info.value) == (f"load: '{path}' is not a .npz weights file (it starts with neither the zip "
                               "nor the .npy signature)")


def _zip(path, members: dict):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _npy(arr, allow_pickle=False) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def test_a_member_that_is_not_npy_is_named(tmp_path):
    path = _zip(tmp_path / "notes.npz", {"w.npy": _npy(np.ones(2)), "notes.txt": b"hello"})
    with pytest.raises(ValueError, match=rf"load: '{path}', member 'notes.txt' is not an .npy array \(its name does "
                                         r"not end in .npy\)"):
        load(path)
    path = _zip(tmp_path / "fake.npz", {"w.npy": b"PK just text"})
    with pytest.raises(ValueError, match=r"member 'w.npy' is not an .npy array \(it does not start with the .npy "
                                         r"signature\)"):
        load(path)


def test_an_object_array_is_named_as_such_never_as_corrupt(tmp_path):
    obj = np.array([{"a": 1}, None], dtype=object)
    path = _zip(tmp_path / "obj.npz", {"w.npy": _npy(obj, allow_pickle=True)})
    with pytest.raises(ValueError, match=rf"load: '{path}', key 'w' holds an object array; it would need pickle"):
        load(path)
    lone = tmp_path / "obj.npy"
    np.save(lone, obj, allow_pickle=True)
    with pytest.raises(ValueError, match=rf"load: '{lone}' holds a single array \(an .npy file\)"):
        load(lone)


def test_a_header_too_large_is_named(tmp_path):
    wide = np.zeros(1, dtype=[(f"f{i}", "f8") for i in range(2000)])
    path = _zip(tmp_path / "wide.npz", {"w.npy": _npy(wide)})
    with pytest.raises(ValueError, match=rf"load: '{path}', key 'w': its .npy header is [\d,]+ bytes, more than "
                                         r"numpy reads safely without pickle \(10,000\)"):
        load(path)


# ----------------------------------------------------------------------------- the size limit
def _zip_bomb(path, members):
    """A deflated zip whose members are runs of zeros: a few KB on disk, ``members`` bytes inflated."""
    import zipfile
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, size in members.items():
            zf.writestr(name, bytes(size))


def test_load_refuses_a_member_larger_than_max_bytes(tmp_path):
    path = tmp_path / "bomb.npz"
    _zip_bomb(path, {"W.npy": 10_000_000})
    assert path.stat().st_size < 20_000
    with pytest.raises(ValueError, match=f"load: '{path}', member 'W.npy' declares 10,000,000 bytes "
                                         r"uncompressed, more than max_bytes=1,000,000 \(raise max_bytes"):
        load(path, max_bytes=1_000_000)


def test_load_refuses_members_whose_total_is_larger_than_max_bytes(tmp_path):
    path = tmp_path / "bomb.npz"
    _zip_bomb(path, {"a.npy": 600_000, "b.npy": 600_000})
    with pytest.raises(ValueError, match=f"load: '{path}', members up to 'b.npy' declare 1,200,000 bytes "
                                         r"uncompressed in total, more than max_bytes=1,000,000"):
        load(path, max_bytes=1_000_000)


def test_sizes_are_checked_before_any_byte_is_inflated(tmp_path):
    """The member's bytes are damaged: a size check that came after reading would report the checksum."""
    path = tmp_path / "w.npz"
    save({"w": np.zeros(1000)}, path)
    raw = bytearray(path.read_bytes())
    raw[raw.index(bytes(800)) + 100] = 1
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="member 'w.npy' declares 8,128 bytes"):
        load(path, max_bytes=8000)
    with pytest.raises(ValueError, match="fails its checksum"):
        load(path, max_bytes=8128)  # exactly at the limit passes the size check


def test_max_bytes_default_and_checks(tmp_path):
    import inspect
    assert inspect.signature(load).parameters["max_bytes"].default == 2 * 1024 ** 3
    path = tmp_path / "w.npz"
    save({"w": np.zeros(2)}, path)
    for bad in (0, -1, 1.5, True, "1"):
        with pytest.raises(TypeError, match=f"load: max_bytes must be a positive int, got {bad!r}"):
            load(path, max_bytes=bad)


def test_a_member_that_understates_its_size_is_not_inflated(tmp_path):
    """The zip says 1,000 bytes, the deflated stream holds 100 MB: reading stops at the declared size."""
    import struct
    import tracemalloc
    path = tmp_path / "liar.npz"
    _zip_bomb(path, {"W.npy": 100_000_000})
    raw = bytearray(path.read_bytes())
    raw[22:26] = struct.pack("<I", 1000)  # uncompressed size in the local header ...
    central = raw.index(b"PK\x01\x02")
    raw[central + 24:central + 28] = struct.pack("<I", 1000)  # ... and in the central directory
    path.write_bytes(bytes(raw))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="member 'W.npy' fails its checksum"):
            load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000
