"""The decision core: one request in, one decision and its log record out.

Read it in this order:

- `schema.py`: what a product sends (`DecisionRequest`, `Reward`) and gets back (`Decision`);
- `features.py`: a request's context and actions as one `FeatureSet` (VW's namespaces);
- `pmf.py`: shaping a policy's pmf (normalization, extra exploration, the floor);
- `sampling.py`: the seeded draw, a pure function of (app seed, event id);
- `costs.py`: rewards ↔ the costs VW learns from;
- `record.py`: the log record (VW's DSJson plus banditrec's fields), built, joined, read back,
  the one rule for what is learned from (`unlearnable`) and the single-slot key;
- `engine.py`: `DecisionEngine`, which puts these together and learns from joined records;
- `recorder.py`: the same decision and record for simulators (harness, RL collection, OPE logs);
- `journey.py`: how a sequential decision (an RL app's) carries its state and episode.

The policies it calls live in `banditrec.policies`. This package's `__init__` imports
nothing, so any module here can be imported on its own (the policies import `features`
without pulling in the engine).
"""
