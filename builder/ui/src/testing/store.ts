/** Whether the editor's test panel is open (the toolbar's "Test" button opens it). */
import { create } from "zustand";
import { stopFollowing } from "../runs/follow";
import { useRun } from "../store/run";

interface TestingState {
  open: boolean;
  setOpen: (open: boolean) => void;
}

export const useTesting = create<TestingState>()((set) => ({
  open: false,
  setOpen: (open) => set({ open }),
}));

/** Close the panel and take the run's statuses off the canvas. */
export function closeTesting(): void {
  stopFollowing();
  useRun.getState().clear();
  useTesting.getState().setOpen(false);
}
