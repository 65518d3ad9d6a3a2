/** The editor toolbar's "Test" button: opens (or closes) the test panel beside the canvas. */
import { useRun } from "../store/run";
import { T } from "../testids";
import { closeTesting, useTesting } from "./store";

export function TestButton() {
  const open = useTesting((s) => s.open);
  const live = useRun((s) => s.live);
  return (
    <button type="button" aria-pressed={open} disabled={live} data-testid={T.testButton}
      onClick={() => (open ? closeTesting() : useTesting.getState().setOpen(true))} title="Run the draft with inputs you type, on the canvas">
      Test
    </button>
  );
}
