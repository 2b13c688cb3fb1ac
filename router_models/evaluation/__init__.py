"""The data README's evaluation protocol: quality-cost curves, Q@C_best, C@Q_best."""
