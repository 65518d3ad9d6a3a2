/**
 * The Versions tab's data: the app's published versions (newest first), and the graphs to compare,
 * loaded once each (a published version never changes; the draft is read fresh each time).
 */
import { useCallback, useEffect, useRef, useState } from "react";
import { api } from "../api/client";
import { errorMessage } from "../api/errors";
import type { GraphDoc } from "../api/types";
import type { components } from "../api/schema";

export type VersionSummary = components["schemas"]["VersionSummary"];
/** Which graph: a version number, or the draft. */
export type GraphRef = number | "draft";

export function refLabel(ref: GraphRef): string {
  return ref === "draft" ? "the draft" : `version ${ref}`;
}

export function useVersions(appId: string) {
  const [versions, setVersions] = useState<VersionSummary[] | null>(null);
  const [total, setTotal] = useState(0);
  const [error, setError] = useState("");
  const graphs = useRef(new Map<GraphRef, Promise<GraphDoc>>());

  const reload = useCallback(async () => {
    graphs.current.delete("draft");
    const { data, error: failure } = await api.GET("/v1/apps/{app_id}/versions", {
      params: { path: { app_id: appId }, query: { limit: 100 } },
    });
    if (!data) return setError(errorMessage(failure, "The versions could not be loaded."));
    setVersions(data.items);
    setTotal(data.total);
  }, [appId]);

  useEffect(() => {
    void reload();
    // A version published in another tab or by someone else shows when the person comes back.
    const onFocus = () => document.visibilityState === "visible" && void reload();
    document.addEventListener("visibilitychange", onFocus);
    return () => document.removeEventListener("visibilitychange", onFocus);
  }, [reload]);

  const graphOf = useCallback((ref: GraphRef): Promise<GraphDoc> => {
    let found = graphs.current.get(ref);
    if (!found) {
      const path = { params: { path: { app_id: appId } } };
      found = (ref === "draft"
        ? api.GET("/v1/apps/{app_id}/draft", path)
        : api.GET("/v1/apps/{app_id}/versions/{number}", { params: { path: { app_id: appId, number: ref } } })
      ).then(({ data, error: failure }) => {
        if (!data) throw new Error(errorMessage(failure, `${refLabel(ref)} could not be loaded.`));
        return data.graph as unknown as GraphDoc;
      });
      found.catch(() => graphs.current.delete(ref));
      graphs.current.set(ref, found);
    }
    return found;
  }, [appId]);

  return { versions, total, error, reload, graphOf };
}
