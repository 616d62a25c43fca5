"""Config loading: defaults, files with some keys, overrides, the YAML 1.1 traps, round trip."""

import dataclasses
from pathlib import Path

import pytest

from frnn_cli.config import Config, coerce, dump_yaml, load_config, load_yaml
from frnn_cli.errors import BadInput

REPO = Path(__file__).resolve().parents[1]


def _write(tmp_path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_without_a_file_the_defaults_apply():
    assert load_config(None) == Config()


def test_default_yaml_is_the_reference_setting():
    cfg = load_config(REPO / "configs" / "default.yaml")
    assert (cfg.hidden, cfg.init, cfg.init_scale, cfg.optimizer, cfg.clip) == (32, "uniform", 0.01, "sgd", None)
    assert cfg.T == 2
    # The file sets every key to its built-in default: one source of truth for the reference.
    assert cfg == Config(), [f.name for f in dataclasses.fields(Config) if getattr(cfg, f.name) != getattr(Config(), f.name)]


def test_a_file_may_set_some_keys_and_overrides_win(tmp_path):
    path = _write(tmp_path, "T: 7\nlr: 0.5\n")
    cfg = load_config(path, ["lr=0.25", "hidden=8"])
    assert (cfg.T, cfg.lr, cfg.hidden) == (7, 0.25, 8)
    assert cfg.steps == Config().steps and cfg.optimizer == "sgd"


@pytest.mark.parametrize("text, expected", [("1e-3", 0.001), ("1E-3", 0.001), ("3", 3.0), (".5", 0.5), ("2.5e+1", 25.0)])
def test_scientific_notation_is_a_float_in_a_file_and_on_the_command_line(tmp_path, text, expected):
    from_file = load_config(_write(tmp_path, f"lr: {text}\n")).lr
    from_cli = load_config(None, [f"lr={text}"]).lr
    for value in (from_file, from_cli):
        assert type(value) is float and value == expected, (text, value)


def test_duplicate_key_names_the_key_and_both_lines(tmp_path):
    path = _write(tmp_path, "T: 2\nlr: 0.1\nT: 3\n")
    with pytest.raises(BadInput) as exc:
        load_config(path)
    msg = str(exc.value)
    assert "duplicate key 'T'" in msg and "line 3" in msg and "line 1" in msg, msg


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "Yes", "ON"])
def test_yes_no_on_off_are_not_booleans_for_number_keys(tmp_path, word):
    with pytest.raises(BadInput, match=r"T: expected an integer"):
        load_config(_write(tmp_path, f"T: {word}\n"))
    with pytest.raises(BadInput, match=r"lr: expected a number"):
        load_config(None, [f"lr={word}"])


def test_yes_is_not_a_valid_optimizer_either(tmp_path):
    with pytest.raises(BadInput, match=r"optimizer: expected one of sgd, momentum, adam, guess, got 'yes'"):
        load_config(_write(tmp_path, "optimizer: yes\n"))


def test_sexagesimal_1_20_is_not_80(tmp_path):
    # YAML 1.1 reads 1:20 as 1 * 60 + 20 = 80.
    assert load_yaml(_write(tmp_path, "T: 1:20\n")) == {"T": "1:20"}
    with pytest.raises(BadInput, match=r"T: '1:20' is not a range frnn reads; write the inclusive range as T=1\.\.20"):
        load_config(_write(tmp_path, "T: 1:20\n"))
    with pytest.raises(BadInput, match=r"T: '1:20' is not a range frnn reads"):
        load_config(None, ["T=1:20"])


@pytest.mark.parametrize("override", ["lr=0.1,0.3", "T=1..20"])
def test_a_list_or_range_override_points_to_sweep(override):
    with pytest.raises(BadInput, match=r"frnn sweep"):
        load_config(None, [override])


def test_a_yaml_list_in_the_file_points_to_sweep(tmp_path):
    with pytest.raises(BadInput, match=r"lr: got a list \[0\.1, 0\.3\].*frnn sweep"):
        load_config(_write(tmp_path, "lr: [0.1, 0.3]\n"))


