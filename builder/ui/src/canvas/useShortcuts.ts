/** Keyboard shortcuts of the editor: undo, redo, copy, paste (Delete is React Flow's own). */
import { useEffect } from "react";
import { copy, paste, redo, undo } from "./commands";

function typingIn(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  return target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName)
    || target.closest("dialog") !== null;
}

export function useShortcuts(): void {
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (!(event.ctrlKey || event.metaKey) || event.altKey || typingIn(event.target)) return;
      const key = event.key.toLowerCase();
      const run = key === "z" ? (event.shiftKey ? redo : undo)
        : key === "y" ? redo
        : key === "c" && !event.shiftKey ? copy
        : key === "v" && !event.shiftKey ? paste
        : null;
      if (!run) return;
      // Copying text the person selected outside the canvas stays the browser's.
      const inCanvas = document.activeElement?.closest(".react-flow") != null;
      if (key === "c" && !inCanvas && (window.getSelection()?.toString() ?? "") !== "") return;
      event.preventDefault();
      run();
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, []);
}
