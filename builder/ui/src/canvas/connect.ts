/**
 * The wiring rule, checked while the person drags a wire: port types must fit (the same rule as
 * `blocks/base.py` `types_compatible`), an input takes one wire, and the graph stays acyclic.
 * Each refusal comes with the sentence shown to the person.
 */
import type { NodePorts } from "../api/types";

/** Whether a value of port type `source` may feed a port of type `target`. */
export function typesCompatible(source: string, target: string): boolean {
  return source === target || source === "any" || target === "any"
    || (source === "integer" && target === "number");
}

interface Link {
  source: string;
  target: string;
}

/** The path `from -> ... -> to` along `edges`, or null; iterative, so deep graphs are safe. */
export function findPath(edges: readonly Link[], from: string, to: string): string[] | null {
  const next = new Map<string, string[]>();
  for (const e of edges) {
    const list = next.get(e.source);
    if (list) list.push(e.target);
    else next.set(e.source, [e.target]);
  }
  const parent = new Map<string, string>([[from, from]]);
  const stack = [from];
  while (stack.length > 0) {
    const node = stack.pop() as string;
    if (node === to) {
      const path = [to];
      while (path[0] !== from) path.unshift(parent.get(path[0] as string) as string);
      return path;
    }
    for (const t of next.get(node) ?? []) {
      if (!parent.has(t)) {
        parent.set(t, node);
        stack.push(t);
      }
    }
  }
  return null;
}

export interface Wire {
  source: string | null;
  sourceHandle?: string | null;
  target: string | null;
  targetHandle?: string | null;
}

export interface WireContext {
  edges: readonly (Link & { targetHandle?: string | null })[];
  portsOf: (nodeId: string) => NodePorts | undefined;
}

/** Why `wire` may not be made, or null when it may. */
export function wireProblem(wire: Wire, ctx: WireContext): string | null {
  const { source, target, sourceHandle, targetHandle } = wire;
  if (!source || !target || !sourceHandle || !targetHandle) return "Connect an output port to an input port.";
  if (source === target) return "A block cannot feed itself.";
  const out = ctx.portsOf(source)?.outputs.find((p) => p.name === sourceHandle);
  const inp = ctx.portsOf(target)?.inputs.find((p) => p.name === targetHandle);
  if (!out) return `${source} has no output port "${sourceHandle}".`;
  if (!inp) return `${target} has no input port "${targetHandle}".`;
  if (!typesCompatible(out.type, inp.type)) {
    return `Cannot connect ${source}.${out.name} (${out.type}) to ${target}.${inp.name} (${inp.type}): `
      + `a ${out.type} cannot feed a ${inp.type} input.`;
  }
  if (ctx.edges.some((e) => e.target === target && e.targetHandle === targetHandle)) {
    return `${target}.${inp.name} already has a wire: delete it first.`;
  }
  const back = findPath(ctx.edges, target, source);
  if (back) return `This wire would make a cycle: ${[...back, target].join(" → ")}.`;
  return null;
}
