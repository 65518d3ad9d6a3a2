"""The registry of block types: name to class, and the catalogue the builder draws from."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from functools import lru_cache

from blocks.base import Block


class UnknownBlockType(KeyError):
    """No block type of that name is registered."""


class Registry:
    """A set of block types, looked up by their dotted `type` name."""

    def __init__(self, block_types: Iterable[type[Block]] = ()) -> None:
        self._types: dict[str, type[Block]] = {}
        for block_type in block_types:
            self.register(block_type)

    def register(self, block_type: type[Block]) -> type[Block]:
        """Add a block type; a second type with the same name is a programming error."""
        if block_type.type in self._types:
            raise ValueError(f"block type {block_type.type!r} is registered twice")
        self._types[block_type.type] = block_type
        return block_type

    def get(self, name: str) -> type[Block]:
        """The block type called `name`; raises UnknownBlockType."""
        try:
            return self._types[name]
        except KeyError:
            raise UnknownBlockType(name) from None

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Iterator[type[Block]]:
        return iter(sorted(self._types.values(), key=lambda b: b.type))

    def names(self) -> list[str]:
        """Every registered type name, sorted."""
        return sorted(self._types)

    def extended(self, *block_types: type[Block]) -> Registry:
        """A copy of this registry with more block types (for tests and plug-ins)."""
        return Registry([*self._types.values(), *block_types])


@lru_cache
def default_registry() -> Registry:
    """Every block type that ships with Mantle."""
    from blocks.app_call import AppCallBlock
    from blocks.flow_map import MapBlock
    from blocks.flow_wait import WaitBlock
    from blocks.governance_policy import GovernancePolicyBlock
    from blocks.http_request import HttpRequestBlock
    from blocks.human_review import HumanReviewBlock
    from blocks.json_extract import JsonExtractBlock
    from blocks.knowledge_retrieve import RetrieveBlock
    from blocks.llm_prompt import PromptBlock
    from blocks.logic_condition import ConditionBlock
    from blocks.mcp_tool import McpToolBlock
    from blocks.output import OutputBlock
    from blocks.text_template import TemplateBlock
    from blocks.trigger_api import ApiTriggerBlock
    from blocks.trigger_schedule import ScheduleTriggerBlock
    from blocks.trigger_webhook import WebhookTriggerBlock
    from blocks.twilio_sms_input import SmsInputBlock
    from blocks.twilio_sms_output import SmsOutputBlock
    from blocks.webapp_input import WebAppInputBlock

    return Registry([ApiTriggerBlock, TemplateBlock, ConditionBlock, OutputBlock, WaitBlock,
                     HumanReviewBlock, WebAppInputBlock, SmsInputBlock, SmsOutputBlock, PromptBlock,
                     GovernancePolicyBlock, HttpRequestBlock, JsonExtractBlock, WebhookTriggerBlock,
                     ScheduleTriggerBlock, MapBlock, AppCallBlock, RetrieveBlock, McpToolBlock])


@lru_cache
def load_registry(plugins: tuple[str, ...] = ()) -> Registry:
    """The default registry plus the block types of plug-in modules (each lists them in `BLOCKS`)."""
    if not plugins:
        return default_registry()
    extra: list[type[Block]] = []
    for module_name in plugins:
        module = importlib.import_module(module_name)
        extra.extend(module.BLOCKS)
    return default_registry().extended(*extra)
