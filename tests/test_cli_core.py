"""`frnn --version`, `frnn generate`, `frnn gradcheck` through typer's CliRunner."""

import inspect
import subprocess
import sys

import numpy as np
import pytest

from frnn_cli import __version__
from helpers import expect_exit, msg as _msg




def test_version(cli):
    r = cli("--version")
    assert r.exit_code == 0, _msg(r)
    assert r.stdout.strip() == f"frnn {__version__}"


@pytest.mark.parametrize("args", [["--version"], ["--help"]])
def test_version_and_help_import_no_heavy_library(args):
    # `frnn --help` must answer at once: the command modules, and NumPy, SciPy and
    # matplotlib behind them, load only when a command runs (frnn_cli.cli.root.FrnnGroup).
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('LOADED', sorted(m for m in ('numpy', 'scipy', 'matplotlib', "
        "'frnn_cli.cli.cmd_train') if m in sys.modules)))\n"
        f"sys.argv = ['frnn', *{args!r}]\n"
        "from frnn_cli.cli import main\n"
        "main()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "LOADED []" in r.stdout, r.stdout[-500:]


def test_root_help_lists_each_command_with_its_own_short_help(cli):
    from frnn_cli.cli.root import LAZY_COMMANDS, load_command

    r = cli("--help")
    assert r.exit_code == 0 and r.exception is None, _msg(r)
    for name, (_, _, short_help, _) in LAZY_COMMANDS.items():
        own = inspect.cleandoc(load_command(name).help).split("\n\n")[0].replace("\n", " ")
        assert short_help == own, f"{name}: root help says {short_help!r}, the command's docstring {own!r}"
        assert name in r.stdout, _msg(r)


def test_typo_in_command_name_suggests_the_command(cli):
    r = cli("trian")
    assert r.exit_code == 2, _msg(r)
    assert "Did you mean 'train'" in r.stderr, _msg(r)


@pytest.mark.parametrize("cmd", ["generate", "gradcheck"])
def test_help_has_an_example(cli, cmd):
    r = cli(cmd, "--help")
    assert r.exit_code == 0, _msg(r)
    assert f"Example: frnn {cmd}" in r.stdout


def test_gradcheck_passes_with_eps_1e7(cli):
    r = cli("gradcheck", "--eps", "1e-7")
    assert r.exit_code == 0, _msg(r)
    for name in ("W", "R", "V"):
        assert f"│ {name} " in r.stdout, _msg(r)
    assert "FAIL" not in r.stdout


def test_gradcheck_runs_in_float64_unless_asked_and_says_why(cli):
    r = cli("gradcheck")
    assert r.exit_code == 0 and "(rnn, float64," in r.stdout and "runs in float64" in r.stdout, _msg(r)
    # Asked for float32 (T = 20, weights +-0.5: gradients of order 0.1), the float32 network passes,
    # checked on a float64 copy, and its float32 rounding is shown: above thresh, below float32's 1e-4.
    r = cli("gradcheck", "dtype=float32", "T=20", "hidden=16")
    assert r.exit_code == 0 and "(rnn, float32," in r.stdout and "all parameters pass" in r.stdout, _msg(r)
    rounding = float(r.stdout.split("gradients: up to ")[1].split()[0])
    assert 1e-7 < rounding < 1e-4, rounding


def test_gradcheck_per_step_long_T(cli):
    r = cli("gradcheck", "T=20", "per_step=true", "hidden=4")
    assert r.exit_code == 0, _msg(r)
    assert "a target at every step" in r.stdout


def test_gradcheck_fails_with_exit_1_when_threshold_unreachable(cli):
    # eps = 0.5 makes the truncation error O(eps^2) far larger than thresh = 1e-12.
    r = cli("gradcheck", "--eps", "0.5", "--thresh", "1e-12")
    assert r.exit_code == 1, _msg(r)
    assert "gradient check failed for" in r.stderr and "numerical" in r.stderr


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("generate", "T=0"), "T: expected a value >= 1"),
        (("generate", "n=-3"), "n: expected a value >= 1"),
        (("generate", "T=abc"), "T: expected an integer"),
        (("gradcheck", "hiden=5"), "did you mean 'hidden'"),
        (("gradcheck", "--eps", "0"), "--eps"),
        (("gradcheck", "--eps", "-1e-7"), "--eps"),
        (("generate", "--seed", "0xZZ"), "--seed"),
        (("generate", "--out", "data.txt"), ".npz or .csv"),
        (("generate", "T"), "expected key=value"),
    ],
)
def test_bad_input_is_one_line_exit_2(cli, args, fragment):
    r = cli(*args)
    assert r.exit_code == 2, _msg(r)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), _msg(r)
    assert fragment in lines[0], _msg(r)
    expect_exit(r, 2)


def test_generate_preview_and_statistics(cli):
    r = cli("generate", "T=5", "n=4", "--seed", "0xDEADBEEF")
    assert r.exit_code == 0, _msg(r)
    assert "First 4 of 4 sequences" in r.stdout
    assert "variance" in r.stdout and "expected 0.2" in r.stdout


def test_generate_npz_matches_reference_generator(cli, tmp_path):
    import itertools

    from frnn_cli.data import generate_data

    out = tmp_path / "d.npz"
    r = cli("generate", "T=6", "n=9", "--seed", "42", "--out", str(out))
    assert r.exit_code == 0, _msg(r)
    with np.load(out) as f:
        x, y = f["x"], f["y"]
    assert x.shape == (9, 6, 1) and y.shape == (9, 1)
    ref = list(itertools.islice(generate_data(6, seed=42), 9))
    np.testing.assert_array_equal(x, np.stack([p[0] for p in ref]))
    np.testing.assert_array_equal(y, np.stack([p[1] for p in ref]))


def test_generate_csv_round_trips(cli, tmp_path):
    out = tmp_path / "d.csv"
    r = cli("generate", "T=3", "n=2", "--seed", "0x10", "--out", str(out))
    assert r.exit_code == 0, _msg(r)
    lines = out.read_text().splitlines()
    assert lines[0] == "seq,y,x1,x2,x3"
    table = np.loadtxt(out, delimiter=",", skiprows=1)
    x = table[:, 2:]
    assert table.shape == (2, 5)
    np.testing.assert_array_equal(np.abs(x[:, 0]), [1.0, 1.0])
    np.testing.assert_array_equal(table[:, 1], (x[:, 0] > 0).astype(float))


def test_bad_out_keeps_existing_file(cli, tmp_path):
    out = tmp_path / "keep.npz"
    out.write_bytes(b"precious")
    r = cli("generate", "T=abc", "--out", str(out))
    assert r.exit_code == 2
    assert out.read_bytes() == b"precious"


def test_unwritable_out_is_one_line_exit_2(cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = cli("generate", "--out", str(blocker / "d.npz"))
    assert r.exit_code == 2, _msg(r)
    assert r.stderr.startswith("error: --out:") and len(r.stderr.strip().splitlines()) == 1, _msg(r)


def test_no_arguments_prints_help_without_an_empty_error(cli):
    r = cli()
    expect_exit(r, 2)  # click's convention for "no command given": usage, exit 2
    assert "Usage" in r.stdout
    assert "error:" not in r.stderr, _msg(r)
