"""The Nim experiment family: single-pile subtraction-game data, leakage checks, metrics, plots.

Modules, one concept each:

- `solver`: who wins a position and with which move (the labels).
- `names`: player-name sources and the cheat / neutral / held-out name-pair plan.
- `prompts`: how a game state is written as a prompt and an answer.
- `settings`: `NimSettings` (every generator option) and `PRESETS` (the original
  project's experiments).
- `generator`: the one parametric generator with its splits.
- `experiments`: a config entry resolved into generator settings and a leakage gate.
- `leakage`: train/eval overlap and name-label shortcut measurements, and a gate.
- `checkpoints`: a training run's checkpoints in step order, each once.
- `evaluate`: greedy answers and candidate scores at every checkpoint, on every held-out set.
- `metrics`: exact match, rank classification over candidate answers, confusion matrices.
- `plots`: the aggregations behind every Nim figure, and the figures.
- `summary`: the validation-selected checkpoint per run, intervals within and across seeds.

The prompt/answer token seam is checked by `metaexamples.seam`, which grammar scoring and
training share.
"""
