/** What the editor shows besides the graph: the status line, the field to focus, save state. */
import { create } from "zustand";
import type { SaveStatus } from "../problems/saveQueue";

interface UiState {
  /** The sentence in the editor's status line (role="status"): a refused wire, an undone step... */
  status: string;
  /** A config field to focus once its form is drawn (a clicked problem's `path`). */
  focus: { nodeId: string; path: string } | null;
  save: { status: SaveStatus; message?: string };
  say: (status: string) => void;
  focusField: (focus: UiState["focus"]) => void;
  setSave: (status: SaveStatus, message?: string) => void;
}

export const useUi = create<UiState>()((set) => ({
  status: "",
  focus: null,
  save: { status: "saved" },
  say: (status) => set({ status }),
  focusField: (focus) => set({ focus }),
  setSave: (status, message) => set({ save: { status, message } }),
}));
