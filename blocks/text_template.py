"""`text.template`: render text with a sandboxed Jinja2 template."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Annotated, Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta
from jinja2.exceptions import SecurityError, UndefinedError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from blocks.base import Block, BlockContext, Port, PortsFromConfig, port_values
from blocks.limits import LimitExceeded
from blocks.template_sandbox import MAX_EXPONENT, MAX_RESULT_CHARS, BoundedSandbox  # noqa: F401
from core.errors import MantleError

_ENV = BoundedSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


class TemplateError(MantleError):
    """A template failed to render (an undefined value, a refused operation)."""

    type = "template_error"


@lru_cache(maxsize=1024)
def _compile(source: str) -> tuple[Template, tuple[str, ...]]:
    """The compiled template and the variables it reads, cached per template text."""
    try:
        ast = _ENV.parse(source)
        variables = tuple(sorted(meta.find_undeclared_variables(ast)))
        return _ENV.from_string(ast), variables
    except (RecursionError, SyntaxError):  # Jinja2's parser recurses per level; Python nests 100 blocks
        raise TemplateSyntaxError("the template is nested too deeply", 1) from None


compile_template = _compile  # for other blocks that take a template (`llm.prompt`)


def render_template(source: str, values: Mapping[str, Any]) -> str:
    """`source` rendered with `values`; TemplateError for anything the template does wrong."""
    template, _ = _compile(source)
    try:
        return template.render(values)
    except (UndefinedError, SecurityError) as exc:
        raise TemplateError(f"template failed: {exc}") from None
    except LimitExceeded as exc:
        raise TemplateError(f"template failed: {exc.message}") from None
    except (ArithmeticError, TypeError, ValueError, LookupError, RecursionError) as exc:
        raise TemplateError(f"template failed: {type(exc).__name__}: {exc}") from None


def _parses(value: str) -> str:
    try:
        _compile(value)
    except TemplateSyntaxError as exc:
        raise ValueError(f"template syntax error on line {exc.lineno}: {exc.message}") from None
    return value


# A config's template text (`text.template`, `llm.prompt`): checked to parse when the config is.
TemplateText = Annotated[str, Field(
    max_length=32_000,
    description="Jinja2 template (sandboxed); each variable it reads becomes an input port.",
), AfterValidator(_parses)]


def template_ports(source: str) -> dict[str, Port]:
    """The input ports of a template: one per variable it reads, of any type, required."""
    _, variables = _compile(source)
    return {name: Port(name, "any", True) for name in variables}


class TemplateConfig(BaseModel):
    """The template text."""

    model_config = ConfigDict(extra="forbid")

    template: TemplateText = "{{ text }}"


class TemplateInputs(PortsFromConfig):
    """The values the template reads, one port per variable."""


class TemplateOutputs(BaseModel):
    """The rendered text."""

    text: str


class TemplateBlock(Block[TemplateConfig, TemplateInputs, TemplateOutputs]):
    """Renders its template with the values on its input ports."""

    type = "text.template"
    title = "Template"
    description = "Renders a Jinja2 template (sandboxed); its variables become input ports."
    category = "text"
    pure = True
    bounded = True
    dynamic_ports = "One input port per variable the template reads."

    def input_ports(self) -> dict[str, Port]:
        return template_ports(self.config.template)

    def render(self, values: Mapping[str, Any]) -> str:
        """The template rendered with `values`."""
        return render_template(self.config.template, values)

    def run(self, inputs: TemplateInputs, ctx: BlockContext) -> TemplateOutputs:
        return TemplateOutputs(text=self.render(port_values(inputs)))


BLOCKS = [TemplateBlock]
