import { describe, expect, it } from "vitest";
import { clientConfig, keyCommand, mcpUrl, toolDetails } from "./mcp";

describe("the MCP tool section", () => {
  it("gives the server's /mcp URL", () => {
    expect(mcpUrl("https://mantle.example.com")).toBe("https://mantle.example.com/mcp");
    expect(mcpUrl("http://127.0.0.1:8000/")).toBe("http://127.0.0.1:8000/mcp");
  });

  it("shows a client entry with a placeholder key, never a real one", () => {
    const config = JSON.parse(clientConfig("https://m.example/mcp"));
    expect(config.mcpServers.mantle).toEqual({
      type: "http", url: "https://m.example/mcp", headers: { Authorization: "Bearer <your Mantle API key>" },
    });
  });

  it("sends a trimmed name, or none so the server makes one", () => {
    expect(toolDetails("  summarize ", " Sums up a text. ")).toEqual({ tool_name: "summarize", tool_description: "Sums up a text." });
    expect(toolDetails("   ", "")).toEqual({ tool_description: "" });
  });

  it("names the organization in the key command, quoted for a shell when it must be", () => {
    expect(keyCommand("acme")).toBe("mantle keys create --org acme --role builder --name my-assistant");
    expect(keyCommand("Bob's shop")).toBe("mantle keys create --org 'Bob'\\''s shop' --role builder --name my-assistant");
  });
});