def test_unknown_key_suggests_the_closest(tmp_path):
    with pytest.raises(BadInput, match=r"unknown key 'hiden' \(did you mean 'hidden'\?\)"):
        load_config(None, ["hiden=5"])
    with pytest.raises(BadInput, match=r"unknown key 'learning_rat'"):
        load_config(_write(tmp_path, "learning_rat: 0.1\n"))


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("T=0", "T: expected a value >= 1"),
        ("T=2.0", "T: expected an integer"),  # an integral float is still not an integer
        ("lr=0", "lr: expected a value > 0"),
        ("lr=.nan", "lr: expected a finite number"),
        ("lr=.inf", "lr: expected a finite number"),
        ("lr=nan", "lr: expected a number"),
        ("alpha=1", "alpha: expected a value < 1"),
        ("adam_beta2=1", "adam_beta2: expected a value < 1"),
        ("init=he", "init: expected one of uniform, glorot, orthogonal"),
        ("clip=-1", "clip: expected a value > 0"),
        ("steps=", "steps: expected an integer, got an empty value"),
        ("T", "expected key=value"),
    ],
)
def test_bad_values_are_rejected_with_the_key_named(override, fragment):
    with pytest.raises(BadInput) as exc:
        load_config(None, [override])
    assert fragment in str(exc.value), str(exc.value)


def test_optional_keys_accept_null_and_off():
    assert coerce(Config, "clip", "null") is None
    assert coerce(Config, "clip", "off") is None
    assert coerce(Config, "stop_loss", None) is None
    assert coerce(Config, "clip", "1") == 1.0 and type(coerce(Config, "clip", "1")) is float


def test_dump_yaml_round_trip_keeps_values_and_types(tmp_path):
    cfg = Config(T=13, lr=1e-5, clip=0.5, stop_loss=None, adam_eps=1e-12, optimizer="adam", init_scale=0.1, seed=2**31)
    path = tmp_path / "config.yaml"
    path.write_text(dump_yaml(cfg))
    back = load_config(path)
    assert back == cfg
    for f in dataclasses.fields(Config):
        assert type(getattr(back, f.name)) is type(getattr(cfg, f.name)), f.name
    # What PyYAML's YAML 1.1 loader reads from the same text is equal too (no 1e-5-as-string trap).
    import yaml

    assert yaml.safe_load(path.read_text()) == dataclasses.asdict(cfg)


def test_a_non_scalar_key_is_one_clear_error(tmp_path):
    from frnn_cli.config import load_config
    from frnn_cli.errors import BadInput

    f = tmp_path / "c.yaml"
    f.write_text("[1, 2]: 3\n")
    with pytest.raises(BadInput, match="key at line 1 is a list"):
        load_config(f)


@pytest.mark.parametrize("words, note", [
    (["forget_bias=3"], "note: forget_bias is ignored: it acts only with model=lstm, and model=rnn here"),
    (["momentum=0.5"], "note: momentum is ignored: it acts only with optimizer=momentum, and optimizer=sgd here"),
    (["optimizer=guess", "lr=3"], "note: lr is ignored: optimizer=guess does not use it"),
    (["init=glorot", "init_scale=0.3"], "note: init_scale is ignored: it acts only with init=uniform, and init=glorot here"),
])
def test_a_key_the_run_does_not_use_gets_a_note(cli, tmp_path, words, note):
    r = cli("train", "T=1", "steps=5", "n_val=8", "n_test=8", "--no-plots", *words, "--runs-dir", str(tmp_path))
    assert r.exit_code == 0 and note in r.stderr.splitlines(), r.stderr
    # The same key where it acts: no note.
    r = cli("train", "T=1", "steps=5", "n_val=8", "n_test=8", "--no-plots", "model=lstm", "forget_bias=3",
            "--runs-dir", str(tmp_path))
    assert r.exit_code == 0 and "note:" not in r.stderr, r.stderr
