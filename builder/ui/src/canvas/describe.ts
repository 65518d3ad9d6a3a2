/** "2 blocks and 1 wire": how the status line counts what an action touched. */
export function describe(nodes: number, edges: number): string {
  const parts = [];
  if (nodes) parts.push(`${nodes} block${nodes === 1 ? "" : "s"}`);
  if (edges) parts.push(`${edges} wire${edges === 1 ? "" : "s"}`);
  return parts.join(" and ");
}
