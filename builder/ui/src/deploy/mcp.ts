/** What the MCP tool section shows a person to set up a client (pure: unit-tested). */

/** The MCP endpoint on this server. */
export function mcpUrl(origin: string): string {
  return `${origin.replace(/\/$/, "")}/mcp`;
}

/**
 * An MCP client's server entry (the `mcpServers` shape many clients read) for Mantle's endpoint; the
 * key is a placeholder, never a real one: keys are shown once, when made.
 */
export function clientConfig(url: string): string {
  const entry = { type: "http", url, headers: { Authorization: "Bearer <your Mantle API key>" } };
  return JSON.stringify({ mcpServers: { mantle: entry } }, null, 2);
}

/** The PATCH body for the tool's details: an emptied name lets the server make one of the app's name. */
export function toolDetails(name: string, description: string): { tool_name?: string; tool_description: string } {
  const trimmed = name.trim();
  return trimmed ? { tool_name: trimmed, tool_description: description.trim() } : { tool_description: description.trim() };
}

/** The command that makes a key for a client (the organization's name quoted for a shell when it must be). */
export function keyCommand(org: string): string {
  const arg = /^[\w.@-]+$/.test(org) ? org : `'${org.replace(/'/g, "'\\''")}'`;
  return `mantle keys create --org ${arg} --role builder --name my-assistant`;
}
