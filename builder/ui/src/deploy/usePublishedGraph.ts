/** The app's latest published graph (null when nothing is published), to explain how its trigger behaves. */
import { useEffect, useState } from "react";
import { api } from "../api/client";
import type { GraphDoc, GraphNode } from "../api/types";

export interface Published {
  version: number;
  graph: GraphDoc;
}

export function usePublishedGraph(appId: string): Published | null | undefined {
  const [published, setPublished] = useState<Published | null | undefined>(undefined);
  useEffect(() => {
    let alive = true;
    api.GET("/v1/apps/{app_id}", { params: { path: { app_id: appId } } }).then(async ({ data: app }) => {
      if (!app || app.latest_version === 0) return alive && setPublished(null);
      const { data } = await api.GET("/v1/apps/{app_id}/versions/{number}", {
        params: { path: { app_id: appId, number: app.latest_version } },
      });
      if (alive) setPublished(data ? { version: data.number, graph: data.graph as unknown as GraphDoc } : null);
    }).catch(() => alive && setPublished(null));
    return () => {
      alive = false;
    };
  }, [appId]);
  return published;
}

/** The first node of `type` in the graph. */
export function nodeOfType(graph: GraphDoc, type: string): GraphNode | undefined {
  return graph.nodes.find((n) => n.type === type);
}
