import { describe, expect, it } from "vitest";
import { LIMIT, emptyHistory, record, redo, undo } from "./history";

describe("snapshot history", () => {
  it("undoes and redoes named steps in order", () => {
    let h = emptyHistory<number>();
    h = record(h, "add", 0);
    h = record(h, "connect", 1);
    const u1 = undo(h, 2);
    expect(u1).toMatchObject({ state: 1, label: "connect" });
    const u2 = undo(u1!.history, 1);
    expect(u2?.state).toBe(0);
    expect(undo(u2!.history, 0)).toBeNull();
    const r1 = redo(u2!.history, 0);
    expect(r1).toMatchObject({ state: 1, label: "add" });
    expect(redo(r1!.history, 1)?.state).toBe(2);
  });

  it("forgets redo after a new change, and keeps at most LIMIT steps", () => {
    let h = record(emptyHistory<number>(), "add", 0);
    h = undo(h, 1)!.history;
    h = record(h, "move", 0);
    expect(redo(h, 5)).toBeNull();
    for (let i = 0; i < LIMIT + 20; i++) h = record(h, "add", i);
    expect(h.past).toHaveLength(LIMIT);
  });
});
