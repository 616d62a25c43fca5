"""The figure of ``frnn vanishing``: Jacobian norms, their bound and the back-propagated error vs t.

Drawn on a ``Figure`` object and written by :func:`frnn_cli.plots.save_png`.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from frnn_cli.plots import positive as _positive
from frnn_cli.plots import save_png
from frnn_cli.vanishing import VanishingSummary
from frnn_cli.vanishing_lstm import LSTMVanishingSummary


def plot_vanishing(summary: VanishingSummary, path: str | Path, *, hidden: int, network: str) -> Path:
    """Write the two-panel vanishing-gradient figure as a PNG.

    Left panel, log scale: median and maximum over sequences of ||da(t)/da(1)||_2, the bound
    ||R||_2^(t-1) and, for reference, rho(R)^(t-1). Right panel, log scale: median and maximum
    of ||dL/da(t)||_2 for the loss at the sequence end.

    Parameters
    ----------
    summary : VanishingSummary
        From :func:`frnn_cli.vanishing.summarize`; T steps, n sequences.
    path : str or Path
        Output file (``.png``); its folder must exist.
    hidden : int
        Hidden size I, for the title.
    network : str
        Where the weights come from, for the title (e.g. "fresh init uniform ±0.01").

    Returns
    -------
    Path of the written file.

    Raises
    ------
    OSError
        If the file cannot be written.
    """
    s = summary
    t = s.t
    T = len(t)
    fig = Figure(figsize=(11.5, 4.8), layout="constrained")
    ax_j, ax_e = fig.subplots(1, 2)

    ax_j.plot(t, _positive(s.bound), "k--", lw=1.6, label=f"bound $\\|R\\|_2^{{t-1}}$, $\\|R\\|_2$ = {s.spectral_norm_R:.3g}")
    ax_j.plot(
        t, _positive(s.spectral_radius_R ** (t - 1.0)), ":", color="0.45", lw=1.4,
        label=f"$\\rho(R)^{{t-1}}$ (largest |eigenvalue| = {s.spectral_radius_R:.3g})",
    )
    ax_j.plot(t, _positive(s.jacobian_median), "o-", color="C0", ms=4, lw=1.8, label="measured, median over sequences")
    ax_j.plot(t, _positive(s.jacobian_max), "^", color="C3", ms=4, mfc="none", label="measured, max over sequences")
    ax_j.set_yscale("log")
    ax_j.set_xlabel("time step t")
    ax_j.set_ylabel(r"$\|\partial a(t) / \partial a(1)\|_2$  (log scale)")
    ax_j.set_title("How much of a change in a(1) still reaches a(t)")
    ax_j.legend(loc="lower left", fontsize=8.5)

    ax_e.plot(t, _positive(s.error_median), "o-", color="C1", ms=4, lw=1.8, label="median over sequences")
    ax_e.plot(t, _positive(s.error_max), "^", color="C3", ms=4, mfc="none", label="max over sequences")
    ax_e.set_yscale("log")
    ax_e.set_xlabel("time step t")
    ax_e.set_ylabel(r"$\|\partial L / \partial a(t)\|_2$  (log scale)")
    ax_e.set_title(f"Error BPTT sends back from the loss at t = T = {T} to each t")
    ax_e.legend(loc="upper left", fontsize=8.5)

    for ax in (ax_j, ax_e):
        ax.set_xlim(0.5, T + 0.5)
        ax.grid(True, which="major", alpha=0.3)
        if T <= 30:
            ax.set_xticks(t[:: max(1, T // 10)] if T > 10 else t)
    fig.suptitle(
        f"Vanishing gradient: {hidden} hidden units, $\\|R\\|_2$ = {s.spectral_norm_R:.3g}, "
        f"T = {T}, n = {s.n} sequences\n{network}"
    )
    return save_png(fig, path, dpi=110)


def plot_vanishing_lstm(lstm: LSTMVanishingSummary, rnn: VanishingSummary, path: str | Path, *, hidden: int,
                        network: str, rnn_text: str | None = None) -> Path:
    """The LSTM's error flow next to the RNN's, on one figure (``frnn vanishing model=lstm``).

    Left panel, log scale: medians over sequences of the LSTM's ||dc(t)/dc(1)||_2,
    ||da(t)/da(1)||_2, its whole state Jacobian and the product of its forget gates
    f(2..t) (the constant error carousel), and the RNN's ||da(t)/da(1)||_2 with its bound
    ||R||_2^(t-1). Right panel, log scale: the errors BPTT sends back from the loss at T,
    the LSTM's ||dL/dc(t)|| and ||dL/da(t)|| and the RNN's ||dL/da(t)||.

    Parameters
    ----------
    lstm : LSTMVanishingSummary, from :func:`frnn_cli.vanishing_lstm.lstm_summarize`
    rnn : VanishingSummary, from :func:`frnn_cli.vanishing.summarize` on the same sequences
    path : str or Path
        Output file (``.png``); its folder must exist.
    hidden : int
        Hidden size I (cells of the LSTM, units of the RNN).
    network : str
        Where the LSTM's weights come from, for the title.
    rnn_text : str, optional
        The RNN's size and origin, for the title (default: "<hidden> units, same
        initialisation").

    Returns
    -------
    Path of the written file.

    Raises
    ------
    OSError
        If the file cannot be written.
    """
    t = lstm.t
    T = len(t)
    fig = Figure(figsize=(12, 5), layout="constrained")
    ax_j, ax_e = fig.subplots(1, 2)
    m = lstm.jacobian_median
    ax_j.plot(t, _positive(m["cc"]), "o-", color="C2", ms=3, lw=1.8, label="LSTM $\\|\\partial c(t)/\\partial c(1)\\|_2$")
    ax_j.plot(t, _positive(m["carousel"]), "--", color="C2", lw=1.2, label="LSTM carousel: max over cells of $\\prod f$")
    ax_j.plot(t, _positive(m["aa"]), "s-", color="C1", ms=3, lw=1.4, label="LSTM $\\|\\partial a(t)/\\partial a(1)\\|_2$")
    ax_j.plot(t, _positive(m["state"]), ":", color="C4", lw=1.6, label="LSTM whole state (a, c)")
    ax_j.plot(t, _positive(rnn.jacobian_median), "^-", color="C0", ms=3, lw=1.8,
              label="RNN $\\|\\partial a(t)/\\partial a(1)\\|_2$")
    ax_j.plot(t, _positive(rnn.bound), "k--", lw=1.0, label=f"RNN bound $\\|R\\|_2^{{t-1}}$, $\\|R\\|_2$ = {rnn.spectral_norm_R:.3g}")
    ax_j.set_yscale("log")
    ax_j.set_xlabel("time step t")
    ax_j.set_ylabel("Jacobian norm from step 1 to step t (log scale, median)")
    ax_j.set_title("How much of a change at step 1 still reaches step t")
    ax_j.legend(loc="lower left", fontsize=8)
    ax_e.plot(t, _positive(lstm.error_c_median), "o-", color="C2", ms=3, lw=1.8, label="LSTM $\\|\\partial L/\\partial c(t)\\|$")
    ax_e.plot(t, _positive(lstm.error_a_median), "s-", color="C1", ms=3, lw=1.4, label="LSTM $\\|\\partial L/\\partial a(t)\\|$")
    ax_e.plot(t, _positive(rnn.error_median), "^-", color="C0", ms=3, lw=1.8, label="RNN $\\|\\partial L/\\partial a(t)\\|$")
    ax_e.set_yscale("log")
    ax_e.set_xlabel("time step t")
    ax_e.set_ylabel("error sent back from the loss at T (log scale, median)")
    ax_e.set_title(f"Error BPTT sends back from t = T = {T}")
    ax_e.legend(loc="center left", fontsize=8)
    for ax in (ax_j, ax_e):
        ax.set_xlim(0.5, T + 0.5)
        ax.grid(True, which="major", alpha=0.3)
    rnn_text = rnn_text or f"{hidden} units, same initialisation"
    fig.suptitle(f"LSTM ({hidden} cells; {network})\nand RNN ({rnn_text}); T = {T}, n = {lstm.n} sequences")
    return save_png(fig, path, dpi=110)
