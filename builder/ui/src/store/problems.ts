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

export const useProblems = create<ProblemsState>()((set) => ({
  problems: [],
  byNode: {},
  set: (problems) => {
    const byNode: Record<string, Problem[]> = {};
    for (const p of problems) for (const id of nodesOf(p)) (byNode[id] ??= []).push(p);
    set({ problems, byNode });
  },
}));
