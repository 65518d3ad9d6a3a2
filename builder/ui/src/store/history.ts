/**
 * Undo history from snapshots taken at named events (add, connect, move, delete, paste, a burst
 * of config edits), not on every state change: a drag or a typed word is one step, as in Dify's
 * workflow history. Written here rather than with zundo because zundo records each `set`, and the
 * store sets on every pointer move of a drag.
 */
export interface History<S> {
  past: { label: string; state: S }[];
  future: { label: string; state: S }[];
}

export const LIMIT = 100;

export function emptyHistory<S>(): History<S> {
  return { past: [], future: [] };
}

/** `before` is the state the named change is about to leave; redo is forgotten. */
export function record<S>(h: History<S>, label: string, before: S): History<S> {
  return { past: [...h.past, { label, state: before }].slice(-LIMIT), future: [] };
}

/** Back one step: the state to restore and the new history, or null when there is nothing to undo. */
export function undo<S>(h: History<S>, current: S): { state: S; label: string; history: History<S> } | null {
  const last = h.past[h.past.length - 1];
  if (!last) return null;
  return {
    state: last.state,
    label: last.label,
    history: { past: h.past.slice(0, -1), future: [{ label: last.label, state: current }, ...h.future] },
  };
}

export function redo<S>(h: History<S>, current: S): { state: S; label: string; history: History<S> } | null {
  const next = h.future[0];
  if (!next) return null;
  return {
    state: next.state,
    label: next.label,
    history: { past: [...h.past, { label: next.label, state: current }], future: h.future.slice(1) },
  };
}
