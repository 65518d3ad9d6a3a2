"""Mantle as an MCP server: the organization's published apps marked as tools, at `/mcp`."""
