/** The draft's validation problems, as a list and by node (for badges on the canvas). */
import { create } from "zustand";
import type { Problem } from "../api/types";

interface ProblemsState {
  problems: Problem[];
  byNode: Record<string, Problem[]>;
  set: (problems: Problem[]) => void;
}

/** The nodes a problem concerns: its node, or every node of a cycle. */
export function nodesOf(p: Problem): string[] {
  if (p.node_id) return [p.node_id];
  return p.nodes ?? [];
}

/** Problems whose `port` is always an input of their node (the others may name either side). */
const INPUT_CODES = new Set(["required_input_missing", "input_fed_twice", "port_type_mismatch"]);

/** Whether `p` concerns the port `name` on the given side of its node. */
export function namesPort(p: Problem, name: string, side: "in" | "out"): boolean {
  return p.port === name && (side === "in" || !INPUT_CODES.has(p.code));
}

/** Problems that concern a wire: the edges into the input port they name. */
export function wireProblemKeys(problems: Problem[]): Map<string, string> {
  const keys = new Map<string, string>();
  for (const p of problems) {
    if ((p.code === "port_type_mismatch" || p.code === "input_fed_twice") && p.node_id && p.port) {
      keys.set(`${p.node_id}:${p.port}`, p.message);
    }
  }
  return keys;
}

export const useProblems = create<ProblemsState>()((set) => ({
  problems: [],
  byNode: {},
  set: (problems) => {
    const byNode: Record<string, Problem[]> = {};
    for (const p of problems) for (const id of nodesOf(p)) (byNode[id] ??= []).push(p);
    set({ problems, byNode });
  },
}));
