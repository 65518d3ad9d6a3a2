"""The `Block` base class, typed ports and the context a block runs with."""

from __future__ import annotations

import builtins
import enum
import types
import typing
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Self, TypeAlias, TypeVar, cast

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from core.errors import ContractBroken, MantleError

if TYPE_CHECKING:
    from blocks.suspends import SuspendPayload

PortType = Literal["string", "number", "integer", "boolean", "object", "array", "any"]
PORT_TYPES: tuple[str, ...] = typing.get_args(PortType)

_PY_TO_PORT: dict[Any, PortType] = {
    str: "string", int: "integer", float: "number", bool: "boolean",
    dict: "object", list: "array",
}


class Execution(enum.StrEnum):
    """Where a block's work happens."""

    inline = "inline"
    deferred = "deferred"


@dataclass(frozen=True, slots=True)
class Port:
    """One named, typed input or output of a block."""

    name: str
    type: PortType = "any"
    # On an output port, `required` means the block emits it on every run; an optional one may be
    # left out (a condition's branches, a review's `approved`).
    required: bool = True
    description: str = ""
    # Whether null is a value of this port. A port read from a model is nullable when its annotation
    # admits None; ports built from config (form fields, extracted values) may carry null.
    nullable: bool = field(default=True, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """The port as the block catalogue shows it."""
        return {"name": self.name, "type": self.type, "required": self.required,
                "description": self.description}


_PORT_CHECKS: dict[str, type | tuple[type, ...]] = {
    "string": str, "integer": int, "number": (int, float), "boolean": bool,
    "object": Mapping, "array": (list, tuple),
}


def value_fits(value: Any, port_type: str) -> bool:
    """Whether `value` (not null) is a value of port type `port_type` (JSON `true` is not a number)."""
    if port_type == "any":
        return True
    if isinstance(value, bool) and port_type != "boolean":
        return False
    return isinstance(value, _PORT_CHECKS[port_type])


def types_compatible(source: str, target: str) -> bool:
    """Whether a value of port type `source` may feed a port of type `target`."""
    return source == target or "any" in (source, target) or (source, target) == ("integer", "number")


def port_type_of(annotation: Any) -> PortType:
    """The port type of a Python annotation (`str | None` is a string port)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return port_type_of(args[0]) if len(args) == 1 else "any"
    return _PY_TO_PORT.get(origin or annotation, "any")


def admits_none(annotation: Any) -> bool:
    """Whether a field annotated so may hold None (`str | None`, `Any`)."""
    if annotation is Any or annotation is None or annotation is type(None):
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return admits_none(typing.get_args(annotation)[0])
    return origin in (typing.Union, types.UnionType) and any(
        admits_none(a) for a in typing.get_args(annotation))


def ports_of(model: type[BaseModel]) -> dict[str, Port]:
    """The ports a pydantic model declares, one per field."""
    return {
        name: Port(name, port_type_of(f.annotation), f.is_required(), f.description or "",
                   nullable=admits_none(f.annotation))
        for name, f in model.model_fields.items()
    }


class NoConfig(BaseModel):
    """A block without settings."""

    model_config = ConfigDict(extra="forbid")


class NoPorts(BaseModel):
    """No ports at all."""


class PortsFromConfig(BaseModel):
    """Base of the ports model of a block whose config makes its ports (a template's variables, a
    form's fields): `ports_model` adds one field per port; a port whose name cannot be a pydantic
    field (`json`, `_x`) is an extra value. Read the values with `port_values`."""

    model_config = ConfigDict(extra="allow")


class RunPayload(BaseModel):
    """A trigger's inputs: the run's inputs as its `accept` checked them, each an extra value
    (`model_extra`); a trigger has no input ports."""

    model_config = ConfigDict(extra="allow")


class InputMismatch(MantleError):
    """A value arrived on an input port whose type it does not fit (it came through an `any` wire)."""

    type = "input_mismatch"


_FIELD_TYPES: dict[str, Any] = {
    "string": str, "number": int | float, "integer": int, "boolean": bool,
    "object": dict[str, Any], "array": list[Any], "any": Any,
}
_TAKEN = frozenset(dir(BaseModel))

ModelT = TypeVar("ModelT", bound=BaseModel)


def _problems(exc: ValidationError) -> str:
    """Each value pydantic refused: `port: why`."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'ports'}: {e['msg']}"
                     for e in exc.errors(include_url=False, include_input=False))


def ports_model(base: builtins.type[ModelT], ports: Mapping[str, Port]) -> builtins.type[ModelT]:
    """A subclass of `base` with one typed field per port it lacks (extra values allowed)."""
    fields: dict[str, Any] = {}
    for port in ports.values():
        name = port.name
        if name in base.model_fields or name in _TAKEN or name.startswith(("_", "model_")):
            continue  # kept as an extra value, unchecked
        kind = _FIELD_TYPES[port.type]
        if port.nullable or not port.required:
            kind = kind | None
        fields[name] = (kind, ... if port.required else None)
    return cast(builtins.type[ModelT], create_model(
        base.__name__, __base__=base, __module__=base.__module__, __cls_kwargs__={"extra": "allow"},
        **fields))


def port_values(model: BaseModel) -> dict[str, Any]:
    """The port values a model holds: the fields that were set, then its extra values (a field
    left at its default was not emitted, or did not arrive)."""
    values = model.__dict__
    given = model.__pydantic_fields_set__
    found = dict(values) if len(given) == len(values) else {k: v for k, v in values.items() if k in given}
    extra = model.__pydantic_extra__
    if extra:
        found.update(extra)
    return found


@dataclass(frozen=True, slots=True)
class BlockContext:
    """What a running block may know about its run (never the environment)."""

    run_id: uuid.UUID
    node_id: str
    org_id: uuid.UUID
    app_id: uuid.UUID
    attempt: int = 1
    services: Mapping[str, Any] = field(default_factory=dict)
    # The node's output ports that some edge reads (a block may route differently when an
    # optional port, such as a policy's `blocked`, is wired).
    connected: frozenset[str] = frozenset()

    @property
    def idempotency_key(self) -> str:
        """The key a side effect must be deduplicated on: one per (run, node)."""
        return f"{self.run_id}:{self.node_id}"


@dataclass(frozen=True, slots=True)
class Suspend:
    """Returned by a deferred block's `start`: the node waits for an outside result.

    With `resume_after_s` the node is a timer: it resumes by itself that long after it started
    waiting, with `result`. The due time is stored with the node and the run (`wake_at`), so it
    survives any worker and broker; no handler is needed."""

    kind: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    resume_after_s: float | None = None
    result: Mapping[str, Any] | None = None


ConfigT = TypeVar("ConfigT", bound=BaseModel)
InputsT = TypeVar("InputsT", bound=BaseModel)
OutputsT = TypeVar("OutputsT", bound=BaseModel)


class Block(Generic[ConfigT, InputsT, OutputsT]):
    """Base class of every block type; see the `blocks` package docstring for the contract.

    A block type names its models once, as the class's type arguments
    (`class TemplateBlock(Block[TemplateConfig, TemplateInputs, TemplateOutputs])`); they become
    its `Config`, `Inputs` and `Outputs`."""

    type: ClassVar[str]
    version: ClassVar[int] = 1
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    category: ClassVar[str] = "general"
    execution: ClassVar[Execution] = Execution.inline
    trigger: ClassVar[bool] = False
    side_effects: ClassVar[bool] = False
    # Pure blocks (no effect outside their outputs, quick) may be re-run after a crash unnoticed,
    # so the engine runs a series of them in one transaction instead of checkpointing each.
    pure: ClassVar[bool] = False
    # Bounded blocks keep their own time limit: their work is bounded by the size of their input
    # or charged to the work budget as it goes (`blocks/limits.py`), so the executor runs them
    # without a watchdog thread. Any other block with a time limit runs in one.
    bounded: ClassVar[bool] = False
    Config: ClassVar[builtins.type[BaseModel]] = NoConfig
    Inputs: ClassVar[builtins.type[BaseModel]] = NoPorts
    Outputs: ClassVar[builtins.type[BaseModel]] = NoPorts
    # A sentence telling the builder how config shapes the ports, when it does.
    dynamic_ports: ClassVar[str] = ""
    # The payload models (`blocks/suspends.py`) a deferred block may suspend with. A worker refuses
    # to start when one of their kinds has no handler; suspending with another kind breaks the contract.
    suspends: ClassVar[tuple[builtins.type[SuspendPayload], ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Take a block type's Config, Inputs and Outputs from its type arguments, when it names them."""
        super().__init_subclass__(**kwargs)
        for base in cls.__dict__.get("__orig_bases__", ()):
            if typing.get_origin(base) is Block:
                models = typing.get_args(base)
                for name, model in zip(("Config", "Inputs", "Outputs"), models, strict=True):
                    if isinstance(model, builtins.type) and issubclass(model, BaseModel):
                        setattr(cls, name, model)

    def __init__(self, config: ConfigT) -> None:
        self.config = config

    @classmethod
    def from_config(cls, raw: Mapping[str, Any], context: Mapping[str, Any] | None = None) -> Self:
        """Build a block from raw JSON config; raises pydantic's ValidationError.

        `context` is what the deployment knows that a config may refer to (`models`: the model
        deployment names an app may use); validators read it from pydantic's validation context,
        and skip their check without it (the run worker builds blocks of already validated apps)."""
        return cls(cast(ConfigT, cls.Config.model_validate(raw, context=context)))

    def input_ports(self) -> dict[str, Port]:
        """The input ports of this configured block."""
        return ports_of(self.Inputs)

    def output_ports(self) -> dict[str, Port]:
        """The output ports of this configured block."""
        return ports_of(self.Outputs)

    def has_side_effects(self) -> bool:
        """Whether running this configured block changes something outside its run (an SMS sent, a
        POST); a block whose effects depend on its config narrows the class's `side_effects`."""
        return self.side_effects

    def inputs_model(self) -> builtins.type[InputsT]:
        """The model a node's inputs are validated into before `run`/`start`/`resume`: `Inputs`, or,
        when config makes the ports, a subclass of it with one field per port (made once per block)."""
        found = self.__dict__.get("_inputs_model")
        if found is None:
            found = self.__dict__["_inputs_model"] = (
                self.Inputs if type(self).input_ports is Block.input_ports
                else ports_model(self.Inputs, self.input_ports()))
        return cast(builtins.type[InputsT], found)

    def outputs_model(self) -> builtins.type[OutputsT]:
        """The model `run`/`start`/`resume` return: `Outputs`, or, when config makes the ports, a
        subclass of it with one field per port (made once per block)."""
        found = self.__dict__.get("_outputs_model")
        if found is None:
            found = self.__dict__["_outputs_model"] = (
                self.Outputs if type(self).output_ports is Block.output_ports
                else ports_model(self.Outputs, self.output_ports()))
        return cast(builtins.type[OutputsT], found)

    def typed_inputs(self, values: Mapping[str, Any]) -> InputsT:
        """A node's input values as its inputs model; InputMismatch names a value that does not fit."""
        validate = self.__dict__.get("_validate_inputs")
        if validate is None:  # the model's own validator: model_validate's wrapper costs as much again
            validate = self.inputs_model().__pydantic_validator__.validate_python
            self.__dict__["_validate_inputs"] = validate
        try:
            return cast(InputsT, validate(values))
        except ValidationError as exc:
            raise InputMismatch(f"block {self.type} cannot take its inputs: {_problems(exc)}") from None

    def emit(self, values: Mapping[str, Any]) -> OutputsT:
        """The outputs model emitting exactly `values`, validated (for ports whose values are made at
        run time: a form's fields, a called app's outputs); a value that does not fit its port, a
        required port left out or a port the block does not declare breaks its contract."""
        found = self.__dict__.get("_validate_outputs")
        if found is None:
            model = self.outputs_model()
            declared = None if model.model_config.get("extra") == "allow" else frozenset(model.model_fields)
            found = (model.__pydantic_validator__.validate_python, declared)
            self.__dict__["_validate_outputs"] = found
        validate, declared = found
        if declared is not None and not declared.issuperset(values):
            raise ContractBroken(f"block {self.type} emitted ports it does not declare: "
                                 f"{', '.join(sorted(set(values) - declared))} "
                                 f"(it declares: {', '.join(sorted(declared)) or 'none'})")
        try:
            return cast(OutputsT, validate(values))
        except ValidationError as exc:
            raise ContractBroken(f"block {self.type} broke its output contract: {_problems(exc)}") from None

    def prepare(self) -> None:
        """Build what this block needs once per process (a model, an analyzer) before its node's
        time starts, so the first node a fresh worker runs is not charged for loading it. The
        executor calls it before each `run` and `start`: once built, it must cost next to nothing."""

    def run(self, inputs: InputsT, ctx: BlockContext) -> OutputsT:
        """Execute an inline block; return its outputs model (a field left unset is not emitted)."""
        raise NotImplementedError(f"{self.type} does not run inline")

    def start(self, inputs: InputsT, ctx: BlockContext) -> Suspend | OutputsT:
        """Begin a deferred block's work elsewhere and suspend its node, or return the outputs at
        once when nothing needs to wait (a policy that only sometimes asks a person)."""
        raise NotImplementedError(f"{self.type} is not deferred")

    def resume(self, inputs: InputsT, result: Mapping[str, Any], ctx: BlockContext) -> OutputsT:
        """Turn a deferred block's recorded result into its outputs model."""
        return self.emit(result)

    def accept(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """A trigger's check of a run's inputs; raises pydantic's ValidationError on bad input."""
        return dict(payload)

    def payload_schema(self) -> dict[str, Any] | None:
        """A trigger's JSON Schema of the inputs `accept` takes (None: no typed fields to describe)."""
        return None

    def results(self, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        """What this node adds to the run's outputs (only `output` blocks add anything)."""
        return {}

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """The block type as the builder's palette shows it (ports for the default config)."""
        try:
            default = cls.from_config({})
            inputs = [p.as_dict() for p in default.input_ports().values()]
            outputs = [p.as_dict() for p in default.output_ports().values()]
        except ValueError:  # a config with required fields has no default ports to show
            inputs = [p.as_dict() for p in ports_of(cls.Inputs).values()]
            outputs = [p.as_dict() for p in ports_of(cls.Outputs).values()]
        return {
            "type": cls.type,
            "version": cls.version,
            "title": cls.title or cls.type,
            "description": cls.description,
            "category": cls.category,
            "execution": cls.execution.value,
            "trigger": cls.trigger,
            "side_effects": cls.side_effects,
            "inputs": inputs,
            "outputs": outputs,
            "dynamic_ports": cls.dynamic_ports,
            "config_schema": cls.Config.model_json_schema(),
        }


# A block of any type, where the type does not matter (a registry, a graph's nodes).
AnyBlock: TypeAlias = Block[Any, Any, Any]
