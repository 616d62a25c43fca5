"""frnn: train a fully recurrent tanh network with BPTT on the 2-sequence latch task.

The core modules (:mod:`frnn_cli.data`, :mod:`frnn_cli.model`, :mod:`frnn_cli.gradcheck`)
depend on NumPy only; the command line lives in :mod:`frnn_cli.cli`.
"""

try:  # written by setuptools-scm at build time (see pyproject.toml)
    from frnn_cli._version import __version__
except ImportError:  # a source tree that was never built or installed
    __version__ = "0+unknown"
