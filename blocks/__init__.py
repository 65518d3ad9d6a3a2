"""Blocks: the nodes of a Mantle app, and the contract every block type keeps.

The contract, in plain words:

* A block type is a subclass of `blocks.base.Block` with a dotted `type` name
  (`"text.template"`), an integer `version`, a one-line `description` and a `category`.
* Its configuration is a pydantic model, `Config`. Everything a block needs comes from
  its config and the `BlockContext` it is run with; a block never reads the environment.
  `__init__` only keeps the validated config: it must be cheap. Heavy work (loading a
  model) belongs in a separate warm-up step owned by the worker that serves it.
* Its ports are its typed signature: `Inputs` and `Outputs` are pydantic models whose
  fields are the ports (name, type, required). A block whose ports depend on its config
  (a template's variables, a form's fields) overrides `input_ports()` / `output_ports()`;
  the graph validator calls them to check every wire before anything runs.
* It says how it executes (`execution`):
  - `inline`: `run(inputs, ctx)` returns a mapping of the output ports it emits, inside
    the run worker. Ports it leaves out are not emitted (that is how a condition branches).
  - `deferred`: `start(inputs, ctx)` hands work to another queue or to a person and
    returns a `Suspend`, built from its typed payload (`blocks/suspends.py`:
    `ReviewRequest(...).suspend()`, or `suspends.review(...)`); when the result is recorded,
    `resume(inputs, result, ctx)` returns the emitted ports. A `start` that finds nothing to
    wait for may return the emitted ports directly instead (`governance.policy` asks a person
    only on `review`). A deferred block lists its payload models in `suspends`; a run worker
    refuses to start if one of their kinds has no handler.
* What a block emits is held to its output ports when it runs: no undeclared port, every
  required port (a field without a default) emitted, each value of its port's type, null only
  where the port admits it. A port that is emitted only sometimes (a branch) has a default.
  A break fails the node with a `contract_broken` error naming the port, the type and the value.
* A block with side effects (`side_effects = True`, e.g. sending an SMS) must be
  idempotent per `(run_id, node_id)`: `ctx.idempotency_key` is the key to use, so a retry
  after a crash never repeats the effect.
* Exactly one node of an app is a trigger (`trigger = True`): it turns the run's inputs
  (an API call, a form, an SMS) into its output ports.
* Every execution has a work budget and a time limit (`blocks/limits.py`). A `pure` block (no
  effect outside its outputs) may run inside the engine's step transaction, for a short slice,
  and is finished outside it when slower. A block that evaluates something a builder wrote (a
  template, an expression) charges the budget as it goes and says `bounded = True`; any other
  block is given up on from a watchdog thread when its time is up.
* A deferred block that only waits for time returns `Suspend(..., resume_after_s=…, result=…)`:
  the due time is stored with the node, so no message has to survive a crash.

One block type per file, which ends with `BLOCKS = [TheBlock]`; `blocks.registry` collects
those lists.

Adding a block: one file plus its test.

1. `blocks/<type, dots as underscores>.py` (`text.template` is `blocks/text_template.py`): a
   module docstring saying what the block is for; the `Block` subclass with its `Config`,
   `Inputs` and `Outputs` models (ports from config: override `input_ports()` /
   `output_ports()`), `run` (inline) or `start` and `resume` (deferred, with `suspends` naming
   its payload models); and, last, `BLOCKS = [TheBlock]`, its explicit registration.
2. `tests/unit/test_<name>.py`: run it through the executor with `tests/factories.py`'s graph
   helpers (or call `run` with a `BlockContext`), asserting the ports it emits. The contract test
   (`tests/unit/test_block_contract.py`) fails until the class is listed in `BLOCKS` and every
   wait it may start has a handler.

A handler only for a new kind of wait: its payload model in `blocks/suspends.py` (added to
`KINDS`), and its handler in `worker.hooks.builtin_handlers` (a plug-in uses `on_wait`). Waiting
on time alone (`TimerWait` with `resume_after_s`) needs no handler.
"""
