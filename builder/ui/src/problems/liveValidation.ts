/**
 * Validation as the person edits: the graph is sent to POST /v1/graphs/validate shortly after
 * each change. The answer brings the problems and each node's ports as its config now makes them
 * (a template that reads `{{ customer }}` has a `customer` input); wires to ports that went away
 * are removed and the status line says which.
 */
import { useEffect } from "react";
import { api } from "../api/client";
import type { Report } from "../api/types";
import { useGraph } from "../store/graph";
import { useProblems } from "../store/problems";
import { useUi } from "../store/ui";
import { currentGraph } from "./draftSync";

export const VALIDATE_DELAY_MS = 250;

export function useLiveValidation(enabled: boolean): void {
  useEffect(() => {
    if (!enabled) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let sent = 0;
    const check = async () => {
      const seq = ++sent;
      const { data } = await api.POST("/v1/graphs/validate", { body: currentGraph() as never });
      // Only the answer to the latest request counts: an older one describes an older graph.
      if (!data || seq !== sent) return;
      const report = data as unknown as Report;
      useProblems.getState().set(report.problems);
      if (report.ports) {
        const dropped = useGraph.getState().setPorts(report.ports);
        if (dropped.length > 0) {
          useUi.getState().say(`Removed ${dropped.length === 1 ? "a wire" : `${dropped.length} wires`} whose port is gone: ${dropped.join(", ")}.`);
        }
      }
    };
    const unsubscribe = useGraph.subscribe((s, prev) => {
      if (s.edits === prev.edits) return;
      clearTimeout(timer);
      timer = setTimeout(() => void check().catch(() => undefined), VALIDATE_DELAY_MS);
    });
    return () => {
      unsubscribe();
      clearTimeout(timer);
    };
  }, [enabled]);
}
