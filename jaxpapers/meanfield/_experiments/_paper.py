"""The paper's kernel table (arXiv 2604.26898, as given in the method spec §3).

``TABLE[activation]`` lists, for the columns ``COLUMNS`` of ``(d, sigma)`` with
``sigma_u = sigma_w = sigma``, the printed ``(kappa(1), kappa'(1), lambda_1, lambda_bar)`` to three
significant figures.
"""

COLUMNS = ((5, 0.0), (5, 0.1), (64, 0.0), (64, 0.1), (128, 0.0), (128, 0.1))
CONSTANTS = ("kappa1", "dkappa1", "lambda1", "lambda_bar")
TABLE = {
    "relu": ((.100, .100, -.100, .200), (.115, .100, -.130, .170),
             (7.81e-3, 7.81e-3, -7.81e-3, 1.56e-2), (2.28e-2, 7.81e-3, -.480, -.899),
             (3.91e-3, 3.91e-3, -3.91e-3, 7.81e-3), (1.89e-2, 3.91e-3, -.956, -1.87)),
    "sigmoid": ((.261, 1.14e-2, -.511, -.477), (.272, 1.14e-2, -.532, -.498),
                (.251, 9.69e-4, -7.88, -15.2), (.262, 9.64e-4, -8.21, -15.9),
                (.250, 4.86e-4, -15.9, -31.2), (.261, 4.84e-4, -16.5, -32.6)),
    "tanh": ((.147, .151, -.144, .309), (.163, .149, -.176, .272),
             (1.52e-2, 1.52e-2, -1.50e-2, 3.06e-2), (3.44e-2, 1.49e-2, -.629, -1.16),
             (7.69e-3, 7.69e-3, -7.66e-3, 1.55e-2), (2.72e-2, 7.55e-3, -1.26, -2.44)),
    "silu": ((5.65e-2, 5.84e-2, -5.45e-2, .121), (6.96e-2, 5.87e-2, -8.04e-2, 9.57e-2),
             (3.95e-3, 3.97e-3, -3.50e-3, 8.84e-3), (1.65e-2, 4.00e-3, -.398, -.756),
             (1.96e-3, 1.97e-3, -1.73e-3, 4.41e-3), (1.45e-2, 1.99e-3, -.797, -1.56)),
}
ROWS = tuple((act, d, s, values) for act, cols in TABLE.items()
             for (d, s), values in zip(COLUMNS, cols, strict=True))
