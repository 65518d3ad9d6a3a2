"""What the API and the inference workers both know about models: the deployment registry.

Kept out of `worker/inference/` (which loads torch and serves models) so that the API, the
CLI and the `llm.prompt` block read deployments without depending on the worker that runs them.
"""
