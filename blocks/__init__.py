"""Blocks: the nodes of a Mantle app, and the contract every block type keeps.

The contract, in plain words:

* A block type is a subclass of `blocks.base.Block` with a dotted `type` name
  (`"text.template"`), an integer `version`, a one-line `description` and a `category`.
* It is typed end to end: `class TemplateBlock(Block[TemplateConfig, TemplateInputs,
  TemplateOutputs])` names its three pydantic models once, as type arguments (they become its
  `Config`, `Inputs` and `Outputs`), so `self.config` is a `TemplateConfig` and
  `run(self, inputs: TemplateInputs, ctx) -> TemplateOutputs` is checked by mypy. Everything a
  block needs comes from its config and the `BlockContext` it is run with; a block never reads the
  environment. `__init__` only keeps the validated config: it must be cheap. Heavy work (loading a
  model) belongs in a separate warm-up step owned by the worker that serves it.
* Its ports are its typed signature: the fields of `Inputs` and `Outputs` are the ports (name,
  type, required). A block whose ports depend on its config (a template's variables, a form's
  fields, a called app's interface) overrides `input_ports()` / `output_ports()`, and declares
  `Inputs` / `Outputs` as a subclass of `PortsFromConfig`; the model it then receives and
  returns (`inputs_model()`, `outputs_model()`) is that class with one typed field per port, made
  once per block instance. A port whose name cannot be a pydantic field (`json`, `_x`) is an extra
  value of the model; `port_values(model)` reads them all. The graph validator checks every wire
  with the ports before anything runs.
* A trigger has no input ports; its `Inputs` is `RunPayload`, whose extra values are the run's
  inputs as its `accept` checked them.
* It says how it executes (`execution`):
  - `inline`: `run(inputs, ctx)` returns its outputs model, inside the run worker.
  - `deferred`: `start(inputs, ctx)` hands work to another queue or to a person and
    returns a `Suspend`, built from its typed payload (`blocks/suspends.py`:
    `ReviewRequest(...).suspend()`, or `suspends.review(...)`); when the result is recorded,
    `resume(inputs, result, ctx)` returns its outputs model. A `start` that finds nothing to
    wait for may return the outputs model directly instead (`governance.policy` asks a person
    only on `review`). A deferred block lists its payload models in `suspends`; a run worker
    refuses to start if one of their kinds has no handler.
* The executor validates a node's inputs into the inputs model before calling it (a value that
  does not fit its port, having come through an `any` wire, fails the node: `input_mismatch`). What a
  returned outputs model emits is its fields that were set (`model_fields_set`) and its extra
  values: a field left at its default is not emitted, which is how a condition branches
  (`ConditionOutputs(true=value)`). `Block.emit(mapping)` builds the outputs model from values
  made at run time, validated.
* What a block emits is held to its output ports when it runs: its own outputs model (a dict
  breaks the contract), no undeclared port, every required port (a field without a default)
  emitted, each value of its port's type, null only where the port admits it. A port that is
  emitted only sometimes (a branch) has a default. A break fails the node with a
  `contract_broken` error naming the port, the type and the value. Validating the inputs and
  checking the outputs cost a few microseconds a node: the models' validators are called directly
  and made once per block.
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
   module docstring saying what the block is for; its `Config`, `Inputs` and `Outputs` models;
   `class TheBlock(Block[Config, Inputs, Outputs])` (ports from config: `PortsFromConfig` models
   and `input_ports()` / `output_ports()`), with `run` (inline) or `start` and `resume`
   (deferred, with `suspends` naming its payload models), each annotated with those models; and,
   last, `BLOCKS = [TheBlock]`, its explicit registration.
2. `tests/unit/test_<name>.py`: run it through the executor with `tests/factories.py`'s graph
   helpers (or call `block.run(block.typed_inputs({...}), ctx)` with a `BlockContext`),
   asserting the ports it emits (`port_values`). The contract test
   (`tests/unit/test_block_contract.py`) fails until the class names its models, its methods
   are annotated with them, it is listed in `BLOCKS` and every wait it may start has a handler.

A handler only for a new kind of wait: its payload model in `blocks/suspends.py` (added to
`KINDS`), and its handler in `worker.hooks.builtin_handlers` (a plug-in uses `on_wait`). Waiting
on time alone (`TimerWait` with `resume_after_s`) needs no handler.
"""
