"""Label quality: who labeled what (worker identity), gold clips scored against their truth,
and what the adjustment level changed (agreement). Pure measures here; the CLI, the control
API and the dataset report present them (docs/quality.md)."""
