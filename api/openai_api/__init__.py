"""Mantle speaks OpenAI: `/openai/v1/chat/completions` and `/openai/v1/models` in OpenAI's shapes.

Tools that already talk to OpenAI (the `openai` client, LangChain, an editor plug-in) point their
base URL at `<Mantle>/openai/v1` and use a Mantle API key: they get the organization's model
deployments, served by the inference workers and batched with everything else they serve.

* `schemas`: the request and response bodies, as OpenAI defines them (what Mantle supports).
* `errors`: OpenAI's error shape (`{"error": {"message", "type", "param", "code"}}`) for every
  failure under `/openai/`, invalid input as 400.
* `routes`: the router; a request is stored (`models/completions.py`), sent to the deployment's
  inference queue, and answered from its row, streamed as OpenAI streams (Server-Sent Events,
  `data: [DONE]`).
"""
