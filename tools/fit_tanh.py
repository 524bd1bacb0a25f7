"""Fit the odd rational approximation of tanh used by the fast kernels.

tanh(x) ~ x * P(x^2) / Q(x^2) with deg P = deg Q = 4 and Q(0) = 1, on |x| <= CLAMP (inputs are
clamped there; 1 - tanh(CLAMP) = 3.0e-8). The fit is a Lawson-reweighted linearised least-squares
(Loeb) iteration towards the minimax solution. Run it to regenerate the coefficients in
``wavesim/kernels/tanh.py`` and to print the error bound the tests assert.
"""

import numpy as np

CLAMP = 9.0


def fit(npd=4, nqd=4, clamp=CLAMP, iters=300):
    x = np.unique(np.concatenate([np.linspace(0, 1, 2000), np.linspace(1, clamp, 6000)]))[1:]
    t = np.tanh(x)
    s = x * x
    w = np.ones_like(x)
    q = np.zeros(nqd)
    for _ in range(iters):
        a = np.hstack(
            [
                x[:, None] * s[:, None] ** np.arange(npd + 1),
                -(t[:, None] * s[:, None] ** np.arange(1, nqd + 1)),
            ]
        )
        qprev = 1 + (s[:, None] ** np.arange(1, nqd + 1)) @ q
        ww = w / np.abs(qprev)
        coef = np.linalg.lstsq(a * ww[:, None], t * ww, rcond=None)[0]
        p, q = coef[: npd + 1], coef[npd + 1 :]
        err = x * np.polyval(p[::-1], s) / (1 + s * np.polyval(q[::-1], s)) - t
        w = w * (np.abs(err) / np.abs(err).max() + 1e-3)
        w /= w.mean()
    return p, np.r_[1.0, q]


if __name__ == "__main__":
    p, q = fit()
    np.set_printoptions(precision=17)
    print("P =", repr(p))
    print("Q =", repr(q))
